"""WebSocket order entry on Binance spot (venues/binance/trading/wsapi.py) against the simulator:
signing as the docs' HMAC example, place / cancel / status, refusals, a connection dropped
mid-request (an unknown outcome, resolved by a query, never a resend), and the adapter's REST
fallback while the WebSocket session is down."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import orjson
import pytest

from events import ExecStatus, OrderType, Side, TimeInForce, to_mantissa
from events.errors import PeerGone
from venues.binance.trading.adapter import BinanceSpotAdapter, fetch_registry
from venues.binance.trading.rest import BinanceRefused, NotSent
from venues.binance.trading.wsapi import WsApiSession, WsOrderEntry, sign
from venues.trading import (
    Order, VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

from .harness import sim_orders

pytestmark = pytest.mark.timeout(30)
V = "binance-spot"
KEY, SECRET = "meltica-sim-key", "meltica-sim-secret"
DOCS = orjson.loads((Path(__file__).parents[1] / "simulator" / "binance_spot_ws_api_docs.json").read_bytes())


def limit(cid: str, price: str = "60000", tif: str = "GTC") -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": tif, "quantity": "0.001",
            "price": price, "newClientOrderId": cid, "newOrderRespType": "FULL"}


@pytest.fixture
def session(sim):
    s = WsApiSession(sim.endpoints[V]["ws"], KEY, SECRET, timeout_s=1.0)
    s.start()
    assert s.wait_up(10)
    yield s
    s.stop()


def test_the_signature_is_the_docs_hmac_example():
    doc = DOCS["web-socket-api.md#signed-request-example-hmac"]
    params = {k: v for k, v in doc["params"].items() if k not in ("apiKey", "recvWindow", "timestamp")}
    out = sign(params, doc["apiKey"], doc["secretKey"].encode(), doc["params"]["timestamp"],
               doc["params"]["recvWindow"])
    assert out["signature"] == doc["signature"]


def test_place_status_cancel_by_client_order_id_and_the_rate_limits_are_kept(sim, session):
    placed = session.request("order.place", limit("w-1"))
    assert (placed.result["clientOrderId"], placed.result["status"]) == ("w-1", "NEW")
    assert placed.sent_ns <= placed.replied_ns
    assert session.limits[("ORDERS", "SECOND", 10)][0] == 1
    assert session.limits[("REQUEST_WEIGHT", "MINUTE", 1)][1] == 6000
    status = session.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "w-1"})
    assert status.result["status"] == "NEW"
    cancel = session.request("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "w-1"})
    assert (cancel.result["origClientOrderId"], cancel.result["status"]) == ("w-1", "CANCELED")
    assert sim_orders(sim)["requests"] == {"WS order.place": 1, "WS order.status": 1, "WS order.cancel": 1}


def test_a_refusal_carries_the_venue_code(session):
    with pytest.raises(BinanceRefused) as e:
        session.request("order.place", limit("w-tick", price="60000.001"))
    assert (e.value.http_status, e.value.code) == (400, -1013)
    with pytest.raises(BinanceRefused) as e:
        session.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "nobody"})
    assert e.value.code == -2013


def test_a_connection_dropped_mid_request_is_an_unknown_outcome_resolved_by_status(sim, session):
    sim.inject(V, "drop_response")
    with pytest.raises(PeerGone) as e:
        session.request("order.place", limit("w-drop"))
    assert "outcome unknown" in str(e.value) and not isinstance(e.value, NotSent)
    assert session.wait_up(10)                         # the supervisor reconnected
    found = session.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "w-drop"})
    assert found.result["status"] == "NEW"
    assert sim_orders(sim)["received"] == {"w-drop": 1}
    assert session.connects == 2


def test_no_answer_in_time_is_an_unknown_outcome(sim, session):
    sim.inject(V, "drop_response", hang=True)
    with pytest.raises(PeerGone, match="no answer"):
        session.request("order.place", limit("w-hang"))
    assert session.up                                   # the connection itself is fine
    assert session.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "w-hang"}).result


def test_a_session_that_is_down_sends_nothing(sim):
    s = WsApiSession("ws://127.0.0.1:9", KEY, SECRET, timeout_s=0.5)   # nothing listens there
    with pytest.raises(NotSent):
        s.request("order.place", limit("w-none"))
    got = []
    entry = WsOrderEntry(s, got.append, None, None)
    assert entry.place("w-none", limit("w-none"), ()) is False and entry.fallbacks == 1
    assert got == [] and sim_orders(sim)["received"] == {}


# -- the adapter: WS while the session is up, REST while it is down ------------------------

def order(registry, vcoid: str, price: str, tif=TimeInForce.GTC) -> Order:
    inst = registry.by_symbol("BTC-USDT")
    return Order(1, vcoid, vcoid, inst, Side.BUY, OrderType.LIMIT, tif, to_mantissa(price, inst.px_scale),
                 to_mantissa("0.001", inst.sz_scale), created_ns=time.time_ns())


@pytest.fixture
def adapter(sim):
    registry = fetch_registry(sim.endpoints[V]["rest"])
    events: queue.SimpleQueue = queue.SimpleQueue()
    a = BinanceSpotAdapter(sim.endpoints[V]["rest"], sim.endpoints[V]["ws"], KEY, SECRET, registry, events.put,
                           timeout_s=1.0, order_entry="ws")
    a.start()
    assert a.wsapi.wait_up(10)
    a.events, a.reg = events, registry
    yield a
    a.stop()


def next_event(a, kinds, timeout_s: float = 10.0):
    """The next event of one of `kinds` from the adapter (user-stream events in between skipped)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            ev = a.events.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(ev, kinds) and getattr(ev, "source", "ws") != "stream":
            return ev
    raise AssertionError(f"no {kinds} in {timeout_s}s")


