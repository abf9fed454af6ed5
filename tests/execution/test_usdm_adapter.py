"""The Binance USD-M adapter alone (no engine) against the simulator's binance-usdm app:
post-only (GTX) refusal and resting, modify, the account by REST and by the stream, the
listen key running out, a dropped stream, duplicate reports, an unknown outcome."""

from __future__ import annotations

import enum
import threading
import urllib.request
from fractions import Fraction

import orjson

import pytest

from events import ExecStatus, OrderType, Provider, Side, TimeInForce
from venues.binance.trading.usdm.adapter import BinanceUsdmAdapter, fetch_registry
from venues.trading import (
    Order, UserStreamConnected, UserStreamDisconnected, VenueAccountReported, VenueOrderNotFound,
    VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

pytestmark = pytest.mark.timeout(40)
V = "binance-usdm"
Tif = enum.Enum("Tif", {"GTX": 4})   # post-only, by name (the canonical model has no GTX yet)


class Events:
    """The adapter's emit: a list a test waits on."""

    def __init__(self):
        self.items, self.cv = [], threading.Condition()

    def __call__(self, ev):
        with self.cv:
            self.items.append(ev)
            self.cv.notify_all()

    def wait(self, cond, timeout_s: float = 10.0):
        with self.cv:
            assert self.cv.wait_for(lambda: cond(self.items), timeout_s), f"timed out: {self.items}"
        return list(self.items)

    def of(self, kind, **match):
        return [e for e in self.items if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())]


