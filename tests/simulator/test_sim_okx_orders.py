"""The simulator's OKX order API and private WebSocket, driven by a minimal client written
from OKX's docs (not our adapter): signing and its errors, order types and their outcomes,
amend, clOrdId rules, balances and swap positions, and the order-path faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import orjson
import pytest

from simulator.okx_orders import DEFAULT_PASSPHRASE
from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .venue_testkit import connect, http, okx_barrier

pytestmark = pytest.mark.timeout(30)


def okx_ts(ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if ms is None else ms
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Client:
    """Private REST as OKX's docs describe it ("REST Authentication"): stdlib json, urllib."""

    def __init__(self, rest: str, key=DEFAULT_KEY, secret=DEFAULT_SECRET, passphrase=DEFAULT_PASSPHRASE):
        self.rest, self.key, self.secret, self.passphrase = rest, key, secret, passphrase

    def call(self, method: str, path: str, body: dict | None = None, *, ts: str | None = None,
             sign: str | None = None, drop: str = "", headers: dict | None = None):
        text = json.dumps(body) if body is not None else ""
        ts = ts or okx_ts()
        mac = hmac.new(self.secret.encode(), (ts + method + path + text).encode(), hashlib.sha256).digest()
        h = {"OK-ACCESS-KEY": self.key, "OK-ACCESS-PASSPHRASE": self.passphrase, "OK-ACCESS-TIMESTAMP": ts,
             "OK-ACCESS-SIGN": sign or base64.b64encode(mac).decode(), "Content-Type": "application/json",
             **(headers or {})}
        h.pop(drop, None)
        return http(method, self.rest + path, text.encode() if text else None, h)

    def order(self, **a):
        return self.call("POST", "/api/v5/trade/order", a)

    def get(self, path: str):
        return self.call("GET", path)


@pytest.fixture
def okx(make_sim):
    sim = make_sim(venues=["okx"])
    return sim, Client(sim.endpoints["okx"]["rest"])


def book_top(sim, inst_id="BTC-USDT"):
    _, d = http("GET", sim.endpoints["okx"]["rest"] + f"/api/v5/market/books?instId={inst_id}&sz=1")
    return d["data"][0]["bids"][0][0], d["data"][0]["asks"][0][0]


def login(sim, key=DEFAULT_KEY, secret=DEFAULT_SECRET, passphrase=DEFAULT_PASSPHRASE, ts=None):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/private")
    ts = str(int(time.time())) if ts is None else ts
    sign = base64.b64encode(hmac.new(secret.encode(), (ts + "GET/users/self/verify").encode(),
                                     hashlib.sha256).digest()).decode()
    ws.send(json.dumps({"op": "login", "args": [{"apiKey": key, "passphrase": passphrase, "timestamp": ts,
                                                  "sign": sign}]}))
    return ws, orjson.loads(ws.recv())


def subscribed(sim):
    ws, ack = login(sim)
    assert ack["event"] == "login" and ack["code"] == "0"
    ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"},
                                                    {"channel": "account"},
                                                    {"channel": "positions", "instType": "ANY"}]}))
    acks = [orjson.loads(ws.recv()) for _ in range(3)]
    assert [a["event"] for a in acks] == ["subscribe"] * 3
    return ws


def pushes(ws, channel: str, frames: list | None = None) -> list[dict]:
    """The data of `channel` pushes among `frames` (default: every frame queued now)."""
    frames = okx_barrier(ws) if frames is None else frames
    return [d for f in frames if isinstance(f, dict) and f.get("arg", {}).get("channel") == channel
            for d in f["data"]]


def test_authentication_errors_carry_okx_codes(okx):
    sim, c = okx
    path = "/api/v5/account/balance"
    assert c.get(path)[0] == 200
    for kw, code in (({"drop": "OK-ACCESS-KEY"}, "50103"), ({"drop": "OK-ACCESS-PASSPHRASE"}, "50104"),
                     ({"drop": "OK-ACCESS-SIGN"}, "50106"), ({"drop": "OK-ACCESS-TIMESTAMP"}, "50107"),
                     ({"sign": "AAAA"}, "50113"), ({"ts": "yesterday"}, "50112"),
                     ({"ts": okx_ts(int(time.time() * 1000) - 60_000)}, "50102")):
        status, body = c.call("GET", path, **kw)
        assert (status, body["code"]) == (401, code), kw
    assert Client(c.rest, key="other").get(path)[1]["code"] == "50111"
    assert Client(c.rest, passphrase="other").get(path)[1]["code"] == "50105"


