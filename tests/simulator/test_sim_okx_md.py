"""OKX market data as OKX documents it today: subscribe protocol, books chained by
seqId/prevSeqId from a REST snapshot (checked with OKX's own SDK, python-okx), checksum 0,
keep-alives, the seqId reset; and the old form (WS snapshot, CRC32) where asked for."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from simulator.okx import checksum

from .venue_testkit import LocalBook, connect, get, http, okx_barrier, okx_checksum

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


def _market_api(sim):
    """OKX's official SDK (python-okx) pointed at the simulator's REST endpoint."""
    market_data = pytest.importorskip("okx.MarketData", reason="python-okx (the dev extra) is not installed")
    return market_data.MarketAPI(flag="0", domain=sim.endpoints["okx"]["rest"])


def test_books_rest_answers_okx_sdk_with_seq_id_and_ts(sim):
    api = _market_api(sim)
    try:
        body = api.get_orderbook("BTC-USDT", sz="400")
        assert body["code"] == "0" and body["msg"] == "" and len(body["data"]) == 1
        book = body["data"][0]
        assert set(book) == {"asks", "bids", "ts", "seqId"}
        assert type(book["seqId"]) is int and book["ts"].isdigit()
        assert 300 < len(book["bids"]) <= 400 and 300 < len(book["asks"]) <= 400
        assert all(len(lv) == 4 and lv[2] == "0" and all(type(x) is str for x in lv)
                   for lv in book["bids"] + book["asks"])
        assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
        assert len(api.get_orderbook("BTC-USDT")["data"][0]["bids"]) == 1       # sz defaults to 1
        assert api.get_orderbook("NOPE-USDT", sz="5")["code"] == "51001"
        assert api.get_orderbook("BTC-USDT", sz="401")["code"] == "51000"
    finally:
        api.close()
    assert sim.stats()["okx"]["books_requests"] == {"BTC-USDT": 2}     # answered with a book


def test_books_updates_chain_from_the_rest_snapshot_without_ws_snapshot_or_checksum(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    ack = orjson.loads(ws.recv())
    assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "books", "instId": "BTC-USDT"}
    assert isinstance(ack["connId"], str)
    api = _market_api(sim)
    snap = api.get_orderbook("BTC-USDT", sz="400")["data"][0]
    api.close()
    sim.advance(300)
    updates = okx_barrier(ws)
    ws.close()
    assert len(updates) >= 250 and all(m["action"] == "update" for m in updates)
    book, seq = LocalBook(snap["bids"], snap["asks"]), snap["seqId"]
    for msg in updates:               # OKX's procedure: seqId <= S dropped, then chained
        d = msg["data"][0]
        assert d["checksum"] == 0 and isinstance(d["ts"], str)
        if d["seqId"] <= snap["seqId"]:
            continue
        assert d["prevSeqId"] == seq < d["seqId"]
        seq = d["seqId"]
        book.apply(d["bids"], d["asks"])
    api = _market_api(sim)
    now = api.get_orderbook("BTC-USDT", sz="400")["data"][0]
    api.close()
    assert now["seqId"] == seq and book.top(50) == ([lv[:2] for lv in now["bids"][:50]],
                                                    [lv[:2] for lv in now["asks"][:50]])


def test_the_old_form_ws_snapshot_and_checksummed_updates_stay_available(make_sim):
    sim = make_sim(venues=["okx"], okx={"ws_snapshot": 1.0, "checksum": True})
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    assert orjson.loads(ws.recv())["event"] == "subscribe"
    snap = orjson.loads(ws.recv())
    assert snap["action"] == "snapshot"
    data = snap["data"][0]
    assert data["prevSeqId"] == -1 and len(data["bids"]) > 300 and len(data["asks"]) > 300
    book = LocalBook(data["bids"], data["asks"])
    assert okx_checksum(*book.top(25)) == data["checksum"]
    sim.advance(200)
    updates = okx_barrier(ws)
    ws.close()
    seq = data["seqId"]
    for msg in updates:
        d = msg["data"][0]
        assert d["prevSeqId"] == seq and d["seqId"] > seq
        seq = d["seqId"]
        book.apply(d["bids"], d["asks"])
        assert okx_checksum(*book.top(25)) == d["checksum"]
    assert any(m["data"][0]["checksum"] < 0 for m in updates)


def test_ws_snapshot_goes_to_the_given_fraction_of_connections(make_sim):
    sim = make_sim(venues=["okx"], okx={"ws_snapshot": 0.5})
    got = []
    for _ in range(16):
        ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
        _subscribe(ws, ("books", "ETH-USDT"))
        ws.recv()
        got.append(any(m.get("action") == "snapshot" for m in okx_barrier(ws)))
        ws.close()
    assert 0 < sum(got) < 16


def test_keepalive_repeats_the_last_seq_id_when_the_book_is_quiet(make_sim):
    sim = make_sim(venues=["okx"], okx={"keepalive_s": 0.2})
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    ws.recv()
    _, body = get(sim.endpoints["okx"]["rest"] + "/api/v5/market/books?instId=BTC-USDT&sz=5")
    ws.settimeout(10)
    d = orjson.loads(ws.recv())["data"][0]      # nothing steps the market: the next is a keep-alive
    ws.close()
    assert d["asks"] == [] and d["bids"] == []
    assert d["prevSeqId"] == d["seqId"] == body["data"][0]["seqId"]


def test_seq_reset_restarts_the_sequence_lower_and_keeps_the_chain(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    _subscribe(ws, ("books", "BTC-USDT"))
    okx_barrier(ws)
    sim.advance(3)
    sim.inject("okx", "seq_reset", symbol="BTC-USDT")
    sim.advance(3)
    data = [m["data"][0] for m in okx_barrier(ws)]
    ws.close()
    assert all(b["prevSeqId"] == a["seqId"] for a, b in zip(data, data[1:]))
    resets = [d for d in data if d["seqId"] < d["prevSeqId"]]
    assert len(resets) == 1 and sim.stats()["okx"]["faults"]["applied"]["seq_reset"] == 1


def test_options_are_checked_and_reported(sim):
    rest = sim.endpoints["okx"]["rest"]
    status, body = http("POST", rest + "/_sim/okx", orjson.dumps({"ws_snapshot": 0.25}))
    assert status == 200 and body["options"] == {"ws_snapshot": 0.25, "checksum": False, "keepalive_s": 5.0}
    for bad in ({"ws_snapshot": 2}, {"checksum": 1}, {"keepalive_s": 0}, {"colour": "red"}):
        assert http("POST", rest + "/_sim/okx", orjson.dumps(bad))[0] == 400, bad
    assert sim.stats()["okx"]["options"]["ws_snapshot"] == 0.25


def test_strings_drop_trailing_zeros_like_okx(sim):
    _, body = get(sim.endpoints["okx"]["rest"] + "/api/v5/market/books?instId=ETH-USDT&sz=400")
    data = body["data"][0]
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
    ws.recv()
    ws.send('{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
    assert orjson.loads(ws.recv())["event"] == "unsubscribe"
    sim.advance(20)
    assert okx_barrier(ws) == []
    ws.close()
    assert sim.stats()["okx"]["ws_ops"] == {"subscribe": 1, "unsubscribe": 1}


def test_instruments_rest_lists_spot_with_tick_and_lot(sim):
    rest = sim.endpoints["okx"]["rest"]
    status, body = get(rest + "/api/v5/public/instruments?instType=SPOT")
    assert status == 200 and body["code"] == "0"
    btc = next(i for i in body["data"] if i["instId"] == "BTC-USDT")
    assert (btc["tickSz"], btc["lotSz"], btc["minSz"]) == ("0.01", "0.00001", "0.00001")
    assert (btc["baseCcy"], btc["quoteCcy"], btc["state"]) == ("BTC", "USDT", "live")
    status, body = get(rest + "/api/v5/public/instruments")
    assert status == 400 and body["code"] == "50014"


def test_the_command_line_keeps_the_old_okx_forms_available():
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--venues", "okx", "--instruments", "1",
                             "--rate", "0", "--okx-ws-snapshot", "1", "--okx-checksum"],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = orjson.loads(proc.stdout.readline())
        _, stats = get(line["endpoints"]["okx"]["rest"] + "/_sim/stats")
        assert stats["options"] == {"ws_snapshot": 1.0, "checksum": True, "keepalive_s": 5.0}
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
