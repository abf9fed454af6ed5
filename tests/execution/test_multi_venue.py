"""One engine over two venues (recording adapters, a manual clock, a real store, journal and
ring): routing by the order's venue, idempotency across venues, one gap-free journal,
reconciliation per venue, a venue down while the other trades, limits and the switch on
every venue, and a restart that reloads each venue's orders with that venue's instruments."""

from __future__ import annotations

import numpy as np
import pytest

from events import EVENT, ExecStatus as S, Instrument, Provider, Registry
from execution.engine import Engine
from execution.limits import LimitBook
from execution.model import CancelOrder, SetTradingMode, SubmitOrder
from execution.publisher import ExecPublisher
from execution.store import Store
from shm import RingReader
from venues.trading import UserStreamConnected, UserStreamDisconnected

from .fakes import Clock, Counters, RecordingVenue, registry, report
from .rig import vc

pytestmark = pytest.mark.timeout(30)

# the same canonical symbol on OKX, at other scales than on Binance spot (fakes.BTC: 2 / 5)
OKX_BTC = Instrument("BTC-USDT", px_scale=1, sz_scale=8, tick=1, lot=1)


def okx_registry() -> Registry:
    reg = Registry([OKX_BTC])
    reg.map_venue(Provider.OKX, "BTC-USDT", "BTC-USDT")
    return reg


class OkxVenue(RecordingVenue):
    provider = Provider.OKX
    fee_scale = 6


class TwoVenues:
    """An engine trading Binance spot (`spot`) and OKX (`okx`), re-creatable (a restart)."""

    def __init__(self, ctx, limits=None):
        self.ctx, self.limits, self.clock = ctx, limits, Clock()
        self.start()

    def start(self):
        self.spot, self.okx, self.tel = RecordingVenue(), OkxVenue(), Counters()
        self.store = Store(self.ctx.path("exec", "orders.sqlite"),
                           {Provider.BINANCE_SPOT: registry(), Provider.OKX: okx_registry()}, synchronous="NORMAL")
        self.pub = ExecPublisher(self.ctx, capacity=64, sync=False)
        self.engine = Engine(self.store, self.pub, {Provider.BINANCE_SPOT: self.spot, Provider.OKX: self.okx},
                             clock=self.clock, limits=LimitBook(self.limits), telemetry=self.tel)
        self.engine.recover()
        for p in (Provider.BINANCE_SPOT, Provider.OKX):
            self.engine.on_venue(UserStreamConnected(), p)

    def restart(self):
        self.close()
        self.start()

    def close(self):
        self.pub.close()
        self.store.close()

    def order(self, coid, venue, qty="0.01", price="30000", consumer="c1"):
        return self.engine.submit(SubmitOrder(consumer, coid, "BTC-USDT", "buy", "limit", "GTC", qty, price,
                                              venue=venue))

    def journal(self) -> np.ndarray:
        return self.pub.journal.read(1, 10_000)


@pytest.fixture
def two(run_ctx):
    t = TwoVenues(run_ctx)
    try:
        yield t
    finally:
        t.close()


def test_each_order_goes_to_its_venue_with_that_venues_instrument(two):
    assert two.order("s-1", "binance-spot")["order"]["venue"] == "binance-spot"
    okx = two.order("o-1", "okx", qty="0.00012345", price="30000.5")
    assert okx["status"] == "accepted" and okx["order"]["venue"] == "okx"
    assert two.spot.calls == [("place", vc("s-1"))] and two.okx.calls == [("place", vc("o-1"))]
    o = two.engine.open[vc("o-1")]
    assert (o.instrument.px_scale, o.instrument.sz_scale, o.qty, o.price) == (1, 8, 12345, 300005)
    # exact at OKX's scales, not at Binance spot's (5 decimals of size)
    assert two.order("s-2", "binance-spot", qty="0.00012345")["code"] == "validation"


def test_an_order_without_a_venue_or_on_a_venue_not_traded_is_rejected_and_never_sent(two):
    none = two.engine.submit(SubmitOrder("c1", "x-1", "BTC-USDT", "buy", "limit", "GTC", "0.01", "30000"))
    assert none["status"] == "rejected" and none["code"] == "validation" and "venue is required" in none["reason"]
    for venue, code in (("kraken", "unknown_provider"), ("no-such", "unknown_provider")):
        r = two.order("x-1", venue)
        assert r["status"] == "rejected" and r["code"] == code and "binance-spot, okx" in r["reason"]
    assert two.spot.calls == [] and two.okx.calls == []
    assert two.order("x-1", "okx")["status"] == "accepted"  # the refused attempts did not take the id


