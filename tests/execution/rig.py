"""The engine with a recording venue, a manual clock, counting telemetry, and a real store,
journal and ring, re-creatable over the same run directory (a restart)."""

from __future__ import annotations

import numpy as np

from execution.engine import Engine
from execution.ids import venue_client_order_id
from execution.limits import LimitBook
from execution.model import SubmitOrder
from venues.trading import UserStreamConnected
from execution.publisher import ExecPublisher
from execution.store import Store

from .fakes import Clock, Counters, RecordingVenue, registry


class Rig:
    """An engine and everything around it, re-creatable over the same run directory."""

    def __init__(self, run_ctx, limits=None):
        self.ctx = run_ctx
        self.clock = Clock()
        self.limits = limits
        self.start()

    def start(self):
        self.venue = RecordingVenue()
        self.tel = Counters()
        self.store = Store(self.ctx.path("exec", "orders.sqlite"), registry(), synchronous="NORMAL")
        self.pub = ExecPublisher(self.ctx, capacity=64, sync=False)
        self.engine = Engine(self.store, self.pub, self.venue, clock=self.clock, limits=LimitBook(self.limits),
                             telemetry=self.tel)
        self.engine.recover()
        self.engine.on_venue(UserStreamConnected())  # reconciles every open order, as a real start does

    def restart(self):
        self.pub.close()
        self.store.close()
        self.start()

    def close(self):
        self.pub.close()
        self.store.close()

    def limit(self, coid, qty="0.01", price="30000", side="buy", tif="GTC", consumer="c1", symbol="BTC-USDT"):
        return self.engine.submit(SubmitOrder(consumer, coid, symbol, side, "limit", tif, qty, price))

    def journal(self) -> np.ndarray:
        return self.pub.journal.read(1, 10_000)


FIRST_CONTACT = ("c1", "c2")  # the order rig tests meet consumers in; execution numbers them so, from 1


def vc(coid, consumer="c1"):
    return venue_client_order_id(FIRST_CONTACT.index(consumer) + 1, coid)