def test_the_adapter_places_and_cancels_over_the_websocket_with_the_rest_events(sim, adapter):
    adapter.place(order(adapter.reg, "a-1", "60000"))
    ack = next_event(adapter, (VenueOrderReported,))
    assert (ack.client_order_ids, ack.status, ack.source) == (("a-1",), ExecStatus.ACK, "ws")
    adapter.cancel(order(adapter.reg, "a-1", "60000"))
    done = next_event(adapter, (VenueOrderReported,))
    assert done.status is ExecStatus.CANCELLED and "a-1" in done.client_order_ids
    adapter.query(order(adapter.reg, "a-none", "60000"))
    assert next_event(adapter, (VenueOrderNotFound,)).client_order_id == "a-none"
    requests = sim_orders(sim)["requests"]
    assert (requests["WS order.place"], requests["WS order.cancel"], requests["WS order.status"]) == (1, 1, 1)
    assert not any(k.startswith(("POST", "DELETE")) for k in requests)


def test_the_adapter_reports_a_refusal_as_rest_does(adapter):
    adapter.place(order(adapter.reg, "a-small", "1"))     # 0.001 at 1: below the minimum notional
    ev = next_event(adapter, (VenueRequestRefused,))
    assert (ev.client_order_id, ev.action, ev.code, ev.message) == ("a-small", "place", -1013,
                                                                    "Filter failure: NOTIONAL")


def test_a_dropped_placement_is_unknown_then_queried_and_never_sent_again(sim, adapter):
    sim.inject(V, "drop_response")
    adapter.place(order(adapter.reg, "a-drop", "60000"))
    unknown = next_event(adapter, (VenueOutcomeUnknown,))
    assert (unknown.client_order_id, unknown.action) == ("a-drop", "place") and unknown.sent_ms > 0
    adapter.query(order(adapter.reg, "a-drop", "60000"))   # what the engine does with an unknown outcome
    found = next_event(adapter, (VenueOrderReported,))
    assert (found.client_order_ids, found.status, found.source) == (("a-drop",), ExecStatus.ACK, "query")
    counts = sim_orders(sim)
    assert counts["received"] == {"a-drop": 1} and "POST /api/v3/order" not in counts["requests"]


def test_while_the_websocket_is_down_orders_go_over_rest_once(sim, adapter):
    adapter.wsapi.stop()                                  # the session is down, REST is not
    assert not adapter.wsapi.up
    adapter.place(order(adapter.reg, "a-rest", "60000"))
    ack = next_event(adapter, (VenueOrderReported,))
    assert (ack.client_order_ids, ack.status, ack.source) == (("a-rest",), ExecStatus.ACK, "rest")
    counts = sim_orders(sim)
    assert counts["received"] == {"a-rest": 1}
    assert counts["requests"].get("POST /api/v3/order") == 1 and "WS order.place" not in counts["requests"]
    assert adapter.ws_entry.fallbacks == 1


@pytest.fixture
def one_worker(sim):
    """The adapter with one worker thread: every order's jobs queue on it."""
    registry = fetch_registry(sim.endpoints[V]["rest"])
    events: queue.SimpleQueue = queue.SimpleQueue()
    a = BinanceSpotAdapter(sim.endpoints[V]["rest"], sim.endpoints[V]["ws"], KEY, SECRET, registry, events.put,
                           workers=1, timeout_s=1.0, order_entry="ws")
    a.start()
    assert a.wsapi.wait_up(10)
    a.events, a.reg = events, registry
    yield a
    a.stop()