def test_the_same_client_order_id_on_another_venue_is_a_duplicate_with_the_existing_state(two):
    two.order("o-1", "binance-spot")
    two.engine.on_venue(report(vc("o-1"), S.ACK), Provider.BINANCE_SPOT)
    two.engine.flush()
    dup = two.order("o-1", "okx")
    assert dup["status"] == "duplicate"
    assert dup["order"]["venue"] == "binance-spot" and dup["order"]["status"] == "ACK"
    assert two.okx.calls == []
    two.restart()
    again = two.order("o-1", "okx")
    assert again["status"] == "duplicate" and again["order"]["venue"] == "binance-spot"
    assert two.okx.calls == [] and two.spot.count("place") == 0


def test_reports_of_both_venues_share_one_gap_free_journal_and_the_ring(two):
    reader = RingReader.attach(two.ctx.namespace, "exec", EVENT, start="oldest")
    two.order("s-1", "binance-spot")
    two.order("o-1", "okx")
    e = two.engine
    e.on_venue(report(vc("s-1"), S.ACK), Provider.BINANCE_SPOT)
    e.on_venue(report(vc("o-1"), S.ACK), Provider.OKX)
    e.flush()
    e.on_venue(report(vc("o-1"), S.FILLED, 1_000_000, 1_000_000 * 300000, last_qty=1_000_000, last_px=300000,
                      trade_id=5), Provider.OKX)
    e.on_venue(report(vc("s-1"), S.CANCELLED, 0, 0), Provider.BINANCE_SPOT)
    e.flush()
    recs = two.journal()
    assert list(recs["exec"]["exec_seq"]) == [1, 2, 3, 4]
    assert [Provider(p) for p in recs["provider"]] == [Provider.BINANCE_SPOT, Provider.OKX, Provider.OKX,
                                                       Provider.BINANCE_SPOT]
    assert [S(x) for x in recs["exec"]["status"]] == [S.ACK, S.ACK, S.FILLED, S.CANCELLED]
    assert list(recs["exec"]["sz_scale"]) == [5, 8, 8, 5]  # each venue's instrument
    assert list(recs["exec"]["fee_scale"]) == [8, 6, 6, 8]
    ring = np.array(reader.try_read(10))
    reader.release()
    reader.close()
    assert list(ring["exec"]["exec_seq"]) == [1, 2, 3, 4]
    assert e.open == {}


def test_a_reconnect_of_one_venue_reconciles_that_venues_orders_only(two):
    two.order("s-1", "binance-spot")
    two.order("o-1", "okx")
    two.spot.calls.clear()
    two.okx.calls.clear()
    two.engine.on_venue(UserStreamDisconnected("test"), Provider.OKX)
    two.engine.on_venue(UserStreamConnected(), Provider.OKX)
    assert two.okx.calls == [("list", "BTC-USDT")] and two.spot.calls == []
    assert two.tel["exec.reconcile.lists"] == 1


def test_only_the_venue_whose_stream_is_down_polls_its_open_orders(two):
    two.order("s-1", "binance-spot")
    two.order("o-1", "okx")
    two.spot.calls.clear()
    two.okx.calls.clear()
    two.engine.on_venue(UserStreamDisconnected("test"), Provider.BINANCE_SPOT)
    two.clock.advance(2)
    two.engine.tick()
    assert two.spot.calls == [("list", "BTC-USDT")] and two.okx.calls == []


def test_a_venue_down_rejects_its_orders_with_the_reason_and_the_other_trades_on(two):
    two.engine.on_venue(UserStreamDisconnected("connection reset"), Provider.OKX)
    assert two.order("o-1", "okx")["status"] == "accepted"  # a reconnect is under way: not down yet
    two.clock.advance(11)
    r = two.order("o-2", "okx")
    assert r["status"] == "rejected" and r["code"] == "venue_down"
    assert "venue okx is down" in r["reason"] and "user stream" in r["reason"]
    assert two.order("s-1", "binance-spot")["status"] == "accepted"
    status = two.engine.venue_status()
    assert status["okx"]["down"] and status["binance-spot"]["down"] is None
    two.engine.on_venue(UserStreamConnected(), Provider.OKX)
    assert two.order("o-2", "okx")["status"] == "accepted"  # the rejected attempt did not take the id
    assert two.okx.count("place") == 2 and two.spot.count("place") == 1


