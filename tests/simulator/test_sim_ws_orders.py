"""Binance spot order entry over the simulator's WebSocket API (`order.place`, `order.cancel`,
`order.status`): driven by Binance's own SDK (binance-sdk-spot) and by hand-signed frames, checked
against the docs' shapes (web-socket-api.md "Place new order (TRADE)", "Cancel order (TRADE)",
"Query order (USER_DATA)") and against the REST path that shares its checks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import orjson
import pytest
import websocket
from binance_common.configuration import ConfigurationWebSocketAPI
from binance_sdk_spot.spot import Spot

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET
from simulator.userstream import signature_payload

from .venue_testkit import connect, get

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore::DeprecationWarning:binance_common")]
V = "binance-spot"
# The FULL answer's order object, as web-socket-api.md "Place new order (TRADE)" shows it
FULL_KEYS = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
             "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
             "workingTime", "selfTradePreventionMode", "fills"}
CANCEL_KEYS = {"symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId", "transactTime", "price",
               "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce",
               "type", "side", "selfTradePreventionMode"}


def signed(secret: str = DEFAULT_SECRET, **params) -> dict:
    params = {"apiKey": DEFAULT_KEY, "timestamp": int(time.time() * 1000), **params}
    params["signature"] = hmac.new(secret.encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
    return params


def call(ws, method: str, params: dict, rid=1) -> dict:
    ws.send(orjson.dumps({"id": rid, "method": method, "params": params}).decode())
    return orjson.loads(ws.recv())


def limit(cid: str, side: str = "BUY", price: str = "60000", **over) -> dict:
    return {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
            "price": price, "newClientOrderId": cid, **over}


def sim_orders(sim) -> dict:
    return get(sim.endpoints[V]["rest"] + "/_sim/orders")[1]


@pytest.fixture
def ws_sim(make_sim):
    sim = make_sim(venues=[V])
    ws = connect(sim.endpoints[V]["ws"] + "/ws-api/v3")
    yield sim, ws
    ws.close()


def test_place_answers_the_full_order_object_with_order_rate_limits(ws_sim):
    sim, ws = ws_sim
    answer = call(ws, "order.place", signed(**limit("ws-1")), rid="e2a85d9f")
    assert (answer["id"], answer["status"]) == ("e2a85d9f", 200)
    assert set(answer["result"]) == FULL_KEYS
    assert (answer["result"]["clientOrderId"], answer["result"]["status"]) == ("ws-1", "NEW")
    kinds = [(r["rateLimitType"], r["interval"], r["intervalNum"]) for r in answer["rateLimits"]]
    assert kinds == [("ORDERS", "SECOND", 10), ("ORDERS", "DAY", 1), ("REQUEST_WEIGHT", "MINUTE", 1)]
    assert answer["rateLimits"][0]["count"] == 1
    again = call(ws, "order.place", signed(**limit("ws-2")), rid=2)
    assert again["rateLimits"][0]["count"] == 2
    assert again["rateLimits"][2]["count"] == 0                  # a successful order.place weighs 0
    refused = call(ws, "order.place", signed(**limit("ws-2")), rid=3)   # a duplicate: 1
    status = call(ws, "order.status", signed(symbol="BTCUSDT", origClientOrderId="ws-1"), rid=4)   # 4
    assert (refused["rateLimits"][-1]["count"], status["rateLimits"][-1]["count"]) == (1, 5)
    counts = sim_orders(sim)
    assert (counts["received"], counts["accepted"]) == ({"ws-1": 1, "ws-2": 2}, {"ws-1": 1, "ws-2": 1})
    assert (counts["requests"]["WS order.place"], counts["requests"]["WS order.status"]) == (3, 1)


def test_a_marketable_order_fills_and_its_fills_are_in_the_answer(ws_sim):
    sim, ws = ws_sim
    answer = call(ws, "order.place", signed(**limit("ws-take", price="70000", timeInForce="IOC")))
    r = answer["result"]
    assert r["status"] in ("FILLED", "PARTIALLY_FILLED", "EXPIRED")
    assert r["fills"] and sum(float(f["qty"]) for f in r["fills"]) == pytest.approx(float(r["executedQty"]))


def test_cancel_and_status_by_client_order_id(ws_sim):
    _sim, ws = ws_sim
    call(ws, "order.place", signed(**limit("ws-c")))
    status = call(ws, "order.status", signed(symbol="BTCUSDT", origClientOrderId="ws-c"))
    assert (status["status"], status["result"]["status"], status["result"]["clientOrderId"]) == (200, "NEW", "ws-c")
    cancel = call(ws, "order.cancel", signed(symbol="BTCUSDT", origClientOrderId="ws-c", newClientOrderId="ws-c-x"))
    assert cancel["status"] == 200 and set(cancel["result"]) == CANCEL_KEYS
    assert (cancel["result"]["origClientOrderId"], cancel["result"]["clientOrderId"]) == ("ws-c", "ws-c-x")
    assert cancel["result"]["status"] == "CANCELED"
    twice = call(ws, "order.cancel", signed(symbol="BTCUSDT", origClientOrderId="ws-c"))
    assert (twice["status"], twice["error"]["code"]) == (400, -2011)
    missing = call(ws, "order.status", signed(symbol="BTCUSDT", origClientOrderId="never-placed"))
    assert (missing["status"], missing["error"]["code"]) == (400, -2013)


# each request is signed when the test runs (signed at collection, it would go stale in a long session)
@pytest.mark.parametrize("params, status, code", [
    (lambda: signed(secret="not-the-secret", **limit("bad-sig")), 400, -1022),
    (lambda: signed(**limit("bad-lot", quantity="0.0000001")), 400, -1013),
    (lambda: signed(**limit("too-precise", quantity="0.000000001")), 400, -1111),
    (lambda: signed(**limit("bad-tick", price="60000.001")), 400, -1013),
    (lambda: signed(**limit("bad-side", side="UP")), 400, -1117),
    (lambda: signed(**limit("bad-param", listenKey="x")), 400, -1104),
    (lambda: signed(timestamp=int(time.time() * 1000) - 120_000, **limit("stale")), 400, -1021),
])
def test_bad_orders_are_refused_with_the_codes_rest_gives(ws_sim, params, status, code):
    sim, ws = ws_sim
    answer = call(ws, "order.place", params())
    assert (answer["status"], answer["error"]["code"]) == (status, code), answer
    assert sim_orders(sim)["accepted"] == {}


def test_an_open_client_order_id_placed_again_is_a_duplicate(ws_sim):
    sim, ws = ws_sim
    assert call(ws, "order.place", signed(**limit("dup")))["status"] == 200
    answer = call(ws, "order.place", signed(**limit("dup")))
    assert (answer["status"], answer["error"]["code"]) == (400, -2010)
    counts = sim_orders(sim)
    assert (counts["received"]["dup"], counts["accepted"]["dup"], counts["rejected"]) == (2, 1, 1)


def test_a_dropped_answer_carries_the_order_out_then_drops_the_connection(ws_sim):
    sim, ws = ws_sim
    sim.inject(V, "drop_response")
    ws.send(orjson.dumps({"id": 1, "method": "order.place", "params": signed(**limit("dropped"))}).decode())
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        ws.recv()
    assert sim_orders(sim)["accepted"] == {"dropped": 1}
    assert get(sim.endpoints[V]["rest"] + "/_sim/ws_orders")[1]["dropped"] == 1


def test_the_official_sdk_places_queries_and_cancels_over_the_websocket_api(make_sim):
    sim = make_sim(venues=[V])

    async def run():
        cfg = ConfigurationWebSocketAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                        stream_url=sim.endpoints[V]["ws"] + "/ws-api/v3")
        conn = await Spot(config_ws_api=cfg).websocket_api.create_connection()
        try:
            placed = (await conn.order_place(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                                             quantity=0.01, price=60000.0, new_client_order_id="sdk-ws-1",
                                             new_order_resp_type="FULL")).data()
            status = (await conn.order_status(symbol="BTCUSDT", orig_client_order_id="sdk-ws-1")).data()
            cancel = (await conn.order_cancel(symbol="BTCUSDT", orig_client_order_id="sdk-ws-1")).data()
            return placed, status, cancel
        finally:
            await conn.close_connection(close_session=True)

    placed, status, cancel = asyncio.run(run())
    assert (placed.status, placed.result.client_order_id, placed.result.status) == (200, "sdk-ws-1", "NEW")
    assert placed.result.orig_qty == "0.01000000"
    assert (status.result.client_order_id, status.result.status) == ("sdk-ws-1", "NEW")
    assert (cancel.result.orig_client_order_id, cancel.result.status) == ("sdk-ws-1", "CANCELED")
    assert sim_orders(sim)["accepted"] == {"sdk-ws-1": 1}
