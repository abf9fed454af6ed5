"""The OKX adapter against the simulator, without the engine: every venue event it emits
for place, amend, cancel, query, list and account, over REST and over the private
WebSocket, and what it does when the venue does not answer."""

from __future__ import annotations

import queue
import time
from types import SimpleNamespace

import pytest

from events import ExecStatus, OrderType, Side, TimeInForce, to_mantissa
from execution.ids import venue_client_order_id
from venues.okx.trading import adapter as adapter_mod
from venues.okx.trading.adapter import OkxAdapter, fetch_registry
from venues.trading import (
    Order, UserStreamConnected, UserStreamDisconnected, VenueAccountReported, VenueOpenOrdersListed,
    VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

from .test_chaos import wait_until

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def okx_sim():
    from simulator.server import Simulator
    s = Simulator(venues=["okx"], instruments=2, rate=0, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


class Rig:
    def __init__(self, sim, entry: str, **kw):
        ep = sim.endpoints["okx"]
        self.sim = sim
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.reg = fetch_registry(ep["rest"])
        self.a = OkxAdapter(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", self.reg,
                            self.events.put, passphrase="meltica-sim-passphrase", order_entry=entry, **kw)
        self.a.start()
        assert isinstance(self.next(), UserStreamConnected)

    def next(self, kind=None, timeout_s: float = 5.0):
        deadline = time.monotonic() + timeout_s
        while True:
            ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if kind is None or isinstance(ev, kind):
                return ev

    def order(self, coid, symbol="BTC-USDT", side=Side.BUY, qty="0.001", price="60000", tif=TimeInForce.GTC,
              otype=OrderType.LIMIT):
        inst = self.reg.by_symbol(symbol)
        return Order(1, coid, venue_client_order_id(1, coid, form="alnum"), inst, side, otype, tif,
                     to_mantissa(price, inst.px_scale) if otype is OrderType.LIMIT else 0,
                     to_mantissa(qty, inst.sz_scale))


@pytest.fixture(params=["rest", "ws"])
def rig(request, okx_sim):
    r = Rig(okx_sim, request.param)
    try:
        yield r
    finally:
        r.a.stop()


def reports_of(rig, vcoid, until, timeout_s=5.0) -> list[VenueOrderReported]:
    got = []
    deadline = time.monotonic() + timeout_s
    while not until(got):
        ev = rig.next(timeout_s=max(0.01, deadline - time.monotonic()))
        if isinstance(ev, VenueOrderReported) and vcoid in ev.client_order_ids:
            got.append(ev)
    return got


def test_place_amend_cancel_each_reported_with_prices_and_sizes(rig):
    o = rig.order("a-1", qty="0.002")
    rig.a.place(o)
    got = reports_of(rig, o.venue_client_order_id, lambda g: {r.source for r in g} >= {"stream"} and
                     any(r.source in ("rest", "ws") for r in g))
    assert all(r.status is ExecStatus.ACK for r in got)
    rig.a.amend(o, to_mantissa("0.001", 5), to_mantissa("60001", 2))
    (am,) = reports_of(rig, o.venue_client_order_id, lambda g: len(g) == 1)
    assert am.amended and am.source == "amend" and (am.qty, am.price) == (100, 6000100)
    rig.a.amend(o, o.qty, o.price)
    assert rig.next(VenueRequestRefused).message.startswith("not sent: neither")
    rig.a.cancel(o)
    (c,) = reports_of(rig, o.venue_client_order_id, lambda g: len(g) == 1)
    assert c.status is ExecStatus.CANCELLED
    rig.a.cancel(o)
    ref = rig.next(VenueRequestRefused)
    assert (ref.action, ref.code) == ("cancel", 51400)
    rig.a.amend(o, to_mantissa("0.003", 5), o.price)
    ref = rig.next(VenueRequestRefused)
    assert (ref.action, ref.code) == ("amend", 51503)


def test_query_and_not_found_and_the_account_snapshot(rig):
    o = rig.order("q-1", symbol="BTC-USDT-PERP", qty="0.02", price="60000")
    rig.a.place(o)
    reports_of(rig, o.venue_client_order_id, lambda g: {r.source for r in g} >= {"stream", rig.a.order_entry})
    rig.a.query(o)
    (q,) = reports_of(rig, o.venue_client_order_id, lambda g: len(g) == 1)
    assert (q.source, q.status, q.qty, q.price) == ("query", ExecStatus.ACK, 2000, 6000000)   # 20 x 0.001 BTC
    rig.a.query(rig.order("q-never"))
    assert rig.next(VenueOrderNotFound).client_order_id == venue_client_order_id(1, "q-never", form="alnum")
    rig.a.query_account()
    acct = rig.next(VenueAccountReported)
    assert acct.full and acct.source == "rest"
    usdt = next(b for b in acct.balances if b.asset == "USDT")
    assert (usdt.free, usdt.locked) == (1_000_000 * 10 ** usdt.scale, 0)   # the simulator locks no margin
    assert acct.positions == ()
    m = rig.order("q-mkt", symbol="BTC-USDT-PERP", qty="0.03", otype=OrderType.MARKET, tif=TimeInForce.IOC)
    rig.a.place(m)
    reports_of(rig, m.venue_client_order_id, lambda g: any(r.status is ExecStatus.FILLED for r in g))
    rig.a.query_account()
    acct = rig.next(VenueAccountReported, timeout_s=5)
    while not acct.full:     # account pushes are followed now: skip them
        acct = rig.next(VenueAccountReported)
    (p,) = acct.positions
    assert (p.instrument.symbol, p.size, p.pnl_asset) == ("BTC-USDT-PERP", 3000, "USDT") and p.entry_px > 0


def test_open_orders_are_listed_page_by_page(rig, monkeypatch):
    monkeypatch.setattr(adapter_mod, "PAGE", 2)
    orders = [rig.order(f"l-{i}", price=str(60000 + i)) for i in range(5)]
    for o in orders:
        rig.a.place(o)
    seen: dict[str, set] = {}
    while not all(seen.get(o.venue_client_order_id, set()) >= {"stream", rig.a.order_entry} for o in orders):
        ev = rig.next(VenueOrderReported)
        seen.setdefault(ev.client_order_ids[0], set()).add(ev.source)
    rig.a.list_open(None, 41)
    listed = rig.next(VenueOpenOrdersListed)
    assert listed.request_id == 41
    assert sorted(r.client_order_ids[0] for r in listed.reports) == sorted(o.venue_client_order_id for o in orders)
    rig.a.list_open(rig.reg.by_symbol("ETH-USDT"), 42)
    assert rig.next(VenueOpenOrdersListed).reports == ()
    assert okx_requests(rig.sim)["GET /api/v5/trade/orders-pending"] == 4   # 2 + 2 + 1 (a short page ends it), 1


def okx_requests(sim) -> dict:
    import orjson
    import urllib.request
    with urllib.request.urlopen(sim.endpoints["okx"]["rest"] + "/_sim/orders", timeout=5) as r:
        return orjson.loads(r.read())["requests"]


def test_no_answer_is_an_unknown_outcome_with_the_signed_time(rig):
    rig.sim.inject("okx", "drop_response")
    o = rig.order("u-1")
    before = int(time.time() * 1000)
    rig.a.place(o)
    ev = rig.next(VenueOutcomeUnknown)
    assert (ev.client_order_id, ev.action) == (o.venue_client_order_id, "place") and ev.sent_ms >= before
    rig.a.query(o)          # the order was carried out: the query finds it
    got = reports_of(rig, o.venue_client_order_id, lambda g: any(r.source == "query" for r in g))
    assert got[-1].status is ExecStatus.ACK


def test_ws_entry_falls_back_to_rest_while_the_private_stream_is_down(okx_sim):
    r = Rig(okx_sim, "ws")
    try:
        okx_sim.inject("okx", "disconnect_userstream")
        assert isinstance(r.next(UserStreamDisconnected), UserStreamDisconnected)
        o = r.order("f-1")
        r.a.place(o)                                  # no logged-in connection: REST takes it
        placed = reports_of(r, o.venue_client_order_id, lambda g: any(x.source in ("rest", "ws") for x in g))
        assert placed[-1].status is ExecStatus.ACK
        assert r.next(UserStreamConnected) == UserStreamConnected()   # and the stream comes back
        assert okx_requests(okx_sim).get("POST /api/v5/trade/order", 0) + okx_requests(okx_sim).get(
            "WS order", 0) == 1
    finally:
        r.a.stop()


@pytest.fixture
def one_worker(okx_sim):
    """WS order entry with one worker thread: every order's jobs queue on it."""
    r = Rig(okx_sim, "ws", workers=1, timeout_s=1.0)
    try:
        yield r
    finally:
        r.a.stop()


def test_a_ws_placement_awaiting_its_answer_does_not_hold_the_next_order(one_worker):
    r = one_worker
    r.sim.inject("okx", "delay_response", seconds=0.8)    # the first placement is answered late
    slow, nxt = r.order("h-slow"), r.order("h-next")
    r.a.place(slow)
    r.a.place(nxt)                                        # queued on the same worker, behind it
    first = r.next(VenueOrderReported)
    while first.source != "ws":                           # the placements' answers, not the pushes
        first = r.next(VenueOrderReported)
    assert first.client_order_ids == (nxt.venue_client_order_id,) and first.status is ExecStatus.ACK
    got = reports_of(r, slow.venue_client_order_id, lambda g: any(x.source == "ws" for x in g))
    assert got[-1].status is ExecStatus.ACK
    assert okx_requests(r.sim).get("WS order", 0) == 2


def test_a_cancel_waits_for_its_ws_placements_answer_and_never_overtakes_it(one_worker):
    r = one_worker
    r.sim.inject("okx", "delay_response", seconds=0.3)    # carried out at once, answered late
    o = r.order("s-1")
    r.a.place(o)
    r.a.cancel(o)
    got = reports_of(r, o.venue_client_order_id, lambda g: any(x.status is ExecStatus.CANCELLED for x in g))
    assert any(x.source == "ws" and x.status is ExecStatus.ACK for x in got)   # the placement's answer came
    assert not r.a._placing                               # nothing left in flight


def test_a_ws_placement_in_flight_when_the_connection_is_lost_is_an_unknown_outcome(one_worker):
    r = one_worker
    r.sim.inject("okx", "drop_response")                  # carried out, then the venue drops the line
    o = r.order("l-1")
    r.a.place(o)
    unknown = r.next(VenueOutcomeUnknown)
    assert (unknown.client_order_id, unknown.action) == (o.venue_client_order_id, "place")
    assert "connection lost" in unknown.reason
    assert not r.a._placing


def test_order_types_map_to_okx_ord_types(rig):
    spot = rig.reg.by_symbol("BTC-USDT")
    swap = rig.reg.by_symbol("BTC-USDT-PERP")

    def args(inst, otype, tif_name):
        o = SimpleNamespace(instrument=inst, venue_client_order_id="m1", side=Side.SELL, order_type=otype,
                            tif=SimpleNamespace(name=tif_name), qty=100, price=6500000, reduce_only=False)
        return rig.a.order_args(o)

    assert args(spot, OrderType.LIMIT, "GTC") == {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": "m1",
                                                  "side": "sell", "sz": "0.001", "ordType": "limit", "px": "65000"}
    assert [args(spot, OrderType.LIMIT, t)["ordType"] for t in ("IOC", "FOK", "GTX", "POST_ONLY")] == \
        ["ioc", "fok", "post_only", "post_only"]
    assert args(spot, OrderType.MARKET, "IOC") == {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": "m1",
                                                   "side": "sell", "sz": "0.001", "ordType": "market",
                                                   "tgtCcy": "base_ccy"}
    assert args(swap, OrderType.MARKET, "IOC") == {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "clOrdId": "m1",
                                                   "side": "sell", "sz": "1", "ordType": "market"}   # 0.001 BTC


def test_a_service_upgrade_notice_moves_to_a_new_connection_before_the_old_one_closes(okx_sim):
    r = Rig(okx_sim, "rest")
    try:
        okx_sim.inject("okx", "server_shutdown", seconds=5)      # the old one closes 5 s later
        assert r.next((UserStreamConnected, UserStreamDisconnected)) == UserStreamConnected()
        o = r.order("mv-1")
        r.a.place(o)
        got = reports_of(r, o.venue_client_order_id, lambda g: any(x.source == "stream" for x in g))
        assert got[-1].status is ExecStatus.ACK                  # pushed on the new connection
        wait_until(lambda: okx_sim.stats()["okx"]["orders"]["private"]["connections"] == 1, 10,
                   "the old connection closed by us, before the venue's 5 s")
        assert okx_sim.stats()["okx"]["orders"]["private"]["logins"] == 2
    finally:
        r.a.stop()


class Dlq:
    def __init__(self):
        self.records = []

    def put(self, kind, **fields):
        self.records.append((kind, fields))


def test_a_refused_login_is_retried_with_backoff_and_told_once(okx_sim):
    ep = okx_sim.endpoints["okx"]
    events: queue.SimpleQueue = queue.SimpleQueue()
    dlq = Dlq()
    a = OkxAdapter(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", fetch_registry(ep["rest"]),
                   events.put, passphrase="not-it-9f3c", dlq=dlq)
    a.start()
    try:
        wait_until(lambda: okx_sim.stats()["okx"]["orders"]["private"]["login_failures"] >= 3, 20,
                   "three refused logins")
        assert "60024" in a.stream.last_error and a.stream.logins == 0
        failed = [f for k, f in dlq.records if k == "user_stream_failed"]
        assert len(failed) == 1 and "60024" in failed[0]["error"]       # one record per distinct reason
        assert "not-it-9f3c" not in repr(a.stream) + failed[0]["error"]   # never the passphrase
        assert events.empty()                                           # never "connected"
    finally:
        a.stop()


def test_a_login_answer_later_than_the_timeout_is_given_up_and_the_next_login_succeeds(okx_sim):
    okx_sim.inject("okx", "delay_subscribe", seconds=3)       # the venue holds the next login answer
    ep = okx_sim.endpoints["okx"]
    events: queue.SimpleQueue = queue.SimpleQueue()
    a = OkxAdapter(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", fetch_registry(ep["rest"]),
                   events.put, passphrase="meltica-sim-passphrase", timeout_s=1.0)
    a.start()
    try:
        assert events.get(timeout=10) == UserStreamConnected()
        assert "no login answer" in a.stream.last_error and a.stream.logins == 1
    finally:
        a.stop()
