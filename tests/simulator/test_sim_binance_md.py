"""Binance spot and USD-M market data: REST shapes, stream shapes, id chaining."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
import websocket

from .venue_testkit import LocalBook, binance_barrier, connect, get

pytestmark = pytest.mark.timeout(30)


def _filters(symbol: dict) -> dict:
    return {f["filterType"]: f for f in symbol["filters"]}


def test_spot_exchange_info_lists_symbols_with_filters(sim):
    status, info = get(sim.endpoints["binance-spot"]["rest"] + "/api/v3/exchangeInfo")
    assert status == 200
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    f = _filters(btc)
    assert f["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert f["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert f["NOTIONAL"]["minNotional"] == "5.00000000"
    status, one = get(sim.endpoints["binance-spot"]["rest"] + "/api/v3/exchangeInfo?symbol=ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    status, err = get(sim.endpoints["binance-spot"]["rest"] + "/api/v3/exchangeInfo?symbol=NOPE")
    assert (status, err["code"]) == (400, -1121)


def test_futures_exchange_info_uses_futures_filters(sim):
    status, info = get(sim.endpoints["binance-usdm"]["rest"] + "/fapi/v1/exchangeInfo")
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    f = _filters(btc)
    assert f["PRICE_FILTER"]["tickSize"] == "0.01"
    assert f["LOT_SIZE"]["stepSize"] == "0.00001"
    assert f["MIN_NOTIONAL"]["notional"] == "5"
    assert btc["contractType"] == "PERPETUAL"


def test_ping_and_time(sim):
    rest = sim.endpoints["binance-spot"]["rest"]
    assert get(rest + "/api/v3/ping") == (200, {})
    status, body = get(rest + "/api/v3/time")
    assert status == 200 and isinstance(body["serverTime"], int)


def test_spot_depth_snapshot_is_sorted_string_pairs(sim):
    rest = sim.endpoints["binance-spot"]["rest"]
    status, depth = get(rest + "/api/v3/depth?symbol=BTCUSDT&limit=10")
    assert status == 200
    assert isinstance(depth["lastUpdateId"], int)
    assert len(depth["bids"]) == len(depth["asks"]) == 10
    bids = [Decimal(p) for p, _ in depth["bids"]]
    asks = [Decimal(p) for p, _ in depth["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(isinstance(q, str) and len(q.split(".")[1]) == 8 for _, q in depth["bids"])
    assert get(rest + "/api/v3/depth?symbol=XXXUSDT")[1]["code"] == -1121
    assert get(rest + "/api/v3/depth")[1]["code"] == -1102


def test_futures_depth_carries_event_and_transaction_time(sim):
    status, depth = get(sim.endpoints["binance-usdm"]["rest"] + "/fapi/v1/depth?symbol=ETHUSDT&limit=5")
    assert status == 200
    assert set(depth) == {"lastUpdateId", "E", "T", "bids", "asks"}


def test_spot_diffs_chain_and_rebuild_the_snapshot(sim):
    ws_url, rest = sim.endpoints["binance-spot"]["ws"], sim.endpoints["binance-spot"]["rest"]
    ws = connect(ws_url + "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms")
    binance_barrier(ws)
    sim.advance(5)
    _, snap = get(rest + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
    sim.advance(400)
    frames = binance_barrier(ws)
    ws.close()
    diffs = [f["data"] for f in frames if f["stream"] == "btcusdt@depth@100ms"]
    assert len(diffs) >= 300
    assert all(d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" for d in diffs)
    book, last, applied = LocalBook(snap["bids"], snap["asks"]), snap["lastUpdateId"], 0
    for d in diffs:
        if d["u"] <= last:
            continue
        if applied == 0:
            assert d["U"] <= last + 1 <= d["u"]
        else:
            assert d["U"] == last + 1
        book.apply(d["b"], d["a"])
        last, applied = d["u"], applied + 1
    assert applied >= 300
    _, final = get(rest + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
    assert final["lastUpdateId"] == last
    assert book.top(5000) == (final["bids"], final["asks"])


def test_futures_diffs_chain_by_pu(sim):
    ws_url, rest = sim.endpoints["binance-usdm"]["ws"], sim.endpoints["binance-usdm"]["rest"]
    ws = connect(ws_url + "/stream?streams=btcusdt@depth@100ms")
    binance_barrier(ws)
    sim.advance(3)
    _, snap = get(rest + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    sim.advance(300)
    diffs = [f["data"] for f in binance_barrier(ws)]
    ws.close()
    assert all({"e", "E", "T", "s", "U", "u", "pu", "b", "a"} <= set(d) for d in diffs)
    for prev, cur in zip(diffs, diffs[1:]):
        assert cur["pu"] == prev["u"]
    assert any(cur["U"] != prev["u"] + 1 for prev, cur in zip(diffs, diffs[1:]))
    L = snap["lastUpdateId"]
    live = [d for d in diffs if d["u"] >= L]
    assert live[0]["U"] <= L <= live[0]["u"]
    book = LocalBook(snap["bids"], snap["asks"])
    for d in live:
        book.apply(d["b"], d["a"])
    _, final = get(rest + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    assert book.top(1000) == (final["bids"], final["asks"])


def test_trade_aggtrade_and_book_ticker_shapes(sim):
    ws = connect(sim.endpoints["binance-spot"]["ws"]
                 + "/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker")
    binance_barrier(ws)
    sim.advance(200)
    frames = binance_barrier(ws)
    ws.close()
    by = {}
    for f in frames:
        by.setdefault(f["stream"], []).append(f["data"])
    trades, aggs, tickers = by["btcusdt@trade"], by["btcusdt@aggTrade"], by["btcusdt@bookTicker"]
    assert set(trades[0]) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
    ids = [t["t"] for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert set(aggs[0]) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}
    assert sum(a["l"] - a["f"] + 1 for a in aggs) == len(trades)
    assert set(tickers[0]) == {"u", "s", "b", "B", "a", "A"}
    assert all(Decimal(t["b"]) < Decimal(t["a"]) for t in tickers)


def test_futures_trade_and_book_ticker_shapes_on_their_routed_paths(sim):
    base = sim.endpoints["binance-usdm"]["ws"]
    market = connect(base + "/market/stream?streams=ethusdt@trade/ethusdt@aggTrade")
    public = connect(base + "/public/stream?streams=ethusdt@bookTicker")
    binance_barrier(market), binance_barrier(public)
    sim.advance(100)
    frames = binance_barrier(market) + binance_barrier(public)
    market.close(), public.close()
    trade = next(f["data"] for f in frames if f["stream"] == "ethusdt@trade")
    agg = next(f["data"] for f in frames if f["stream"] == "ethusdt@aggTrade")
    ticker = next(f["data"] for f in frames if f["stream"] == "ethusdt@bookTicker")
    assert set(trade) == {"e", "E", "T", "s", "t", "p", "q", "X", "m"}
    assert set(agg) == {"e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"}   # today's shape
    assert set(ticker) == {"e", "u", "s", "b", "B", "a", "A", "T", "E"}


@pytest.mark.parametrize("path", ["/stream?streams=", "/public/stream?streams="])
def test_usdm_market_streams_never_arrive_on_the_retired_url_or_the_public_path(sim, path):
    """As Binance since 2026-04-23: a URL without a routed path gets /public streams only,
    and a stream of another category is accepted and silently never sent."""
    ws = connect(sim.endpoints["binance-usdm"]["ws"] + path + "ethusdt@aggTrade/ethusdt@depth@100ms")
    binance_barrier(ws)
    sim.advance(100)
    streams = {f["stream"] for f in binance_barrier(ws)}
    ws.close()
    assert streams == {"ethusdt@depth@100ms"}


def test_usdm_book_streams_never_arrive_on_the_market_path(sim):
    ws = connect(sim.endpoints["binance-usdm"]["ws"] + "/market/stream?streams=ethusdt@aggTrade/"
                 "ethusdt@bookTicker")
    binance_barrier(ws)
    sim.advance(100)
    streams = {f["stream"] for f in binance_barrier(ws)}
    ws.close()
    assert streams == {"ethusdt@aggTrade"}


def test_server_shutdown_is_announced_then_the_socket_closes(sim):
    combined = connect(sim.endpoints["binance-spot"]["ws"] + "/stream?streams=btcusdt@trade")
    raw = connect(sim.endpoints["binance-spot"]["ws"] + "/ws/btcusdt@trade")
    binance_barrier(combined), binance_barrier(raw)
    sim.inject("binance-spot", "server_shutdown_streams", seconds=0.5)
    got = orjson.loads(combined.recv())
    assert got["stream"] == "!serverShutdown" and got["data"]["e"] == "serverShutdown"
    assert orjson.loads(raw.recv())["e"] == "serverShutdown"
    combined.settimeout(5)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            combined.recv()
    raw.close()


def test_live_subscribe_unsubscribe_and_list_on_raw_socket(sim):
    ws = connect(sim.endpoints["binance-spot"]["ws"] + "/ws")
    ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 1}).decode())
    assert orjson.loads(ws.recv()) == {"result": None, "id": 1}
    sim.advance(5)
    frames = binance_barrier(ws)
    assert frames and all(f["e"] == "depthUpdate" for f in frames)   # raw: no wrapper
    ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}).decode())
    assert orjson.loads(ws.recv()) == {"result": ["btcusdt@depth@100ms"], "id": 2}
    ws.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 3}).decode())
    assert orjson.loads(ws.recv()) == {"result": None, "id": 3}
    sim.advance(5)
    assert binance_barrier(ws) == []
    ws.send(orjson.dumps({"method": "NOPE", "id": 4}).decode())
    reply = orjson.loads(ws.recv())
    assert reply["error"]["code"] == 2 and reply["id"] == 4
    ws.send("{not json")
    assert orjson.loads(ws.recv())["error"]["code"] == 3
    ws.close()


def test_raw_stream_path_sends_bare_payloads(sim):
    ws = connect(sim.endpoints["binance-spot"]["ws"] + "/ws/ethusdt@depth@100ms")
    binance_barrier(ws)
    sim.advance(3)
    frames = binance_barrier(ws)
    ws.close()
    assert frames and all(f["s"] == "ETHUSDT" and "stream" not in f for f in frames)


def test_market_runs_by_itself_at_the_configured_rate(make_sim):
    sim = make_sim(venues=["binance-spot"], rate=200)
    ws = connect(sim.endpoints["binance-spot"]["ws"] + "/ws/btcusdt@depth@100ms")
    diffs = [orjson.loads(ws.recv()) for _ in range(20)]
    ws.close()
    assert all(b["U"] == a["u"] + 1 for a, b in zip(diffs, diffs[1:]))
    assert sim.stats()["market"]["steps"] >= 20


def test_coinm_on_request_lists_usd_perpetuals_and_chains_diffs_by_pu(make_sim):
    sim = make_sim(venues=["binance-coinm"])
    rest, ws_url = sim.endpoints["binance-coinm"]["rest"], sim.endpoints["binance-coinm"]["ws"]
    status, info = get(rest + "/dapi/v1/exchangeInfo")
    assert status == 200 and info["futuresType"] == "COIN_MARGINED"
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSD_PERP")
    assert (btc["pair"], btc["baseAsset"], btc["quoteAsset"], btc["marginAsset"]) == ("BTCUSD", "BTC", "USD", "BTC")
    ws = connect(ws_url + "/stream?streams=btcusd_perp@depth@100ms/btcusd_perp@aggTrade")
    binance_barrier(ws)
    sim.advance(100)
    frames = binance_barrier(ws)
    ws.close()
    diffs = [f["data"] for f in frames if f["stream"] == "btcusd_perp@depth@100ms"]
    assert diffs and all(cur["pu"] == prev["u"] for prev, cur in zip(diffs, diffs[1:]))
    agg = next(f["data"] for f in frames if f["stream"] == "btcusd_perp@aggTrade")
    assert agg["s"] == "BTCUSD_PERP" and "nq" not in agg
    assert sim.inject("binance-coinm", "gap", symbol="BTC-USD-PERP")["symbol"] == "BTCUSD_PERP"