def test_a_limit_order_rests_is_queried_by_clordid_listed_and_cancelled(okx):
    sim, c = okx
    status, r = c.order(instId="BTC-USDT", tdMode="cash", clOrdId="b15", side="buy", ordType="limit",
                        px="60000", sz="0.001")
    assert status == 200 and r["code"] == "0" and r["data"][0]["sCode"] == "0" and r["data"][0]["clOrdId"] == "b15"
    oid = r["data"][0]["ordId"]
    _, q = c.get("/api/v5/trade/order?instId=BTC-USDT&clOrdId=b15")
    assert q["data"][0]["state"] == "live" and q["data"][0]["ordId"] == oid and q["data"][0]["accFillSz"] == "0"
    _, p = c.get("/api/v5/trade/orders-pending?instType=SPOT")
    assert [o["clOrdId"] for o in p["data"]] == ["b15"]
    _, bal = c.get("/api/v5/account/balance")
    usdt = next(d for d in bal["data"][0]["details"] if d["ccy"] == "USDT")
    assert (usdt["frozenBal"], usdt["availBal"]) == ("60", "999940")      # 0.001 x 60000 locked
    _, x = c.call("POST", "/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "b15"})
    assert x["data"][0]["sCode"] == "0"
    _, q = c.get("/api/v5/trade/order?instId=BTC-USDT&ordId=" + oid)
    assert (q["data"][0]["state"], q["data"][0]["cancelSource"]) == ("canceled", "1")
    _, again = c.call("POST", "/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "b15"})
    assert again["code"] == "1" and again["data"][0]["sCode"] == "51400"
    assert c.get("/api/v5/trade/order?instId=BTC-USDT&clOrdId=nope")[1]["code"] == "51603"
    # a done order's clOrdId may be used again (OKX: unique among pending orders only)
    assert c.order(instId="BTC-USDT", tdMode="cash", clOrdId="b15", side="buy", ordType="limit", px="60000",
                   sz="0.001")[1]["code"] == "0"
    assert c.order(instId="BTC-USDT", tdMode="cash", clOrdId="b15", side="buy", ordType="limit", px="60000",
                   sz="0.001")[1]["data"][0]["sCode"] == "51016"


def test_parameter_and_business_rejects(okx):
    sim, c = okx
    base = dict(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", px="60000", sz="0.001")
    cases = [({"instId": "NOPE-USDT"}, 400, "51001"), ({"tdMode": "cross"}, 400, "51000"),
             ({"ordType": "stop"}, 400, "51000"), ({"clOrdId": "has-dash"}, 400, "51000"),
             ({"clOrdId": "x" * 33}, 400, "51000"), ({"sz": "0.0000001"}, 400, "51000"),
             ({"px": "60000.001"}, 400, "51000"), ({"px": "9999999"}, 200, "51137"),
             ({"side": "sell", "px": "1"}, 200, "51138"), ({"sz": "100000"}, 200, "51008")]
    for change, status, code in cases:
        st, r = c.order(**{**base, **change})
        got = r["code"] if r["code"] != "1" else r["data"][0]["sCode"]
        assert (st, got) == (status, code), change
    assert c.order(**{**base, "instId": "BTC-USDT-SWAP", "tdMode": "cash"})[1]["code"] == "51000"
    stats = http("GET", c.rest + "/_sim/orders")[1]
    assert stats["rejected"] == len(cases) + 1 and stats["orders"] == []


def test_post_only_ioc_and_fok_outcomes_name_their_cancel_source(okx):
    sim, c = okx
    bid, ask = book_top(sim)
    ws = subscribed(sim)
    o = dict(instId="BTC-USDT", tdMode="cash", side="buy", sz="0.001")
    c.order(**o, clOrdId="po", ordType="post_only", px=ask)            # would take: cancelled (31)
    c.order(**o, clOrdId="pok", ordType="post_only", px=bid)           # rests
    c.order(**o, clOrdId="ioc", ordType="ioc", px=bid)                 # nothing to take: cancelled (14)
    c.order(**o, clOrdId="fok", ordType="fok", px=bid)                 # cancelled (13)
    c.order(**o, clOrdId="take", ordType="ioc", px=ask)                # fills
    last = {}
    for d in pushes(ws, "orders"):
        last[d["clOrdId"]] = d
    assert {k: (v["state"], v["cancelSource"]) for k, v in last.items()} == {
        "po": ("canceled", "31"), "pok": ("live", ""), "ioc": ("canceled", "14"), "fok": ("canceled", "13"),
        "take": ("filled", "")}
    t = last["take"]
    assert t["accFillSz"] == t["fillSz"] == "0.001" and t["tradeId"] and t["fillPx"] == ask.rstrip("0").rstrip(".")
    ws.close()


def test_amend_changes_size_and_price_and_the_push_says_so(okx):
    sim, c = okx
    ws = subscribed(sim)
    c.order(instId="BTC-USDT", tdMode="cash", clOrdId="am", side="buy", ordType="limit", px="60000", sz="0.002")
    st, r = c.call("POST", "/api/v5/trade/amend-order", {"instId": "BTC-USDT", "clOrdId": "am", "newSz": "0.001",
                                                         "newPx": "60001", "reqId": "r1"})
    assert r["code"] == "0" and r["data"][0]["reqId"] == "r1"
    amended = [d for d in pushes(ws, "orders") if d["reqId"] == "r1"]
    assert [(d["amendResult"], d["sz"], d["px"], d["state"]) for d in amended] == [("0", "0.001", "60001", "live")]
    bad = c.call("POST", "/api/v5/trade/amend-order", {"instId": "BTC-USDT", "clOrdId": "gone", "newSz": "1"})[1]
    assert bad["data"][0]["sCode"] == "51503"
    ws.close()


def test_swaps_trade_in_contracts_and_build_a_net_position(okx):
    sim, c = okx
    _, inst = http("GET", c.rest + "/api/v5/public/instruments?instType=SWAP&instId=BTC-USDT-SWAP")
    (i,) = inst["data"]
    assert (i["ctVal"], i["ctValCcy"], i["lotSz"], i["ctType"]) == ("0.001", "BTC", "0.01", "linear")
    ws = subscribed(sim)
    base = dict(instId="BTC-USDT-SWAP", tdMode="cross", ordType="market")
    assert c.order(**base, clOrdId="l1", side="buy", sz="3")[1]["code"] == "0"
    assert c.order(**base, clOrdId="s1", side="sell", sz="1")[1]["code"] == "0"
    _, pos = c.get("/api/v5/account/positions")
    (p,) = pos["data"]
    assert (p["instId"], p["pos"], p["posSide"], p["mgnMode"]) == ("BTC-USDT-SWAP", "2", "net", "cross")
    assert float(p["avgPx"]) > 0 and "upl" in p
    frames = okx_barrier(ws)
    fills = [d for d in pushes(ws, "orders", frames) if d["tradeId"]]
    assert sum(float(d["fillSz"]) for d in fills if d["clOrdId"] == "l1") == 3
    assert [d["pos"] for d in pushes(ws, "positions", frames)][-1] == "2"
    assert c.order(**base, clOrdId="s2", side="sell", sz="2")[1]["code"] == "0"
    assert c.get("/api/v5/account/positions")[1]["data"] == []
    ws.close()


def test_private_login_errors_and_subscribing_before_login(okx):
    sim, _ = okx
    for kw, code in (({"key": "x"}, "60005"), ({"passphrase": "x"}, "60024"), ({"secret": "x"}, "60007"),
                     ({"ts": "soon"}, "60004"), ({"ts": str(int(time.time()) - 120)}, "60006")):
        ws, ev = login(sim, **kw)
        assert (ev["event"], ev["code"]) == ("error", code), kw
        ws.close()
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/private")
    ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]}))
    assert orjson.loads(ws.recv())["code"] == "60011"
    ws.send("ping")
    assert ws.recv() == "pong"
    ws.close()


