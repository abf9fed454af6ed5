"""The simulator's Binance USD-M order API (simulator/futures_api.py) and user stream
(simulator/futures_stream.py), over HTTP and WebSocket, checked against the field names and
codes of Binance's USDⓈ-M futures docs ("New Order", "Modify Order", "Query Order", "User Data
Streams", "Event: Order Update", "Event: Balance and Position Update", "Event: Trade Lite")."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from decimal import Decimal
from fractions import Fraction

import orjson
import pytest
import websocket

from simulator.faults import FaultError
from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .venue_testkit import connect, get, http as http_call

pytestmark = pytest.mark.timeout(30)
V = "binance-usdm"
# "New Order" response, without the trailing-stop fields deleted in December 2025
NEW_FIELDS = {"clientOrderId", "cumQty", "cumQuote", "executedQty", "orderId", "avgPrice", "origQty", "price",
              "reduceOnly", "side", "positionSide", "status", "stopPrice", "closePosition", "symbol",
              "timeInForce", "type", "origType", "updateTime", "workingType", "priceProtect", "priceMatch",
              "selfTradePreventionMode", "goodTillDate"}
QUERY_FIELDS = NEW_FIELDS - {"cumQty"} | {"time"}
OTU_FIELDS = set("s c S o f q p ap sp x X i l z L T t b a m R wt ot ps cp rp pP si ss V pm gtd".split())
LITE_FIELDS = set("e E T s q p m c S L l t i".split())


class Client:
    """A signed USD-M REST client, as an adapter would write it."""

    def __init__(self, rest: str, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET):
        self.rest, self.key, self.secret = rest, key, secret.encode()

    def signed(self, method: str, path: str, params: dict, key: str | None = None) -> tuple[int, object]:
        params = {**params, "timestamp": int(time.time() * 1000)}
        query = urllib.parse.urlencode(params)
        query += "&signature=" + hmac.new(self.secret, query.encode(), hashlib.sha256).hexdigest()
        return http_call(method, f"{self.rest}{path}?{query}", None, {"X-MBX-APIKEY": self.key if key is None else key})

    def keyed(self, method: str, path: str = "/fapi/v1/listenKey") -> tuple[int, object]:
        return http_call(method, self.rest + path, None, {"X-MBX-APIKEY": self.key})

    def new(self, **p):
        return self.signed("POST", "/fapi/v1/order", p)

    def modify(self, **p):
        return self.signed("PUT", "/fapi/v1/order", p)

    def query(self, **p):
        return self.signed("GET", "/fapi/v1/order", p)

    def cancel(self, **p):
        return self.signed("DELETE", "/fapi/v1/order", p)


@pytest.fixture
def usdm(make_sim):
    sim = make_sim(venues=[V])
    return sim, Client(sim.endpoints[V]["rest"])


def top(sim):
    _, d = get(sim.endpoints[V]["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    return d["bids"][0], d["asks"][0]


def stream(sim, c, query: str = ""):
    _, body = c.keyed("POST")
    return connect(f"{sim.endpoints[V]['ws']}/private/ws/{body['listenKey']}{query}")


def events(ws, until) -> list[dict]:
    out = []
    while not until(out):
        out.append(orjson.loads(ws.recv()))
    return out


def test_limit_order_round_trip_new_query_open_modify_cancel(usdm):
    sim, c = usdm
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                         price="60000", newClientOrderId="rt-1")
    assert status == 200 and set(body) == NEW_FIELDS
    assert (body["status"], body["price"], body["origQty"], body["executedQty"], body["positionSide"]) == (
        "NEW", "60000.00", "0.01000", "0.00000", "BOTH")
    status, got = c.query(symbol="BTCUSDT", origClientOrderId="rt-1")
    assert status == 200 and set(got) == QUERY_FIELDS and got["orderId"] == body["orderId"]
    assert [o["clientOrderId"] for o in c.signed("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})[1]] == ["rt-1"]
    ws = stream(sim, c)
    status, modified = c.modify(symbol="BTCUSDT", origClientOrderId="rt-1", side="BUY", quantity="0.005",
                                price="60001.5", modifyId=42)
    (amended,) = events(ws, lambda xs: len(xs) == 1)
    ws.close()
    assert (amended["o"]["x"], amended["o"]["X"], amended["o"]["q"], amended["o"]["M"]) == ("AMENDMENT", "NEW", "0.00500", "42")
    assert modified["modifyId"] == 42
    assert status == 200 and (modified["origQty"], modified["price"], modified["status"]) == ("0.00500", "60001.50", "NEW")
    assert c.modify(symbol="BTCUSDT", origClientOrderId="rt-1", side="BUY", quantity="0.005", price="60001.5") == (
        400, {"code": -5027, "msg": "No need to modify the order."})
    status, cancelled = c.cancel(symbol="BTCUSDT", origClientOrderId="rt-1")
    assert status == 200 and cancelled["status"] == "CANCELED"
    assert c.cancel(symbol="BTCUSDT", origClientOrderId="rt-1") == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert c.query(symbol="BTCUSDT", orderId=999) == (400, {"code": -2013, "msg": "Order does not exist."})


def test_post_only_and_fok_that_cannot_be_honoured_are_refused_and_not_recorded(usdm):
    sim, c = usdm
    _, (ask, _) = top(sim)
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.001",
                         price=ask, newClientOrderId="gtx-1")
    assert status == 400 and body["code"] == -5022 and "Post Only" in body["msg"]
    status, body = c.new(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="FOK", quantity="0.001",
                         price="99999", newClientOrderId="fok-1")
    assert status == 400 and body["code"] == -5021
    for cid in ("gtx-1", "fok-1"):
        assert c.query(symbol="BTCUSDT", origClientOrderId=cid)[1]["code"] == -2013
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.001",
                         price="60000", newClientOrderId="gtx-2")
    assert status == 200 and body["timeInForce"] == "GTX"
    # a modify that would make the post-only order take cancels it, as Binance documents
    status, body = c.modify(symbol="BTCUSDT", origClientOrderId="gtx-2", side="BUY", quantity="0.001", price=ask)
    assert status == 200 and body["status"] == "CANCELED"


@pytest.mark.parametrize("change, code", [
    ({"symbol": "NOPEUSDT"}, -1121), ({"timeInForce": "RPI2"}, -1115), ({"side": "HOLD"}, -1117),
    ({"price": "99999999"}, -4016), ({"quantity": "0.00001", "price": "100"}, -4164),
    ({"positionSide": "LONG"}, -4061), ({"reduceOnly": "true"}, -2022), ({"quantity": "0.000011"}, -1013),
])
def test_bad_orders_are_refused_with_the_usdm_codes(usdm, change, code):
    sim, c = usdm
    order = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="60000")
    order.update(change)
    status, body = c.new(**order)
    assert status == 400 and body["code"] == code


def test_signature_key_and_the_duplicate_client_order_id(usdm):
    sim, c = usdm
    order = dict(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.010", price="70000",
                 newClientOrderId="dup-1")
    assert Client(c.rest, secret="wrong").new(**order)[1]["code"] == -1022
    assert c.signed("POST", "/fapi/v1/order", order, key="someone")[0] == 401
    assert c.new(**order)[0] == 200
    assert c.new(**order) == (400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
    _, seen = get(c.rest + "/_sim/orders")
    assert seen["received"]["dup-1"] == 2 and seen["accepted"]["dup-1"] == 1   # authenticated requests


def test_the_listen_key_is_the_accounts_until_deleted(usdm):
    sim, c = usdm
    k1 = c.keyed("POST")[1]["listenKey"]
    assert c.keyed("POST")[1]["listenKey"] == k1 and c.keyed("PUT") == (200, {"listenKey": k1})
    assert c.keyed("DELETE") == (200, {})
    assert c.keyed("PUT") == (400, {"code": -1125, "msg": "This listenKey does not exist."})
    with pytest.raises(websocket.WebSocketBadStatusException):
        connect(f"{sim.endpoints[V]['ws']}/private/ws/{k1}")
    assert c.keyed("POST")[1]["listenKey"] != k1


def test_a_fill_streams_trade_lite_order_update_and_account_update_as_documented(usdm):
    sim, c = usdm
    ws = stream(sim, c)
    assert c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId="m-1")[0] == 200
    got = events(ws, lambda xs: any(x["e"] == "ORDER_TRADE_UPDATE" and x["o"]["X"] == "FILLED" for x in xs)
                 and xs[-1]["e"] == "ACCOUNT_UPDATE")
    ws.close()
    kinds = [x["e"] for x in got]
    assert kinds[0] == "ORDER_TRADE_UPDATE" and got[0]["o"]["x"] == "NEW"
    assert kinds[1:4] == ["TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    lite, trade, account = got[1:4]
    assert set(lite) == LITE_FIELDS and set(trade["o"]) >= OTU_FIELDS | {"N", "n"}
    assert (trade["o"]["x"], trade["o"]["c"], trade["o"]["t"], trade["o"]["ps"]) == ("TRADE", "m-1", lite["t"], "BOTH")
    assert set(account["a"]) == {"m", "B", "P"} and account["a"]["m"] == "ORDER"
    (bal,), (pos,) = account["a"]["B"], account["a"]["P"]
    assert set(bal) == {"a", "wb", "cw", "bc"} and bal["a"] == "USDT"
    assert set(pos) == {"s", "pa", "ep", "bep", "cr", "up", "mt", "iw", "ps"} and pos["s"] == "BTCUSDT"
    fills = [x["o"] for x in got if x["e"] == "ORDER_TRADE_UPDATE" and x["o"]["x"] == "TRADE"]
    quote = sum(Decimal(f["l"]) * Decimal(f["L"]) for f in fills)
    assert Decimal(fills[-1]["z"]) == Decimal("0.002")
    assert abs(Decimal(fills[-1]["ap"]) - quote / Decimal("0.002")) < Decimal("0.001")   # rounded at 2 + 3 dp
    last = [x for x in got if x["e"] == "ACCOUNT_UPDATE"][-1]["a"]["P"][0]
    assert Decimal(last["pa"]) == Decimal("0.002")


def test_stream_mode_delivers_only_the_events_asked_for(usdm):
    sim, c = usdm
    ws = stream(sim, c)
    key = c.keyed("POST")[1]["listenKey"]
    only = connect(f"{sim.endpoints[V]['ws']}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE")
    c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    every = events(ws, lambda xs: any(x["e"] == "ACCOUNT_UPDATE" for x in xs))
    filtered = events(only, lambda xs: any(x["o"]["X"] == "FILLED" for x in xs))
    assert {x["e"] for x in every} == {"ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE"}
    assert {x["e"] for x in filtered} == {"ORDER_TRADE_UPDATE"}


def test_position_average_entry_close_and_flip():
    from simulator.futures_stream import Position
    from simulator.instruments import default_instruments
    pos = Position(default_instruments(1)[0])          # BTC-USDT: prices at 2, quantities at 5 decimals
    assert pos.fill(0, 200, 10000) == 0 and pos.fill(0, 200, 10200) == 0   # long 0.004 at 101.00
    assert (pos.size, pos.entry) == (400, Fraction(101))
    assert pos.fill(1, 500, 10300) == Fraction(2) * Fraction(4, 1000)       # closes 0.004: +0.008
    assert (pos.size, pos.entry) == (-100, Fraction(103))                   # flipped: short 0.001 at 103
    assert pos.fill(0, 100, 10100) == Fraction(2, 1000) and pos.size == 0 and pos.entry == 0


def test_one_way_position_closes_flips_and_realizes_into_the_wallet(usdm):
    sim, c = usdm
    api = sim.venues[V].orders
    c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    status, body = c.new(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.003", reduceOnly="true")
    assert (status, body["code"]) == (400, -2022)          # more than the position: not a reduction
    c.new(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.003")
    buy, sell = api.engine.orders.values()
    entry = Fraction(buy.quote, buy.executed * 100)        # the long's average entry, in USDT
    realized, left = Fraction(0), Fraction(2, 1000)
    for _tid, price, qty in sell.fills:                    # the first 0.002 sold closes the long
        closing = min(left, Fraction(qty, 10**5))
        realized += (Fraction(price, 100) - entry) * closing
        left -= closing
    _, (risk,) = c.signed("GET", "/fapi/v3/positionRisk", {})
    assert (risk["symbol"], risk["positionSide"], risk["positionAmt"]) == ("BTCUSDT", "BOTH", "-0.00100")
    _, (bal,) = c.signed("GET", "/fapi/v3/balance", {})
    assert Decimal(bal["balance"]) == Decimal(10_000) + Decimal(round(realized * 10**8)) / 10**8
    assert c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", reduceOnly="true")[0] == 200
    assert c.signed("GET", "/fapi/v3/positionRisk", {})[1] == []


def test_user_stream_faults_on_usdm(usdm):
    sim, c = usdm
    with pytest.raises(FaultError):
        sim.inject(V, "server_shutdown")
    ws = stream(sim, c)
    sim.inject(V, "duplicate_report")
    c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="60000")
    one, two = events(ws, lambda xs: len(xs) == 2)
    assert one == two and one["o"]["x"] == "NEW"
    sim.inject(V, "disconnect_userstream")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            if ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException("closed")
    assert sim.stats()[V]["faults"]["applied"]["disconnect_userstream"] == 1


def test_a_modified_order_goes_to_the_back_of_its_level_even_for_less_quantity(usdm):
    sim, c = usdm
    (bid, _), (ask, _) = top(sim)
    inside = f"{(Decimal(bid) + Decimal(ask)) / 2:.2f}"     # a level only our orders hold
    assert Decimal(bid) < Decimal(inside) < Decimal(ask)
    for cid in ("first", "second"):
        assert c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
                     price=inside, newClientOrderId=cid)[0] == 200
    assert c.modify(symbol="BTCUSDT", origClientOrderId="first", side="BUY", quantity="0.001", price=inside)[0] == 200
    status, taker = c.new(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="IOC", quantity="0.002",
                          price=inside, newOrderRespType="RESULT")
    assert status == 200 and taker["status"] == "FILLED"
    assert c.query(symbol="BTCUSDT", origClientOrderId="second")[1]["status"] == "FILLED"
    assert c.query(symbol="BTCUSDT", origClientOrderId="first")[1]["executedQty"] == "0.00000"


def test_reorder_report_sends_the_next_order_update_after_the_one_that_follows(usdm):
    sim, c = usdm
    ws = stream(sim, c)
    sim.inject(V, "reorder_report")
    c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="60000",
          newClientOrderId="late-1")
    c.cancel(symbol="BTCUSDT", origClientOrderId="late-1")
    first, second = events(ws, lambda xs: len(xs) == 2)
    assert [first["o"]["x"], second["o"]["x"]] == ["CANCELED", "NEW"]      # NEW held back, sent after
    c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="60000",
          newClientOrderId="late-2")
    sim.inject(V, "reorder_report")
    c.cancel(symbol="BTCUSDT", origClientOrderId="late-2")                  # nothing follows: 1 s late
    assert [x["o"]["x"] for x in events(ws, lambda xs: len(xs) == 2)] == ["NEW", "CANCELED"]
    assert sim.stats()[V]["faults"]["applied"]["reorder_report"] == 2
