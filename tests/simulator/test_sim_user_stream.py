"""Binance spot user data over the WebSocket API (/ws-api/v3), checked with Binance's own SDK
(binance-sdk-spot) and against the docs examples in binance_spot_ws_api_docs.json."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path

import orjson
import pytest
import websocket
from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketAPI
from binance_sdk_spot.spot import Spot

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET
from simulator.userstream import signature_payload

from .venue_testkit import connect

# binance_common passes aiohttp a float timeout, which aiohttp 3.14 deprecates: their matter
pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore::DeprecationWarning:binance_common")]
V = "binance-spot"
DOCS = orjson.loads((Path(__file__).with_name("binance_spot_ws_api_docs.json")).read_bytes())
# user-data-stream.md "Account Update", as developers.binance.com/docs/binance-spot-api-docs/user-data-stream
# shows it (read 2026-12-02)
ACCOUNT_UPDATE_DOC = {"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 1564034571105,
                                                     "u": 1564034571073,
                                                     "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]}}
SUBSCRIBE_DOC = DOCS["web-socket-api.md#subscribe-to-user-data-stream-through-signature-subscription-user_stream"]


def signed(key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET, **over) -> dict:
    params = {"apiKey": key, "timestamp": int(time.time() * 1000), **over}
    params["signature"] = hmac.new(secret.encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
    return params


def call(ws, method: str, params: dict | None = None, rid="r") -> dict:
    """Send one request and return its answer (events before it must not be there)."""
    ws.send(orjson.dumps({"id": rid, "method": method, **({"params": params} if params is not None else {})}).decode())
    return orjson.loads(ws.recv())


def ws_api(sim) -> websocket.WebSocket:
    return connect(sim.endpoints[V]["ws"] + "/ws-api/v3")


def rest_sdk(sim) -> Spot:
    return Spot(config_rest_api=ConfigurationRestAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                                     base_path=sim.endpoints[V]["rest"]))


def userstream_stats(sim) -> dict:
    return sim.stats()[V]["orders"]["userstream"]


def test_the_signature_is_computed_as_the_docs_hmac_example_says():
    doc = DOCS["web-socket-api.md#signed-request-example-hmac"]
    assert signature_payload(doc["params"]) == doc["payload"]
    params = {**doc["params"], "signature": "ignored"}  # never part of what is signed
    sig = hmac.new(doc["secretKey"].encode(), signature_payload(params).encode(), hashlib.sha256).hexdigest()
    assert sig == doc["signature"]


def test_the_sdk_subscribes_and_reads_the_reports_of_sdk_orders(make_sim):
    sim = make_sim(venues=[V])
    spot = rest_sdk(sim)
    got: list = []

    async def run():
        cfg = ConfigurationWebSocketAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                        stream_url=sim.endpoints[V]["ws"] + "/ws-api/v3")
        conn = await Spot(config_ws_api=cfg).websocket_api.create_connection()
        try:
            sub = await conn.user_data_stream_subscribe_signature(recv_window=5000)
            assert sub.response.data().result.subscription_id == 0
            sub.stream.on("message", got.append)
            listed = (await conn.session_subscriptions()).data()
            assert [s.subscription_id for s in listed.result] == [0]
            placed = await asyncio.to_thread(
                spot.rest_api.new_order, symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                quantity=0.01, price=60000.0, new_client_order_id="sdk-1")
            assert placed.data().status == "NEW"
            await asyncio.to_thread(spot.rest_api.delete_order, symbol="BTCUSDT", orig_client_order_id="sdk-1",
                                    new_client_order_id="sdk-1-cancel")
            for _ in range(200):
                if sum(type(m.actual_instance).__name__ == "ExecutionReport" for m in got) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert (await conn.user_data_stream_unsubscribe()).data().status == 200
        finally:
            await conn.close_connection(close_session=True)

    asyncio.run(run())
    balances = [m.actual_instance for m in got if type(m.actual_instance).__name__ == "OutboundAccountPosition"]
    reports = [m.actual_instance for m in got if type(m.actual_instance).__name__ != "OutboundAccountPosition"]
    assert [type(r).__name__ for r in reports] == ["ExecutionReport", "ExecutionReport", "EventStreamTerminated"]
    # the order locked 600 USDT, the cancel gave it back: each an outboundAccountPosition the SDK reads
    assert [[(b.a, b.l) for b in ev.B] for ev in balances] == [[("USDT", "600.00000000")],
                                                                         [("USDT", "0.00000000")]]
    new, cancel, _ended = reports
    assert (new.x, new.X, new.c, new.C) == ("NEW", "NEW", "sdk-1", "")
    assert (cancel.x, cancel.X, cancel.c, cancel.C) == ("CANCELED", "CANCELED", "sdk-1-cancel", "sdk-1")
    stats = userstream_stats(sim)
    assert (stats["subscribes"], stats["unsubscribes"], stats["refused"]) == (1, 1, 0)


def test_answers_and_events_have_the_documented_shapes(make_sim):
    sim = make_sim(venues=[V])
    ws = ws_api(sim)
    answer = call(ws, "userDataStream.subscribe.signature", signed(recvWindow=5000), rid=SUBSCRIBE_DOC["request"]["id"])
    assert {k: answer[k] for k in SUBSCRIBE_DOC["response"]} == SUBSCRIBE_DOC["response"]
    assert set(answer) == set(SUBSCRIBE_DOC["response"]) | {"rateLimits"}
    rest_sdk(sim).rest_api.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                                     quantity=0.01, price=60000.0)
    frame = orjson.loads(ws.recv())
    doc = DOCS["user-data-stream.md#order-update"]
    assert set(frame) == set(doc) - {"_conditional"}
    assert set(frame["event"]) == set(doc["event"]) - set(doc["_conditional"])
    balances = orjson.loads(ws.recv())  # the order locked quote: the account update follows its report
    assert set(balances) == set(ACCOUNT_UPDATE_DOC) and set(balances["event"]) == set(ACCOUNT_UPDATE_DOC["event"])
    assert [set(b) for b in balances["event"]["B"]] == [set(ACCOUNT_UPDATE_DOC["event"]["B"][0])]
    unsub = DOCS["web-socket-api.md#unsubscribe-from-user-data-stream"]
    ws.send(orjson.dumps(unsub["request"]).decode())
    ended, answer = orjson.loads(ws.recv()), orjson.loads(ws.recv())
    terminated = DOCS["user-data-stream.md#event-stream-terminated"]
    assert set(ended) == set(terminated) and set(ended["event"]) == set(terminated["event"])
    assert ended["event"]["e"] == "eventStreamTerminated"
    assert {k: answer[k] for k in unsub["response"]} == unsub["response"]
    failed = DOCS["web-socket-api.md#response-format (failed response)"]
    refused = call(ws, "userDataStream.subscribe.signature", signed(secret="wrong"))
    assert set(refused) == set(failed) and set(refused["error"]) == set(failed["error"])
    ws.close()


@pytest.mark.parametrize("params, status, code", [
    (signed(secret="not-the-secret"), 400, -1022),
    (signed(key="someone-else"), 401, -2015),
    ({k: v for k, v in signed().items() if k != "timestamp"}, 400, -1102),
    (signed(timestamp=int(time.time() * 1000) - 120_000), 400, -1021),
    (signed(recvWindow=60001), 400, -1131),
    (signed(listenKey="x"), 400, -1104),
])
def test_bad_subscriptions_are_refused_with_binance_codes(make_sim, params, status, code):
    sim = make_sim(venues=[V])
    ws = ws_api(sim)
    answer = call(ws, "userDataStream.subscribe.signature", params)
    assert (answer["status"], answer["error"]["code"]) == (status, code)
    assert call(ws, "session.subscriptions")["result"] == []
    ws.close()


def test_one_subscription_per_account_and_connection_and_the_docs_request_is_refused(make_sim):
    sim = make_sim(venues=[V])
    ws = ws_api(sim)
    assert call(ws, "userDataStream.subscribe.signature", signed())["result"] == {"subscriptionId": 0}
    again = call(ws, "userDataStream.subscribe.signature", signed())
    assert again["error"] == {"code": -2035, "msg": "User Data Stream subscription already active."}
    docs_request = call(ws, SUBSCRIBE_DOC["request"]["method"], SUBSCRIBE_DOC["request"]["params"])
    assert docs_request["status"] == 401  # the docs' example key is not this account's
    assert call(ws, "userDataStream.start", {"apiKey": DEFAULT_KEY})["error"]["code"] == -1020  # retired
    assert call(ws, "time")["result"]["serverTime"] > 0
    ws.close()


def test_the_server_pings_every_interval_and_keeps_a_ponging_connection(make_sim):
    sim = make_sim(venues=[V], user_stream_ping=0.1)
    sim.call(lambda: setattr(sim.venues[V].userstream, "pong_timeout_s", 0.3))  # Binance: a minute
    ws = ws_api(sim)
    pings = 0
    while pings < 6:   # 0.6 s: twice the pong timeout
        opcode, _frame = ws.recv_data_frame(True)  # websocket-client answers with a pong
        pings += opcode == websocket.ABNF.OPCODE_PING
    assert call(ws, "ping")["result"] == {}
    assert userstream_stats(sim)["pong_timeouts"] == 0
    ws.close()


def test_a_connection_that_never_pongs_is_closed(make_sim):
    sim = make_sim(venues=[V], user_stream_ping=0.1)
    sim.call(lambda: setattr(sim.venues[V].userstream, "pong_timeout_s", 0.3))  # Binance: a minute
    ws = ws_api(sim)   # never read from, so websocket-client never answers a ping
    deadline = time.monotonic() + 10
    while userstream_stats(sim)["pong_timeouts"] == 0:
        assert time.monotonic() < deadline, userstream_stats(sim)
        time.sleep(0.02)
    assert userstream_stats(sim)["disconnects"] == 1
    ws.close()


def test_connections_end_at_the_lifetime_mark(make_sim):
    sim = make_sim(venues=[V], user_stream_lifetime=0.3)
    ws = ws_api(sim)
    call(ws, "userDataStream.subscribe.signature", signed())
    opcode, _ = ws.recv_data_frame(True)
    while opcode == websocket.ABNF.OPCODE_PING:
        opcode, _ = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    deadline = time.monotonic() + 5
    while userstream_stats(sim)["subscriptions"] and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = userstream_stats(sim)
    assert (stats["lifetime_closes"], stats["subscriptions"], stats["gaps"]) == (1, 0, 1)


def test_server_shutdown_is_announced_then_the_connection_closed(make_sim):
    sim = make_sim(venues=[V])
    ws = ws_api(sim)
    call(ws, "userDataStream.subscribe.signature", signed())
    sim.inject(V, "server_shutdown", seconds=0.2)
    later = ws_api(sim)  # opened after the notice: not shut down
    notice = orjson.loads(ws.recv())
    doc = DOCS["web-socket-api.md#server-shutdown"]
    assert set(notice) == set(doc) and set(notice["event"]) == set(doc["event"])
    assert notice["event"]["e"] == "serverShutdown"
    opcode, _ = ws.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert call(later, "ping")["status"] == 200
    later.close()
    assert sim.stats()[V]["faults"]["applied"]["server_shutdown"] == 1


def test_a_delayed_subscription_is_neither_live_nor_answered_until_its_time(make_sim):
    sim = make_sim(venues=[V])
    ws = ws_api(sim)
    sim.inject(V, "delay_subscribe", seconds=0.5)
    ws.send(orjson.dumps({"id": 1, "method": "userDataStream.subscribe.signature", "params": signed()}).decode())
    deadline = time.monotonic() + 5
    while userstream_stats(sim)["held_subscribes"] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    rest_sdk(sim).rest_api.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                                     quantity=0.01, price=60000.0, new_client_order_id="gap-1")
    assert userstream_stats(sim)["reports_unsubscribed"] == 1  # sent while nobody subscribed
    answer = orjson.loads(ws.recv())
    assert answer["result"] == {"subscriptionId": 0}
    assert userstream_stats(sim)["held_subscribes"] == 0
    ws.close()