def test_a_venue_that_could_not_start_rejects_its_orders_until_it_is_attached(run_ctx):
    clock, tel = Clock(), Counters()
    store = Store(run_ctx.path("exec", "orders.sqlite"), {Provider.BINANCE_SPOT: registry()}, synchronous="NORMAL")
    pub = ExecPublisher(run_ctx, capacity=64, sync=False)
    spot, okx = RecordingVenue(), OkxVenue()
    try:
        e = Engine(store, pub, {Provider.BINANCE_SPOT: spot, Provider.OKX: None}, clock=clock, telemetry=tel)
        e.set_down(Provider.OKX, "instruments not loaded from http://x: URLError")
        e.recover()
        e.reconcile()
        e.on_venue(UserStreamConnected(), Provider.BINANCE_SPOT)
        sub = lambda coid, venue: e.submit(SubmitOrder("c1", coid, "BTC-USDT", "buy", "limit", "GTC", "0.01",
                                                       "30000", venue=venue))
        r = sub("o-1", "okx")
        assert r["code"] == "venue_down" and "instruments not loaded" in r["reason"]
        assert sub("s-1", "binance-spot")["status"] == "accepted"
        e.attach(Provider.OKX, okx, okx_registry())
        e.on_venue(UserStreamConnected(), Provider.OKX)
        assert sub("o-1", "okx")["status"] == "accepted" and okx.count("place") == 1
    finally:
        pub.close()
        store.close()


def test_limits_and_the_trading_switch_apply_across_venues(run_ctx):
    two = TwoVenues(run_ctx, limits={"default": {"max_open_orders": 2}})
    try:
        assert two.order("s-1", "binance-spot")["status"] == "accepted"
        assert two.order("o-1", "okx")["status"] == "accepted"
        third = two.order("o-2", "okx")
        assert third["code"] == "max_open_orders"
        two.engine.set_trading_mode(SetTradingMode("c1", False))
        for venue in ("binance-spot", "okx"):
            assert two.order(f"x-{venue}", venue)["code"] == "trading_disabled"
        assert two.engine.cancel(CancelOrder("c1", "o-1"))["status"] == "accepted"  # cancel still goes
        assert two.okx.calls[-1] == ("cancel", vc("o-1")) and two.spot.count("cancel") == 0
    finally:
        two.close()


def test_a_restart_reloads_each_venues_open_orders_with_its_instruments_and_reconciles_each(two):
    two.order("s-1", "binance-spot")
    two.order("o-1", "okx", qty="0.00012345")
    two.restart()
    e = two.engine
    assert {o.client_order_id: o.venue for o in e.open.values()} == {"s-1": Provider.BINANCE_SPOT,
                                                                    "o-1": Provider.OKX}
    assert e.open[vc("o-1")].qty == 12345 and e.open[vc("o-1")].instrument.sz_scale == 8
    assert two.spot.calls == [("list", "BTC-USDT")] and two.okx.calls == [("list", "BTC-USDT")]


def test_an_execution_without_a_venue_keeps_its_orders_and_refuses_their_ids(two):
    two.order("s-1", "binance-spot")
    two.order("o-1", "okx")
    two.close()
    store = Store(two.ctx.path("exec", "orders.sqlite"), registry(), synchronous="NORMAL")  # Binance spot only
    pub = ExecPublisher(two.ctx, capacity=64, sync=False)
    spot = RecordingVenue()
    try:
        assert [o.client_order_id for o in store.open_orders()] == ["s-1"]
        e = Engine(store, pub, spot, clock=two.clock)
        e.recover()
        r = e.submit(SubmitOrder("c1", "o-1", "BTC-USDT", "buy", "limit", "GTC", "0.01", "30000"))
        assert r["status"] == "rejected" and r["code"] == "duplicate_order" and "okx" in r["reason"]
        assert spot.count("place") == 0
    finally:
        pub.close()
        store.close()
    two.start()  # both venues again: the OKX order is open and reconciled
    assert {o.client_order_id for o in two.engine.open.values()} == {"s-1", "o-1"}
    assert two.okx.calls == [("list", "BTC-USDT")]


def test_a_journaled_report_the_store_missed_is_recovered_even_while_its_venue_is_not_traded(two):
    two.order("o-1", "okx")
    e = two.engine
    e.on_venue(report(vc("o-1"), S.ACK), Provider.OKX)
    e.on_venue(report(vc("o-1"), S.PARTIAL, 1000, 1000 * 300000, last_qty=1000, last_px=300000, trade_id=1),
               Provider.OKX)
    e._pending, pending = [], e._pending
    e.dirty.clear()
    # the crash window: journaled (and published), the store not yet committed
    for i, entry in enumerate(pending):
        rec = np.zeros(1, EVENT)
        e._fill(rec[0], e.publisher.last_seq + 1, *entry)
        e.publisher.append(rec)
    two.close()
    store = Store(two.ctx.path("exec", "orders.sqlite"), registry(), synchronous="NORMAL")  # no OKX: down
    pub = ExecPublisher(two.ctx, capacity=64, sync=False)
    try:
        assert Engine(store, pub, RecordingVenue(), clock=two.clock).recover() == 2
        assert store.applied_seq() == 2
    finally:
        pub.close()
        store.close()
    two.start()  # OKX traded again: the order has the journaled state, nothing to replay
    o = two.engine.open[vc("o-1")]
    assert (o.status, o.filled, o.last_exec_seq) == (S.PARTIAL, 1000, 2)
