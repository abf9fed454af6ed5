"""Every market-data fault has its observable effect, and only where aimed."""

from __future__ import annotations

import orjson
import pytest
import websocket

from simulator import FaultError

from .venue_testkit import LocalBook, binance_barrier, connect, get, http, okx_barrier, okx_checksum

pytestmark = pytest.mark.timeout(30)
STREAMS = "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"


def _spot(sim):
    ws = connect(sim.endpoints["binance-spot"]["ws"] + STREAMS)
    binance_barrier(ws)
    return ws


def _diffs(frames, symbol):
    return [f["data"] for f in frames if isinstance(f, dict) and f["data"]["s"] == symbol]


def _breaks(diffs):
    return [(a["u"], b["U"]) for a, b in zip(diffs, diffs[1:]) if b["U"] != a["u"] + 1]


def test_gap_drops_one_diff_of_the_aimed_symbol_only(sim):
    ws = _spot(sim)
    sim.advance(3)
    frames = binance_barrier(ws)
    assert sim.inject("binance-spot", "gap", symbol="BTCUSDT") == {
        "fault": "gap", "symbol": "BTCUSDT", "count": 1}
    sim.advance(30)
    frames += binance_barrier(ws)
    ws.close()
    assert len(_breaks(_diffs(frames, "BTCUSDT"))) == 1
    assert _breaks(_diffs(frames, "ETHUSDT")) == []
    assert sim.stats()["binance-spot"]["faults"]["applied"]["gap"] == 1


def test_gap_on_okx_breaks_the_seq_chain_of_that_instrument(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},'
            '{"channel":"books","instId":"ETH-USDT"}]}')
    okx_barrier(ws)                              # the acks: subscribed from here on
    sim.advance(3)
    msgs = [m for m in okx_barrier(ws) if "data" in m]
    sim.inject("okx", "gap", symbol="BTC-USDT", count=2)
    sim.advance(30)
    msgs += okx_barrier(ws)
    ws.close()
    for inst, expected in (("BTC-USDT", 1), ("ETH-USDT", 0)):
        data = [m["data"][0] for m in msgs if m["arg"]["instId"] == inst]
        breaks = [1 for a, b in zip(data, data[1:]) if b["prevSeqId"] != a["seqId"]]
        assert len(breaks) == expected


def test_duplicate_sends_the_same_diff_twice(sim):
    ws = _spot(sim)
    sim.inject("binance-spot", "duplicate", symbol="ETHUSDT")
    sim.advance(10)
    eth = _diffs(binance_barrier(ws), "ETHUSDT")
    ws.close()
    twins = [a for a, b in zip(eth, eth[1:]) if a == b]
    assert len(twins) == 1 and len(eth) == 11


def test_reorder_swaps_two_consecutive_diffs(sim):
    ws = _spot(sim)
    sim.inject("binance-spot", "reorder", symbol="BTCUSDT")
    sim.advance(10)
    btc = _diffs(binance_barrier(ws), "BTCUSDT")
    ws.close()
    swapped = [(a, b) for a, b in zip(btc, btc[1:]) if b["u"] < a["U"]]
    assert len(swapped) == 1
    assert _breaks(sorted(btc, key=lambda d: d["U"])) == []


@pytest.mark.parametrize("kind", ["json", "shape"])
def test_malformed_frame_is_inserted_and_the_chain_survives(sim, kind):
    ws = _spot(sim)
    sim.inject("binance-spot", "malformed", symbol="BTCUSDT", kind=kind)
    sim.advance(5)
    frames = binance_barrier(ws)
    ws.close()
    if kind == "json":
        bad = [f for f in frames if isinstance(f, str)]
        assert len(bad) == 1
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad[0])
    else:
        bad = [f for f in frames if not isinstance(f["data"].get("U"), int)]
        assert len(bad) == 1
    good = [f for f in frames if f not in bad]
    assert _breaks(_diffs(good, "BTCUSDT")) == []


def test_okx_checksum_fault_corrupts_exactly_one_message(sim):
    http("POST", sim.endpoints["okx"]["rest"] + "/_sim/okx", orjson.dumps({"ws_snapshot": 1.0, "checksum": True}))
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"ETH-USDT"}]}')
    ws.recv()
    snap = orjson.loads(ws.recv())["data"][0]
    book = LocalBook(snap["bids"], snap["asks"])
    sim.advance(3)
    sim.inject("okx", "checksum", symbol="ETH-USDT")
    sim.advance(10)
    msgs = okx_barrier(ws)
    ws.close()
    verdicts = []
    for m in msgs:
        d = m["data"][0]
        book.apply(d["bids"], d["asks"])
        verdicts.append(okx_checksum(*book.top(25)) == d["checksum"])
    assert verdicts.count(False) == 1 and len(verdicts) == 13


