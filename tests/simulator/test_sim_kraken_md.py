"""Kraken WS v1 market data: subscribe protocol, book-N with its CRC32, trade, spread, faults."""

from __future__ import annotations

import itertools
import time
import zlib
from decimal import Decimal

import orjson
import pytest

from simulator.kraken import checksum

from .venue_testkit import connect

pytestmark = pytest.mark.timeout(30)
_ids = itertools.count(1)


class KrakenBook:
    """A client-side Kraken book: absolute levels, cut to the subscribed depth."""

    def __init__(self, snap: dict, depth: int):
        self.depth = depth
        self.sides = {"a": {}, "b": {}}
        self.apply("a", snap["as"])
        self.apply("b", snap["bs"])

    def apply(self, side: str, levels: list) -> None:
        book = self.sides[side]
        for px, vol, *_ in levels:
            if Decimal(vol) == 0:
                book.pop(px, None)
            else:
                book[px] = vol
        keep = self.top(side, self.depth)
        self.sides[side] = dict(keep)

    def top(self, side: str, n: int) -> list[tuple[str, str]]:
        prices = sorted(self.sides[side], key=Decimal, reverse=side == "b")[:n]
        return [(p, self.sides[side][p]) for p in prices]

    def checksum(self) -> int:
        """Independent of venue.kraken: digits of the top 10 asks then bids, CRC32."""
        text = ""
        for side in ("a", "b"):
            for px, vol in self.top(side, 10):
                text += px.replace(".", "").lstrip("0") + vol.replace(".", "").lstrip("0")
        return zlib.crc32(text.encode())


def send(ws, event: str, pairs: list[str], name: str, depth: int | None = None, **extra) -> None:
    sub = {"name": name} if depth is None else {"name": name, "depth": depth}
    ws.send(orjson.dumps({"event": event, "pair": pairs, "subscription": sub, **extra}).decode())


def barrier(ws) -> list:
    """Every frame before the pong to a ping (parsed; bad JSON as str); heartbeats left out."""
    rid = next(_ids)
    ws.send(orjson.dumps({"event": "ping", "reqid": rid}).decode())
    out = []
    while True:
        text = ws.recv()
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            out.append(text)
            continue
        if msg == {"event": "pong", "reqid": rid}:
            return out
        if msg != {"event": "heartbeat"}:
            out.append(msg)


def open_ws(sim):
    ws = connect(sim.endpoints["kraken"]["ws"])
    status = orjson.loads(ws.recv())
    assert status["event"] == "systemStatus" and status["status"] == "online"
    return ws


def apply_update(book: KrakenBook, msg: list) -> str | None:
    expected = None
    for part in msg[1:-2]:
        for side in ("a", "b"):
            if side in part:
                book.apply(side, part[side])
        expected = part.get("c", expected)
    return expected


@pytest.mark.timeout(180)  # pure Python over 4,321 recorded frames: ~7 s alone, ~30 s on a loaded box
def test_checksum_verifies_every_recorded_kraken_book_update(shared_data):
    books: dict[str, KrakenBook] = {}
    checked = 0
    path = shared_data / "kraken_spot_ws_v1_book1000_2021-04-17_cryptofeed/messages.jsonl"
    for line in path.read_bytes().splitlines():
        msg = orjson.loads(line)["payload"]
        if not isinstance(msg, list):
            continue
        pair = msg[-1]
        if "as" in msg[1]:
            books[pair] = KrakenBook(msg[1], 1000)
            continue
        expected = apply_update(books[pair], msg)
        asks, bids = books[pair].top("a", 10), books[pair].top("b", 10)
        assert checksum(asks, bids) == expected == str(books[pair].checksum())
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("depth", [10, 1000])
def test_subscribe_answers_then_snapshot_then_updates_whose_checksum_verifies(make_sim, depth):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["XBT/USDT"], "book", depth, reqid=5)
    status = orjson.loads(ws.recv())
    assert status["event"] == "subscriptionStatus" and status["status"] == "subscribed"
    assert status["channelName"] == f"book-{depth}" and status["pair"] == "XBT/USDT"
    assert status["reqid"] == 5 and status["subscription"] == {"name": "book", "depth": depth}
    snap = orjson.loads(ws.recv())
    assert snap[0] == status["channelID"] and snap[-2:] == [f"book-{depth}", "XBT/USDT"]
    sizes = {len(snap[1]["as"]), len(snap[1]["bs"])}
    assert sizes == {10} if depth == 10 else 300 < min(sizes) and max(sizes) <= 400
    px, vol, ts = snap[1]["as"][0]
    assert px.count(".") == 1 and len(px.split(".")[1]) == 2 and len(vol.split(".")[1]) == 8
    assert len(ts.split(".")[1]) == 6
    book = KrakenBook(snap[1], depth)
    sim.advance(200)
    updates = [m for m in barrier(ws) if isinstance(m, list)]
    assert len(updates) > 100
    republished = 0
    for msg in updates:
        assert msg[-2:] == [f"book-{depth}", "XBT/USDT"] and "c" in msg[-3]
        expected = apply_update(book, msg)
        assert expected == str(book.checksum())
        republished += sum(1 for part in msg[1:-2] for lv in part.get("a", []) + part.get("b", [])
                           if lv[3:] == ["r"])
    if depth == 10:
        assert republished > 0          # levels came back into the top 10
    # a fresh subscriber sees the book this one kept
    other = open_ws(sim)
    send(other, "subscribe", ["XBT/USDT"], "book", depth)
    orjson.loads(other.recv())
    fresh = KrakenBook(orjson.loads(other.recv())[1], depth)
    assert fresh.top("a", depth) == book.top("a", depth) and fresh.top("b", depth) == book.top("b", depth)