def test_a_placement_awaiting_its_answer_does_not_hold_the_next_order(sim, one_worker):
    a = one_worker
    sim.inject(V, "drop_response", hang=True)            # the first placement is never answered
    a.place(order(a.reg, "h-hung", "60000"))
    a.place(order(a.reg, "h-next", "60000"))             # queued on the same worker, behind it
    first = next_event(a, (VenueOrderReported, VenueOutcomeUnknown))
    assert isinstance(first, VenueOrderReported) and first.client_order_ids == ("h-next",)
    unknown = next_event(a, (VenueOutcomeUnknown,))      # then the first: no answer within timeout_s
    assert (unknown.client_order_id, unknown.action) == ("h-hung", "place")
    assert sim_orders(sim)["received"] == {"h-hung": 1, "h-next": 1}


def test_a_cancel_waits_for_its_placements_answer_and_never_overtakes_it(sim, one_worker):
    a = one_worker
    sim.inject(V, "delay_response", seconds=0.3)         # the placement is carried out, answered late
    a.place(order(a.reg, "s-1", "60000"))
    a.cancel(order(a.reg, "s-1", "60000"))
    placed = next_event(a, (VenueOrderReported, VenueRequestRefused))
    assert (placed.client_order_ids, placed.status) == (("s-1",), ExecStatus.ACK)
    cancelled = next_event(a, (VenueOrderReported, VenueRequestRefused))
    assert isinstance(cancelled, VenueOrderReported) and cancelled.status is ExecStatus.CANCELLED
    assert not a.ws_entry._placing                        # nothing left in flight


def test_a_placement_in_flight_when_the_connection_is_lost_is_an_unknown_outcome(sim, one_worker):
    a = one_worker
    sim.inject(V, "drop_response", hang=True)
    a.place(order(a.reg, "l-1", "60000"))
    wait_for(lambda: sim_orders(sim)["received"].get("l-1"))     # the venue has it, unanswered
    a.wsapi.stop()                                        # ends the connection under the request
    unknown = next_event(a, (VenueOutcomeUnknown,))
    assert (unknown.client_order_id, unknown.action) == ("l-1", "place") and "outcome unknown" in unknown.reason


# -- the connection's life: lifetime and serverShutdown moves, make before break ---------------

def wait_for(cond, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_server_shutdown_moves_to_a_new_connection_and_orders_keep_going(sim, session):
    sim.inject(V, "server_shutdown", seconds=2)
    wait_for(lambda: session.rotations == 1)
    placed = session.request("order.place", limit("w-moved"))
    assert placed.result["status"] == "NEW" and session.connects == 2


def test_a_connection_is_replaced_at_its_lifetime_before_it_is_closed(sim):
    s = WsApiSession(sim.endpoints[V]["ws"], KEY, SECRET, timeout_s=1.0, lifetime_s=0.3)
    s.start()
    try:
        assert s.wait_up(10)
        wait_for(lambda: s.rotations >= 2)
        assert s.up
        with pytest.raises(BinanceRefused):   # answered (not lost) on the current connection
            s.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "none"})
    finally:
        s.stop()
    assert s.connects == s.rotations + 1 and s.last_error == ""   # every connection moved from, none lost


# -- execution's choice of path per venue ------------------------------------------------------

class _Tel:
    def __init__(self):
        self.events = []

    def event(self, name, **fields):
        self.events.append((name, fields))


@pytest.mark.parametrize("adapter_paths, asked, path", [(("rest", "ws"), "ws", "ws"), (None, "ws", "rest"),
                                                         (("rest", "ws"), "rest", "rest")])
def test_execution_gives_ws_entry_only_to_an_adapter_that_offers_it(capsys, adapter_paths, asked, path):
    from types import SimpleNamespace

    from events import Provider
    from execution.process import ExecutionProcess
    proc = SimpleNamespace(order_entry=asked, order_paths={}, tel=_Tel())
    adapter = SimpleNamespace(order_entry="rest", **({"order_entries": adapter_paths} if adapter_paths else {}))
    ExecutionProcess._choose_order_entry(proc, Provider.OKX, adapter)
    assert proc.order_paths == {Provider.OKX: path} and adapter.order_entry == path
    (name, ev), = proc.tel.events
    assert (name, ev["venue"], ev["requested"], ev["path"]) == ("exec.order_entry", "okx", asked, path)
    if path != asked:
        assert "offers no ws order entry" in ev["reason"] and "okx" in capsys.readouterr().err
