"""Binance spot signed order API and user-data stream, over HTTP and WebSocket."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import orjson
import pytest
import websocket

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .venue_testkit import binance_barrier, connect, get, http as http_call

pytestmark = pytest.mark.timeout(30)
REPORT_FIELDS = set("e E s c S o f q p P F g C x X r i l z L n N T t I w m M O Z Y Q W V".split())


class Client:
    """A minimal signed Binance REST client, as an adapter would write it."""

    def __init__(self, rest: str, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET):
        self.rest, self.key, self.secret = rest, key, secret.encode()

    def signed(self, method: str, path: str, params: dict, in_body: bool = False,
               signature: str | None = None, key: str | None = None) -> tuple[int, object]:
        params = {**params}
        params.setdefault("timestamp", int(time.time() * 1000))
        query = urllib.parse.urlencode(params)
        sig = signature or hmac.new(self.secret, query.encode(), hashlib.sha256).hexdigest()
        query += "&signature=" + sig
        headers = {"X-MBX-APIKEY": self.key if key is None else key}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return http_call(method, self.rest + path, query.encode(), headers)
        return http_call(method, f"{self.rest}{path}?{query}", None, headers)

    def new(self, **params) -> tuple[int, dict]:
        return self.signed("POST", "/api/v3/order", params, in_body=True)

    def query(self, **params) -> tuple[int, dict]:
        return self.signed("GET", "/api/v3/order", params)

    def cancel(self, **params) -> tuple[int, dict]:
        return self.signed("DELETE", "/api/v3/order", params)

    def user_stream(self, ws_base: str) -> websocket.WebSocket:
        """A WebSocket API connection subscribed to the account's user data."""
        ws = connect(ws_base + "/ws-api/v3")
        params = {"apiKey": self.key, "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["signature"] = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        ws.send(orjson.dumps({"id": "sub", "method": "userDataStream.subscribe.signature",
                              "params": params}).decode())
        answer = orjson.loads(ws.recv())
        assert (answer["id"], answer["status"], answer["result"]) == ("sub", 200, {"subscriptionId": 0})
        return ws


@pytest.fixture
def spot(make_sim):
    sim = make_sim(venues=["binance-spot"])
    return sim, Client(sim.endpoints["binance-spot"]["rest"])


def _top(sim):
    _, depth = get(sim.endpoints["binance-spot"]["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5")
    return depth["bids"][0], depth["asks"][0]


def test_limit_order_round_trip_new_query_open_cancel(spot):
    sim, c = spot
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity="0.01000", price="60000.00", newClientOrderId="rt-1")
    assert status == 200
    assert set(body) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price",
                         "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status",
                         "timeInForce", "type", "side", "workingTime", "selfTradePreventionMode", "fills"}
    assert (body["status"], body["price"], body["origQty"], body["fills"]) == (
        "NEW", "60000.00000000", "0.01000000", [])
    oid = body["orderId"]
    assert c.query(symbol="BTCUSDT", orderId=oid)[1]["status"] == "NEW"
    assert c.query(symbol="BTCUSDT", origClientOrderId="rt-1")[1]["orderId"] == oid
    status, opened = c.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [o["clientOrderId"] for o in opened] == ["rt-1"]
    status, cancelled = c.cancel(symbol="BTCUSDT", origClientOrderId="rt-1", newClientOrderId="cx-1")
    assert status == 200 and cancelled["status"] == "CANCELED"
    assert (cancelled["origClientOrderId"], cancelled["clientOrderId"]) == ("rt-1", "cx-1")
    assert c.query(symbol="BTCUSDT", orderId=oid)[1]["status"] == "CANCELED"
    assert c.cancel(symbol="BTCUSDT", orderId=oid) == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert c.query(symbol="BTCUSDT", orderId=999999) == (400, {"code": -2013, "msg": "Order does not exist."})