def test_ws_order_entry_answers_by_id_and_faults_drop_or_delay_the_answer(okx):
    sim, c = okx
    ws = subscribed(sim)
    args = dict(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", px="60000", sz="0.001")
    ws.send(json.dumps({"id": "o1", "op": "order", "args": [{**args, "clOrdId": "w1"}]}))
    ans = [f for f in okx_barrier(ws) if isinstance(f, dict) and f.get("id") == "o1"]
    assert ans[0]["op"] == "order" and ans[0]["code"] == "0" and ans[0]["data"][0]["sCode"] == "0"
    ws.send(json.dumps({"id": "o2", "op": "order", "args": [{**args, "clOrdId": "w2"}],
                        "expTime": str(int(time.time() * 1000) - 1)}))
    late = [f for f in okx_barrier(ws) if isinstance(f, dict) and f.get("id") == "o2"]
    assert late[0]["code"] == "50102"                   # expTime passed: not processed
    sim.inject("okx", "drop_response")
    ws.send(json.dumps({"id": "o3", "op": "order", "args": [{**args, "clOrdId": "w3"}]}))
    with pytest.raises(Exception):
        okx_barrier(ws)                                 # carried out, then the connection dropped
    orders = http("GET", c.rest + "/_sim/orders")[1]
    assert orders["received"] == {"w1": 1, "w2": 1, "w3": 1} and orders["accepted"] == {"w1": 1, "w3": 1}


def test_disconnect_duplicate_report_and_server_shutdown_on_the_private_stream(okx):
    sim, c = okx
    ws = subscribed(sim)
    sim.inject("okx", "duplicate_report")
    c.order(instId="BTC-USDT", tdMode="cash", clOrdId="d1", side="buy", ordType="limit", px="60000", sz="0.001")
    assert [d["clOrdId"] for d in pushes(ws, "orders")] == ["d1", "d1"]
    sim.inject("okx", "server_shutdown", seconds=0.2)
    notice = orjson.loads(ws.recv())
    assert (notice["event"], notice["code"]) == ("notice", "64008")
    ws2 = subscribed(sim)
    sim.inject("okx", "disconnect_userstream")
    with pytest.raises(Exception):
        okx_barrier(ws2)
    assert sim.stats()["okx"]["faults"]["applied"]["disconnect_userstream"] >= 1


def test_reorder_report_sends_the_next_push_after_the_one_that_follows_it(okx):
    sim, c = okx
    ws = subscribed(sim)
    sim.inject("okx", "reorder_report")
    c.order(instId="BTC-USDT", tdMode="cash", clOrdId="ro", side="buy", ordType="market", sz="0.001",
            tgtCcy="base_ccy")
    assert [d["state"] for d in pushes(ws, "orders")] == ["filled", "live"]
    sim.inject("okx", "reorder_report")          # nothing follows: the held push goes 1 s later
    c.order(instId="BTC-USDT", tdMode="cash", clOrdId="r2", side="buy", ordType="limit", px="60000", sz="0.001")
    ws.settimeout(5)
    late = orjson.loads(ws.recv())
    assert late["data"][0]["clOrdId"] == "r2" and late["data"][0]["state"] == "live"
    assert sim.stats()["okx"]["faults"]["applied"]["reorder_report"] == 2
    ws.close()


def test_reduce_only_needs_a_position_to_reduce_and_is_refused_on_spot(okx):
    sim, c = okx
    base = dict(instId="BTC-USDT-SWAP", tdMode="cross", ordType="market", reduceOnly=True)
    sc = lambda r: r[1]["data"][0]["sCode"]  # noqa: E731
    assert sc(c.order(**base, clOrdId="r0", side="sell", sz="1")) == "51169"       # no position
    assert c.order(**{**base, "reduceOnly": False}, clOrdId="l1", side="buy", sz="2")[1]["code"] == "0"
    assert sc(c.order(**base, clOrdId="r1", side="buy", sz="1")) == "51170"        # would increase it
    assert c.order(**base, clOrdId="r2", side="sell", sz="1")[1]["code"] == "0"    # reduces it
    assert c.get("/api/v5/trade/order?instId=BTC-USDT-SWAP&clOrdId=r2")[1]["data"][0]["reduceOnly"] == "true"
    assert c.get("/api/v5/account/positions")[1]["data"][0]["pos"] == "1"
    spot = dict(instId="BTC-USDT", tdMode="cash", side="sell", ordType="limit", px="99000", sz="0.001")
    assert c.order(**spot, reduceOnly=True)[1]["code"] == "51000"
    assert c.order(**spot, reduceOnly="maybe")[1]["code"] == "51000"