def test_trade_and_spread_follow_the_market(make_sim):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["XBT/USDT", "ETH/USDT"], "trade")
    send(ws, "subscribe", ["ETH/USDT"], "spread")
    frames = barrier(ws)
    sim.advance(50)
    frames += barrier(ws)
    statuses = [m for m in frames if isinstance(m, dict)]
    assert [(s["pair"], s["channelName"], s["status"]) for s in statuses] == [
        ("XBT/USDT", "trade", "subscribed"), ("ETH/USDT", "trade", "subscribed"),
        ("ETH/USDT", "spread", "subscribed")]
    trades = [m for m in frames if isinstance(m, list) and m[-2] == "trade"]
    spreads = [m for m in frames if isinstance(m, list) and m[-2] == "spread"]
    assert {t[-1] for t in trades} == {"XBT/USDT", "ETH/USDT"}
    for t in trades:
        for px, vol, ts, side, kind, misc in t[1]:
            assert Decimal(px) > 0 and Decimal(vol) > 0 and side in ("b", "s") and kind in ("m", "l")
    assert len(spreads) >= 2 and all(s[-1] == "ETH/USDT" for s in spreads)
    bid, ask, _ts, bid_vol, ask_vol = spreads[-1][1]
    assert Decimal(bid) < Decimal(ask) and Decimal(bid_vol) > 0 and Decimal(ask_vol) > 0


def test_bad_requests_get_kraken_errors_and_unsubscribe_stops_the_feed(make_sim):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["XBT/FOO"], "book", 10)
    send(ws, "subscribe", ["XBT/USDT"], "book", 7)
    send(ws, "subscribe", ["XBT/USDT"], "ohlc")
    send(ws, "unsubscribe", ["XBT/USDT"], "trade")
    ws.send("not json")
    ws.send('{"event":"subscribe","subscription":{"name":"trade"}}')
    send(ws, "subscribe", ["XBT/USDT"], "book")           # depth defaults to 10
    send(ws, "subscribe", ["XBT/USDT"], "book", 10)
    frames = barrier(ws)
    errors = [m.get("errorMessage") for m in frames if isinstance(m, dict) and m.get("status") == "error"]
    assert errors == ["Currency pair not supported XBT/FOO", "Subscription depth not supported",
                      "Subscription name invalid", "Subscription Not Found", "Malformed request",
                      "Pair field must be an array", "Already subscribed"]
    assert [m[-2] for m in frames if isinstance(m, list)] == ["book-10"]
    send(ws, "unsubscribe", ["XBT/USDT"], "book", 10)
    frames = barrier(ws)
    sim.advance(20)
    frames += barrier(ws)
    assert [m["status"] for m in frames] == ["unsubscribed"]


def test_a_heartbeat_comes_every_second_to_a_subscribed_socket(make_sim):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["ETH/USDT"], "trade")
    orjson.loads(ws.recv())
    t0 = time.monotonic()
    assert orjson.loads(ws.recv()) == {"event": "heartbeat"}
    assert time.monotonic() - t0 < 2.5


def test_checksum_and_malformed_faults_hit_the_next_update_only(make_sim):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["XBT/USDT"], "book", 25)
    orjson.loads(ws.recv())
    book = KrakenBook(orjson.loads(ws.recv())[1], 25)
    sim.inject("kraken", "checksum", symbol="BTC-USDT")
    sim.inject("kraken", "malformed", symbol="XBT/USDT", kind="json")
    sim.inject("kraken", "malformed", symbol="BTCUSDT", kind="shape")
    sim.advance(30)
    frames = barrier(ws)
    bad = [f for f in frames if isinstance(f, str) or len(f) < 4]
    assert len(bad) == 2
    assert isinstance(bad[0], str) and bad[1][1:] == ["book-25", "XBT/USDT"]
    results = [apply_update(book, m) == str(book.checksum()) for m in frames if m not in bad]
    assert results[0] is False and all(results[1:]) and len(results) > 10
    applied = sim.stats()["kraken"]["faults"]["applied"]
    assert applied == {"checksum": 1, "malformed": 2}


def test_a_disconnect_closes_every_socket(make_sim):
    sim = make_sim(venues=["kraken"])
    ws = open_ws(sim)
    send(ws, "subscribe", ["XBT/USDT"], "trade")
    orjson.loads(ws.recv())
    sim.inject("kraken", "disconnect")
    with pytest.raises(Exception):
        while True:
            if ws.recv() in ("", b""):
                raise ConnectionError("closed")
    assert sim.stats()["kraken"]["disconnects"] == 1
    with pytest.raises(Exception, match="stale_snapshot"):
        sim.inject("kraken", "stale_snapshot")