def test_stale_snapshot_is_older_than_the_streamed_diffs(sim):
    ws = _spot(sim)
    sim.advance(20)
    streamed = _diffs(binance_barrier(ws), "BTCUSDT")
    ws.close()
    sim.inject("binance-spot", "stale_snapshot", symbol="BTCUSDT", lag=10)
    rest = sim.endpoints["binance-spot"]["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    _, stale = get(rest)
    assert stale["lastUpdateId"] == streamed[-11]["u"] < streamed[-1]["u"]
    _, fresh = get(rest)
    assert fresh["lastUpdateId"] == streamed[-1]["u"]
    # the stale book is exactly the old state: replaying the 10 newer diffs gives the fresh one
    book = LocalBook(stale["bids"], stale["asks"])
    for d in streamed[-10:]:
        book.apply(d["b"], d["a"])
    assert book.top(1000) == (fresh["bids"], fresh["asks"])


def test_okx_stale_snapshot_does_not_reach_the_stream(sim):
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
    ws.recv()
    sim.advance(20)
    streamed = [m["data"][0] for m in okx_barrier(ws) if m["data"][0]["bids"] or m["data"][0]["asks"]]
    ws.close()
    sim.inject("okx", "stale_snapshot", symbol="BTC-USDT", lag=5)
    rest = sim.endpoints["okx"]["rest"] + "/api/v5/market/books?instId=BTC-USDT&sz=400"
    _, stale = get(rest)
    _, fresh = get(rest)
    assert stale["data"][0]["seqId"] == streamed[-5]["prevSeqId"] < fresh["data"][0]["seqId"]
    assert fresh["data"][0]["seqId"] == streamed[-1]["seqId"]


def test_stall_holds_one_symbol_while_the_other_keeps_flowing(sim):
    ws = _spot(sim)
    sim.inject("binance-spot", "stall", symbol="BTCUSDT", seconds=0.5)
    sim.advance(10)
    during = binance_barrier(ws)
    assert len(_diffs(during, "ETHUSDT")) == 10 and _diffs(during, "BTCUSDT") == []
    held = [orjson.loads(ws.recv())["data"] for _ in range(10)]   # arrive when the stall ends
    ws.close()
    assert all(d["s"] == "BTCUSDT" for d in held) and _breaks(held) == []


def test_stall_with_drop_loses_the_frames(sim):
    ws = _spot(sim)
    sim.advance(1)
    before = _diffs(binance_barrier(ws), "BTCUSDT")
    sim.inject("binance-spot", "stall", symbol="BTCUSDT", seconds=0.3, drop=True)
    sim.advance(5)
    assert _diffs(binance_barrier(ws), "BTCUSDT") == []
    ws.settimeout(0.6)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()                                   # the stall ends, nothing was kept
    ws.settimeout(10)
    sim.advance(1)
    after = _diffs(binance_barrier(ws), "BTCUSDT")
    ws.close()
    assert after[0]["U"] > before[-1]["u"] + 1
    assert sim.stats()["binance-spot"]["stall_dropped"] == 5


@pytest.mark.parametrize("abrupt", [False, True])
def test_disconnect_closes_every_socket(sim, abrupt):
    a = _spot(sim)
    b = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    sim.inject("binance-spot", "disconnect", abrupt=abrupt)
    if abrupt:
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            a.recv()
    else:
        opcode, _frame = a.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
    b.send("ping")
    assert b.recv() == "pong"                    # other venues are untouched
    b.close()
    assert sim.stats()["binance-spot"]["disconnects"] == 1


def test_control_endpoint_arms_reports_and_refuses(sim):
    rest = sim.endpoints["okx"]["rest"]
    status, body = http("POST", rest + "/_sim/fault",
                        orjson.dumps({"fault": "checksum", "symbol": "BTCUSDT", "count": 2}))
    assert status == 200 and body["fault"] == {"fault": "checksum", "symbol": "BTC-USDT", "count": 2}
    _, stats = get(rest + "/_sim/stats")
    assert stats["faults"]["armed"] == [{"fault": "checksum", "symbol": "BTC-USDT", "count": 2}]
    assert stats["market"]["seed"] == 1
    for bad in ({"fault": "nope"}, {"fault": "gap", "symbol": "XXX-USDT"},
                {"fault": "gap", "count": 0}, {"fault": "gap", "colour": "red"},
                {"fault": "server_shutdown_streams"}):   # binance-spot's market-data streams only
        status, body = http("POST", rest + "/_sim/fault", orjson.dumps(bad))
        assert status == 400 and body["ok"] is False, bad
    # an order-path fault on a venue without an order API (Kraken: market data only)
    status, body = http("POST", sim.endpoints["kraken"]["rest"] + "/_sim/fault", orjson.dumps({"fault": "drop_response"}))
    assert status == 400 and body["ok"] is False
    assert http("POST", rest + "/_sim/fault", b"{nope")[0] == 400
    assert http("DELETE", rest + "/_sim/fault")[1] == {"ok": True, "cleared": 1}
    status, body = http("POST", sim.endpoints["binance-spot"]["rest"] + "/_sim/fault",
                        orjson.dumps({"fault": "checksum"}))
    assert status == 400                         # Binance has no checksum
    with pytest.raises(FaultError):
        sim.inject("okx", "gap", symbol="NOPE")


def test_step_endpoint_advances_the_market(sim):
    rest = sim.endpoints["binance-spot"]["rest"]
    status, body = http("POST", rest + "/_sim/step", orjson.dumps({"count": 3}))
    assert status == 200 and body == {"ok": True, "steps": 3}
