"""The Binance adapter tells telemetry when an order's bytes left: `exec.order.sent` and
`exec.order.send_us` (a stub REST connection; no network)."""

from __future__ import annotations

import time
import zlib

import pytest

from events import OrderType, Side, TimeInForce
from events.ids import mix64
from venues.binance.trading.adapter import BinanceSpotAdapter
from venues.binance.trading.rest import BinanceRefused, NotSent
from venues.trading import Order, VenueRequestRefused

from .fakes import BTC, registry

pytestmark = pytest.mark.timeout(10)


class Recorder:
    def __init__(self):
        self.events, self.samples = [], []

    def inc(self, name, n=1, **labels):
        pass

    def observe(self, name, value, **labels):
        self.samples.append((name, value))

    def event(self, name, **fields):
        self.events.append((name, fields))


class StubRest:
    sent_ns = replied_ns = 0

    def __init__(self, error):
        self.error = error

    def new_order(self, **params):
        self.sent_ns = time.time_ns()
        self.replied_ns = self.sent_ns + 1000  # a refusal is a reply
        raise self.error


def placed(error):
    tel, out = Recorder(), []
    a = BinanceSpotAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "key", "secret", registry(), out.append,
                           telemetry=tel)  # never started: the job is run by hand
    o = Order(3, "t2t-00000000000000aa", "m00000003abcdefghijklmnopqrstuvwx", BTC, Side.BUY, OrderType.LIMIT,
              TimeInForce.IOC, 3_000_000, 100, created_ns=time.time_ns())
    a.place(o)
    (fn, args), = [q.get_nowait() for q in a.workers.queues if q.qsize()]
    rest = StubRest(error)
    fn(rest, *args)
    return o, rest, tel, out


def test_a_placement_that_left_is_one_event_with_its_stamps_in_order():
    o, rest, tel, out = placed(BinanceRefused(400, -2010, "insufficient balance", "/api/v3/order"))
    assert isinstance(out[0], VenueRequestRefused)
    (name, ev), = tel.events
    assert name == "exec.order.sent"
    assert (ev["consumer_id"], ev["client_order_id"], ev["order"]) == (3, o.client_order_id, o.venue_client_order_id)
    assert ev["trace_id"] == mix64(zlib.crc32(o.venue_client_order_id.encode()))  # the exec reports' trace id
    assert o.created_ns == ev["created_ns"] <= ev["placed_ns"] <= ev["sent_ns"] == rest.sent_ns
    assert ev["replied_ns"] == rest.replied_ns
    assert tel.samples == [("exec.order.send_us", (ev["sent_ns"] - ev["created_ns"]) / 1000)]


def test_a_placement_that_never_left_is_not_reported_sent():
    _, _, tel, out = placed(NotSent("cannot connect"))
    assert isinstance(out[0], VenueRequestRefused) and tel.events == [] and tel.samples == []
