"""OKX market data: subscribe protocol, books checksum and seqId chain, REST."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from simulator.okx import checksum

from .venue_testkit import LocalBook, connect, get, okx_barrier, okx_checksum

pytestmark = pytest.mark.timeout(30)


def test_checksum_matches_the_okx_docs_vectors(shared_data):
    cases = orjson.loads((shared_data / "vectors/okx_checksum_docs.json").read_bytes())["cases"]
    for case in cases:
        assert checksum(case["bids"], case["asks"]) == case["expected_signed"]
        assert okx_checksum(case["bids"], case["asks"]) == case["expected_signed"]


def test_checksum_verifies_every_recorded_okx_books_message(shared_data):
    books: dict[str, LocalBook] = {}
    checked = negative = 0
    for line in (shared_data / "okx_2022-05-13_cryptofeed/messages.jsonl").read_bytes().splitlines():
        msg = orjson.loads(line)["payload"]
        if msg.get("arg", {}).get("channel") != "books" or "data" not in msg:
            continue
        inst, data = msg["arg"]["instId"], msg["data"][0]
        if msg["action"] == "snapshot":
            books[inst] = LocalBook(data["bids"], data["asks"])
        else:
            books[inst].apply(data["bids"], data["asks"])
        bids, asks = books[inst].top(25)
        assert checksum(bids, asks) == data["checksum"] == okx_checksum(bids, asks)
        checked += 1
        negative += data["checksum"] < 0
    assert checked == 290 and negative == 135


def _subscribe(ws, *args, rid=None):
    req = {"op": "subscribe", "args": [{"channel": c, "instId": i} for c, i in args]}
    if rid is not None:
        req["id"] = rid
    ws.send(orjson.dumps(req).decode())


def test_subscribe_acks_then_snapshot_then_checksummed_updates(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    ack = orjson.loads(ws.recv())
    assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "books", "instId": "BTC-USDT"}
    assert isinstance(ack["connId"], str)
    snap = orjson.loads(ws.recv())
    assert snap["action"] == "snapshot"
    data = snap["data"][0]
    assert data["prevSeqId"] == -1 and len(data["bids"]) > 300 and len(data["asks"]) > 300
    assert all(len(level) == 4 and level[2] == "0" for level in data["bids"][:5])
    book = LocalBook(data["bids"], data["asks"])
    assert okx_checksum(*book.top(25)) == data["checksum"]
    sim.advance(400)
    updates = okx_barrier(ws)
    ws.close()
    assert len(updates) >= 300
    seq = data["seqId"]
    for msg in updates:
        assert msg["action"] == "update"
        d = msg["data"][0]
        assert d["prevSeqId"] == seq and d["seqId"] > seq
        seq = d["seqId"]
        book.apply(d["bids"], d["asks"])
        assert okx_checksum(*book.top(25)) == d["checksum"]
        assert isinstance(d["ts"], str)
    assert any(m["data"][0]["checksum"] < 0 for m in updates)


def test_strings_drop_trailing_zeros_like_okx(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "ETH-USDT"))
    ws.recv()
    data = orjson.loads(ws.recv())["data"][0]
    ws.close()
    for px, sz, *_ in data["bids"] + data["asks"]:
        for text in (px, sz):
            assert not (("." in text) and text.endswith("0")) and not text.endswith(".")


def test_trades_and_tickers_shapes(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("trades", "BTC-USDT"), ("tickers", "BTC-USDT"), rid="7")
    acks = [orjson.loads(ws.recv()) for _ in range(2)]
    assert [a["arg"]["channel"] for a in acks] == ["trades", "tickers"]
    assert all(a["id"] == "7" for a in acks)
    first_ticker = orjson.loads(ws.recv())
    assert first_ticker["arg"]["channel"] == "tickers"
    sim.advance(200)
    msgs = okx_barrier(ws)
    ws.close()
    trades = [m["data"][0] for m in msgs if m["arg"]["channel"] == "trades"]
    tickers = [m["data"][0] for m in msgs if m["arg"]["channel"] == "tickers"]
    assert set(trades[0]) == {"instId", "tradeId", "px", "sz", "side", "ts"}
    assert {t["side"] for t in trades} == {"buy", "sell"}
    assert {"instType", "instId", "last", "lastSz", "askPx", "askSz", "bidPx", "bidSz",
            "open24h", "high24h", "low24h", "volCcy24h", "vol24h", "ts"} <= set(tickers[0])
    assert all(Decimal(t["bidPx"]) < Decimal(t["askPx"]) for t in tickers)


def test_bad_requests_get_okx_errors_and_ping_gets_pong(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    ws.send('{"op":"subscribe","argss":[]}')
    err = orjson.loads(ws.recv())
    assert err["event"] == "error" and err["code"] == "60012" and "connId" in err
    _subscribe(ws, ("books", "NOPE-USDT"))
    assert orjson.loads(ws.recv())["code"] == "60018"
    _subscribe(ws, ("books7", "BTC-USDT"))
    assert orjson.loads(ws.recv())["code"] == "60018"
    ws.send("ping")
    assert ws.recv() == "pong"
    ws.close()


def test_unsubscribe_stops_the_channel(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    ws.recv(), ws.recv()
    ws.send('{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
    assert orjson.loads(ws.recv())["event"] == "unsubscribe"
    sim.advance(20)
    assert okx_barrier(ws) == []
    ws.close()


def test_instruments_rest_lists_spot_with_tick_and_lot(sim):
    rest = sim.endpoints["okx"]["rest"]
    status, body = get(rest + "/api/v5/public/instruments?instType=SPOT")
    assert status == 200 and body["code"] == "0"
    btc = next(i for i in body["data"] if i["instId"] == "BTC-USDT")
    assert (btc["tickSz"], btc["lotSz"], btc["minSz"]) == ("0.01", "0.00001", "0.00001")
    assert (btc["baseCcy"], btc["quoteCcy"], btc["state"]) == ("BTC", "USDT", "live")
    status, body = get(rest + "/api/v5/public/instruments")
    assert status == 400 and body["code"] == "50014"