def test_authentication_errors(spot):
    sim, c = spot
    order = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                 quantity="0.01", price="60000")
    assert c.signed("POST", "/api/v3/order", order, signature="00" * 32)[1]["code"] == -1022
    assert c.signed("POST", "/api/v3/order", order, signature="00" * 32)[0] == 400
    assert c.signed("POST", "/api/v3/order", order, key="someone-else") == (
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    assert c.signed("POST", "/api/v3/order", order, key="")[1]["code"] == -2014
    stale = {**order, "timestamp": int(time.time() * 1000) - 60_000}
    assert c.signed("POST", "/api/v3/order", stale)[1]["code"] == -1021
    wrong_secret = Client(c.rest, secret="not-the-secret")
    assert wrong_secret.new(**order)[1]["code"] == -1022
    assert c.new(**order)[0] == 200                     # the same order, signed right


@pytest.mark.parametrize("change, code, msg", [
    ({"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
    ({"price": "60000.001"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"quantity": "0.000011"}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": "0"}, -1013, "Invalid quantity."),
    ({"quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
    ({"quantity": "-1"}, -1100, None),
    ({"quantity": "0.00001", "price": "100"}, -1013, "Filter failure: NOTIONAL"),
    ({"side": "HOLD"}, -1117, "Invalid side."),
    ({"type": "STOP"}, -1116, "Invalid orderType."),
    ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
    ({"timeInForce": None}, -1102, None),
    ({"type": "MARKET", "timeInForce": None}, -1106, "Parameter 'price' sent when not required."),
    ({"newClientOrderId": "bad id!"}, -1100, None),
    ({"icebergQty": "1"}, -1104, None),
])
def test_bad_orders_are_rejected_with_binance_codes(spot, change, code, msg):
    sim, c = spot
    order = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                 quantity="0.01", price="60000")
    order.update(change)
    order = {k: v for k, v in order.items() if v is not None}
    status, body = c.new(**order)
    assert status == 400 and body["code"] == code
    if msg:
        assert body["msg"] == msg


def test_market_order_fills_against_synthetic_liquidity_and_public_trades_match(spot):
    sim, c = spot
    md = connect(sim.endpoints["binance-spot"]["ws"] + "/stream?streams=btcusdt@trade")
    binance_barrier(md)
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5")
    assert status == 200 and body["status"] == "FILLED"
    assert sum(Decimal(f["qty"]) for f in body["fills"]) == Decimal("0.5")
    assert Decimal(body["cummulativeQuoteQty"]) == sum(
        Decimal(f["qty"]) * Decimal(f["price"]) for f in body["fills"])
    public = [f["data"] for f in binance_barrier(md)]
    md.close()
    assert [t["t"] for t in public] == [f["tradeId"] for f in body["fills"]]
    assert all(t["m"] is False for t in public)           # the buyer took liquidity


def test_marketable_ioc_fills_what_it_can_and_expires(spot):
    sim, c = spot
    _bid, (ask_px, ask_qty) = _top(sim)
    qty = Decimal(ask_qty) + Decimal("1")
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                         quantity=str(qty), price=ask_px, newOrderRespType="RESULT")
    assert status == 200 and "fills" not in body
    assert body["status"] == "EXPIRED" and Decimal(body["executedQty"]) == Decimal(ask_qty)


def test_ack_response_is_minimal(spot):
    sim, c = spot
    status, body = c.new(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                         quantity="0.1", price="9000", newOrderRespType="ACK")
    assert set(body) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}


def test_duplicate_client_order_id_of_an_open_order_is_rejected(spot):
    sim, c = spot
    order = dict(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                 quantity="0.01", price="70000", newClientOrderId="dup-1")
    assert c.new(**order)[0] == 200
    assert c.new(**order) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    c.cancel(symbol="BTCUSDT", origClientOrderId="dup-1")
    assert c.new(**order)[0] == 200                      # reusable once closed
    _, seen = get(c.rest + "/_sim/orders")
    assert seen["received"]["dup-1"] == 3 and seen["accepted"]["dup-1"] == 2
    assert seen["rejected"] == 1
    assert [o["status"] for o in seen["orders"]] == ["CANCELED", "NEW"]


def _event(ws, kind: str = "executionReport") -> dict:
    """The next event of `kind` of a subscribed WebSocket API connection, unwrapped (the
    `outboundAccountPosition` events between reports are test_sim_accounts.py's)."""
    while True:
        frame = orjson.loads(ws.recv())
        assert set(frame) == {"subscriptionId", "event"} and frame["subscriptionId"] == 0
        if frame["event"]["e"] == kind:
            return frame["event"]


def _reports(ws, until):
    out = []
    while True:
        out.append(_event(ws))
        if until(out):
            return out


def test_user_stream_reports_a_limit_order_partially_then_fully_filled(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints["binance-spot"]["ws"])
    _bid, (ask_px, ask_qty) = _top(sim)
    qty = Decimal(ask_qty) + Decimal("0.05")
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity=str(qty), price=ask_px, newClientOrderId="pf-1")
    assert body["status"] == "PARTIALLY_FILLED"
    for _ in range(200):
        sim.advance(5)
        if c.query(symbol="BTCUSDT", origClientOrderId="pf-1")[1]["status"] == "FILLED":
            break
    reports = _reports(user, lambda r: r[-1]["X"] == "FILLED")
    user.close()
    assert all(set(r) == REPORT_FIELDS for r in reports)
    assert [r["x"] for r in reports][:2] == ["NEW", "TRADE"] and reports[0]["X"] == "NEW"
    assert reports[1]["X"] == "PARTIALLY_FILLED" and reports[1]["m"] is False
    assert all(r["x"] == "TRADE" for r in reports[1:]) and reports[-1]["m"] is True
    trade_ids = [r["t"] for r in reports[1:]]
    assert len(set(trade_ids)) == len(trade_ids) and reports[0]["t"] == -1
    assert sum(Decimal(r["l"]) for r in reports) == qty == Decimal(reports[-1]["z"])
    assert reports[0]["w"] is True and reports[-1]["w"] is False
    assert {r["c"] for r in reports} == {"pf-1"} and {r["i"] for r in reports} == {body["orderId"]}


def test_user_stream_reports_cancel_with_both_client_ids(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints["binance-spot"]["ws"])
    c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
          quantity="0.01", price="50000", newClientOrderId="cc-1")
    c.cancel(symbol="BTCUSDT", origClientOrderId="cc-1", newClientOrderId="cc-cancel")
    new, cancel = _event(user), _event(user)
    user.close()
    assert (new["x"], cancel["x"], cancel["X"]) == ("NEW", "CANCELED", "CANCELED")
    assert (cancel["c"], cancel["C"]) == ("cc-cancel", "cc-1")


def test_the_retired_listen_key_endpoints_answer_410_gone(spot):
    sim, c = spot
    for method in ("POST", "PUT", "DELETE"):
        req = urllib.request.Request(f"{c.rest}/api/v3/userDataStream", data=b"", method=method,
                                     headers={"X-MBX-APIKEY": DEFAULT_KEY})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 410 and b"410 Gone" in err.value.read()
    assert sim.stats()["binance-spot"]["orders"]["userstream"]["gone"] == 3


def test_dropped_response_leaves_an_accepted_order_behind(spot):
    sim, c = spot
    sim.inject("binance-spot", "drop_response")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
              quantity="0.01", price="60000", newClientOrderId="lost-1")
    status, body = c.query(symbol="BTCUSDT", origClientOrderId="lost-1")
    assert status == 200 and body["status"] == "NEW"
    _, seen = get(c.rest + "/_sim/orders")
    assert seen["accepted"] == {"lost-1": 1}