@pytest.fixture
def sim():
    from simulator.server import Simulator
    s = Simulator(venues=[V], instruments=2, rate=0, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def venue(sim):
    ep = sim.endpoints[V]
    events = Events()
    reg = fetch_registry(ep["rest"])
    a = BinanceUsdmAdapter(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", reg, events,
                           timeout_s=1.0)
    a.start()
    events.wait(lambda xs: any(isinstance(x, UserStreamConnected) for x in xs))
    try:
        yield a, events, reg
    finally:
        a.stop()


def order(reg, vcoid, side=Side.BUY, price="60000", qty="0.001", tif=TimeInForce.GTC, kind=OrderType.LIMIT):
    from events import to_mantissa
    inst = reg.by_venue(Provider.BINANCE_USDM, "BTCUSDT")
    return Order(1, vcoid, vcoid, inst, side, kind, tif, to_mantissa(price, inst.px_scale) if price else 0,
                 to_mantissa(qty, inst.sz_scale), venue=Provider.BINANCE_USDM)


def best(sim):
    book = sim.venues[V].feeds["BTCUSDT"].driver.book
    from simulator.book import ASK, BID
    return sim.call(lambda: (book.best(BID), book.best(ASK)))   # mantissas at 2 decimals


def px(m: int) -> str:
    return f"{m // 100}.{m % 100:02d}"


def sim_orders(sim) -> dict:
    with urllib.request.urlopen(sim.endpoints[V]["rest"] + "/_sim/orders", timeout=5) as r:
        return orjson.loads(r.read())


def stream_reports(events, vcoid):
    return [e for e in events.of(VenueOrderReported, source="stream") if vcoid in e.client_order_ids]


def test_a_post_only_order_that_would_take_is_refused_and_one_that_rests_is_acked(sim, venue):
    a, events, reg = venue
    _, ask = best(sim)
    a.place(order(reg, "gtx-take", price=px(ask), tif=Tif.GTX))
    a.place(order(reg, "gtx-rest", price=px(ask - 100), tif=Tif.GTX))
    events.wait(lambda xs: events.of(VenueRequestRefused) and stream_reports(events, "gtx-rest")
                and events.of(VenueOrderReported, source="rest"))
    (refused,) = events.of(VenueRequestRefused)
    assert (refused.client_order_id, refused.action, refused.code) == ("gtx-take", "place", -5022)
    assert events.of(VenueOrderReported, source="rest")[0].status is ExecStatus.ACK
    a.query(order(reg, "gtx-take"))      # "will not be recorded in the order history"
    events.wait(lambda xs: events.of(VenueOrderNotFound))
    (rest,) = sim_orders(sim)["orders"]
    assert (rest["clientOrderId"], rest["timeInForce"], rest["status"]) == ("gtx-rest", "GTX", "NEW")


def test_modify_changes_price_and_quantity_and_reports_the_amendment(sim, venue):
    a, events, reg = venue
    o = order(reg, "amend-1", price="60000", qty="0.003")
    a.place(o)
    events.wait(lambda xs: stream_reports(events, "amend-1"))
    a.amend(o, 200, 6000050)            # 0.002 at 60000.50
    events.wait(lambda xs: events.of(VenueOrderReported, source="amend"))
    (rest,) = events.of(VenueOrderReported, source="amend")
    assert (rest.amended, rest.status, rest.qty, rest.price) == (True, ExecStatus.ACK, 200, 6000050)
    events.wait(lambda xs: any(e.amended for e in stream_reports(events, "amend-1")))
    (streamed,) = [e for e in stream_reports(events, "amend-1") if e.amended]
    assert (streamed.qty, streamed.price) == (200, 6000050)
    a.amend(o, 200, 6000050)            # nothing to change: the venue says so
    events.wait(lambda xs: events.of(VenueRequestRefused, action="amend"))
    assert events.of(VenueRequestRefused, action="amend")[0].code == -5027


def test_the_account_by_rest_then_its_changes_by_the_stream(sim, venue):
    a, events, reg = venue
    a.query_account()
    events.wait(lambda xs: events.of(VenueAccountReported, full=True))
    (snap,) = events.of(VenueAccountReported, full=True)
    assert [(b.asset, b.free, b.scale) for b in snap.balances] == [("USDT", 10_000 * 10**8, 8)]
    assert snap.positions == ()
    a.place(order(reg, "mkt-1", price="", qty="0.002", kind=OrderType.MARKET))
    events.wait(lambda xs: any(e.status is ExecStatus.FILLED for e in stream_reports(events, "mkt-1")))
    events.wait(lambda xs: events.of(VenueAccountReported, full=False))
    last = events.of(VenueAccountReported, full=False)[-1]
    (pos,) = last.positions
    assert (pos.instrument.symbol, pos.size, pos.pnl_asset) == ("BTC-USDT-PERP", 200, "USDT")
    fills = [e for e in stream_reports(events, "mkt-1") if e.last_qty]
    # the venue's entry price is the average at 2 + 3 decimals; the adapter rounds it to 2 (half-even)
    average = Fraction(sum(f.last_px * f.last_qty for f in fills), 200)
    assert pos.entry_px == round(Fraction(round(average * 1000), 1000))
    a.query_account()
    events.wait(lambda xs: len(events.of(VenueAccountReported, full=True)) == 2)
    (rest_pos,) = events.of(VenueAccountReported, full=True)[1].positions
    assert (rest_pos.size, rest_pos.entry_px) == (pos.size, pos.entry_px)


def test_a_listen_key_that_runs_out_reconnects_with_a_new_key(sim, venue):
    a, events, reg = venue
    api = sim.venues[V].orders
    first = a.stream.key
    assert sim.call(api.expire_listen_key) == 1
    events.wait(lambda xs: len(events.of(UserStreamConnected)) == 2)
    assert events.of(UserStreamDisconnected)[0].reason == "listenKeyExpired"
    assert a.stream.key != first and api.userstream.counts["keys_created"] == 2
    a.place(order(reg, "after-expiry"))
    events.wait(lambda xs: stream_reports(events, "after-expiry"))   # the new key carries the events


def test_a_dropped_stream_reconnects_and_a_duplicated_report_arrives_twice(sim, venue):
    a, events, reg = venue
    sim.inject(V, "disconnect_userstream", abrupt=True)
    events.wait(lambda xs: len(events.of(UserStreamConnected)) == 2)
    sim.inject(V, "duplicate_report")
    a.place(order(reg, "dup-report"))
    events.wait(lambda xs: len(stream_reports(events, "dup-report")) == 2)
    one, two = stream_reports(events, "dup-report")
    assert one == two and one.status is ExecStatus.ACK   # the engine drops the second by its figures


def test_a_reply_that_never_comes_is_an_unknown_outcome_resolved_by_a_query(sim, venue):
    a, events, reg = venue
    sim.inject(V, "drop_response")
    a.place(order(reg, "lost-reply"))
    events.wait(lambda xs: events.of(VenueOutcomeUnknown))
    assert events.of(VenueOutcomeUnknown)[0].action == "place"
    a.query(order(reg, "lost-reply"))
    events.wait(lambda xs: events.of(VenueOrderReported, source="query"))
    assert events.of(VenueOrderReported, source="query")[0].status is ExecStatus.ACK
    assert sim.stats()[V]["orders"]["received"] == 1


def test_the_listen_key_is_kept_alive_and_a_key_the_venue_lost_means_a_new_one(sim):
    from venues.binance.trading.usdm.stream import FuturesUserStream
    ep = sim.endpoints[V]
    states = Events()
    us = sim.venues[V].orders.userstream
    s = FuturesUserStream(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", lambda ev, raw: None,
                          lambda raw, err: None, states, keepalive_s=0.1)
    s.start()
    try:
        states.wait(lambda xs: len(xs) == 1)
        pause = threading.Event()
        while s.keepalives < 2 and not pause.wait(0.05):
            pass
        assert us.counts["keepalives"] >= 2
        sim.call(us.forget_key)         # the next keepalive gets -1125
        states.wait(lambda xs: len(xs) == 3)
        assert isinstance(states.items[1], UserStreamDisconnected) and "-1125" in states.items[1].reason
        assert isinstance(states.items[2], UserStreamConnected) and us.counts["keys_created"] == 2
    finally:
        s.stop()


@pytest.fixture
def ws_venue(sim):
    ep = sim.endpoints[V]
    events = Events()
    reg = fetch_registry(ep["rest"])
    a = BinanceUsdmAdapter(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", reg, events,
                           timeout_s=1.0, order_entry="ws")
    a.start()
    events.wait(lambda xs: any(isinstance(x, UserStreamConnected) for x in xs))
    try:
        yield a, events, reg
    finally:
        a.stop()


def test_websocket_order_entry_places_modifies_queries_and_cancels_without_rest(sim, ws_venue):
    a, events, reg = ws_venue
    assert a.wsapi.up and a.wsapi.url.endswith("/ws-fapi/v1")
    o = order(reg, "ws-1", price="60000", qty="0.002")
    a.place(o)
    events.wait(lambda xs: events.of(VenueOrderReported, source="ws"))
    assert events.of(VenueOrderReported, source="ws")[0].status is ExecStatus.ACK
    a.amend(o, 100, 6000010)
    events.wait(lambda xs: events.of(VenueOrderReported, source="amend"))
    assert (events.of(VenueOrderReported, source="amend")[0].qty, events.of(VenueOrderReported, source="amend")[0].price,
            events.of(VenueOrderReported, source="amend")[0].amended) == (100, 6000010, True)
    a.query(o)
    events.wait(lambda xs: events.of(VenueOrderReported, source="query"))
    a.cancel(o)
    events.wait(lambda xs: any(e.status is ExecStatus.CANCELLED for e in events.of(VenueOrderReported, source="ws")))
    requests = sim_orders(sim)["requests"]
    assert {k: v for k, v in requests.items() if k.startswith("WS ")} == {
        "WS order.place": 1, "WS order.modify": 1, "WS order.status": 1, "WS order.cancel": 1}
    assert not any(k.endswith("/fapi/v1/order") for k in requests)          # nothing went by REST
    a.place(order(reg, "ws-2", price="99999999"))                            # refused on the WebSocket too
    events.wait(lambda xs: events.of(VenueRequestRefused, client_order_id="ws-2"))
    assert events.of(VenueRequestRefused, client_order_id="ws-2")[0].code == -4016


def test_a_websocket_order_without_an_answer_is_an_unknown_outcome_never_sent_again(sim, ws_venue):
    a, events, reg = ws_venue
    sim.inject(V, "drop_response")
    a.place(order(reg, "ws-lost"))
    events.wait(lambda xs: events.of(VenueOutcomeUnknown))
    a.query(order(reg, "ws-lost"))       # on the reconnected session, or REST while it is down
    events.wait(lambda xs: events.of(VenueOrderReported, source="query"))
    assert events.of(VenueOrderReported, source="query")[0].status is ExecStatus.ACK
    assert sim.stats()[V]["orders"]["received"] == 1


def stream_of(sim, states: Events, **kw):
    from venues.binance.trading.usdm.stream import FuturesUserStream
    ep = sim.endpoints[V]
    return FuturesUserStream(ep["rest"], ep["ws"], "meltica-sim-key", "meltica-sim-secret", lambda ev, raw: None,
                             lambda raw, err: None, states, **kw)


def test_a_connection_at_the_end_of_its_lifetime_is_replaced_new_one_first(sim):
    states = Events()
    s = stream_of(sim, states, lifetime_s=0.3)
    s.start()
    try:
        states.wait(lambda xs: len(xs) >= 3)
        assert all(isinstance(x, UserStreamConnected) for x in states.items)   # never down between
        assert s.rotations >= 2 and sim.venues[V].orders.userstream.counts["keys_created"] == 1   # the same key
    finally:
        s.stop()


def test_a_silent_line_is_dropped_and_a_new_one_subscribed(sim):
    states = Events()
    s = stream_of(sim, states, silence_s=0.3)     # the simulator pings every 20 s: nothing comes meanwhile
    s.start()
    try:
        states.wait(lambda xs: len(xs) >= 3)
        assert isinstance(states.items[1], UserStreamDisconnected) and "silent" in states.items[1].reason
        assert isinstance(states.items[2], UserStreamConnected)
    finally:
        s.stop()


def test_with_the_websocket_session_down_orders_take_rest(sim, ws_venue):
    a, events, reg = ws_venue
    a.wsapi.stop()                       # down: a request would not be sent, so REST takes it
    assert not a.wsapi.up
    a.place(order(reg, "fallback-1"))
    events.wait(lambda xs: events.of(VenueOrderReported, source="rest"))
    requests = sim_orders(sim)["requests"]
    assert requests.get("POST /fapi/v1/order") == 1 and "WS order.place" not in requests
    assert a.ws_entry.fallbacks == 1