def test_delayed_response_arrives_after_the_execution_report(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints["binance-spot"]["ws"])
    sim.inject("binance-spot", "delay_response", seconds=0.3)
    started = time.monotonic()
    status, _ = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                      quantity="0.01", price="60000")
    assert status == 200 and time.monotonic() - started >= 0.3
    assert _event(user)["x"] == "NEW"
    user.close()


def test_duplicate_report_and_userstream_disconnect(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints["binance-spot"]["ws"])
    sim.inject("binance-spot", "duplicate_report")
    c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
          quantity="0.01", price="60000")
    first, second = _event(user), _event(user)
    assert first == second and first["x"] == "NEW"
    assert _event(user, "outboundAccountPosition")["B"][0]["a"] == "USDT"  # the lock, sent once
    sim.inject("binance-spot", "disconnect_userstream")
    opcode, _ = user.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert sim.stats()["binance-spot"]["faults"]["applied"]["disconnect_userstream"] == 1


def test_resting_user_order_shows_in_public_depth(spot):
    sim, c = spot
    md = connect(sim.endpoints["binance-spot"]["ws"] + "/ws/btcusdt@depth@100ms")
    binance_barrier(md)
    c.new(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
          quantity="1.23456", price="70000")
    diff = binance_barrier(md)[0]
    md.close()
    assert diff["a"] == [["70000.00000000", "1.23456000"]]


def test_escaped_and_plain_parameters_read_alike_and_each_order_is_timed(spot):
    _, c = spot
    plain = dict(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01", price="70000")
    status, body = c.new(**plain, newClientOrderId="t-plain")
    assert status == 200 and body["clientOrderId"] == "t-plain"
    status, body = c.signed("POST", "/api/v3/order", {**plain, "newClientOrderId": "t:esc/1"})  # %3A, %2F
    assert status == 200 and body["clientOrderId"] == "t:esc/1" and body["origQty"] == "0.01000000"
    _, seen = get(c.rest + "/_sim/orders")
    assert seen["handler_us"]["n"] == 2 and seen["handler_us"]["p50"] > 0
