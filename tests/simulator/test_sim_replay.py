"""Replay mode serves recorded datasets as the venue recorded them."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from .venue_testkit import LocalBook, connect, get, okx_barrier, okx_checksum

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def spot(shared_data) -> Path:
    return shared_data / "binance_spot_2021-10-12_cryptofeed"


@pytest.fixture
def usdm(shared_data) -> Path:
    return shared_data / "binance_usdm_2021-07-22_cryptofeed"


@pytest.fixture
def okx(shared_data) -> Path:
    return shared_data / "okx_2022-05-13_cryptofeed"


def _recorded(folder: Path) -> list[dict]:
    return [orjson.loads(line) for line in (folder / "messages.jsonl").read_bytes().splitlines()]


def _streams(folder: Path) -> list[str]:
    meta = orjson.loads((folder / "meta.json").read_bytes())
    return meta["connections"][0]["url"].split("streams=")[1].split("/")


def test_spot_replay_sends_every_recorded_frame_in_order(make_sim, spot):
    sim = make_sim(venues=["binance-spot"], replay=str(spot))
    ws_lines = [r["payload"] for r in _recorded(spot) if r["src"] == "ws"]
    ws = connect(sim.endpoints["binance-spot"]["ws"] + "/stream?streams=" + "/".join(_streams(spot)))
    got = [orjson.loads(ws.recv()) for _ in ws_lines]
    ws.close()
    assert got == ws_lines
    stats = sim.stats()["binance-spot"]
    assert stats["mode"] == "replay" and stats["replay"]["messages"] == len(ws_lines)


def test_spot_replay_answers_depth_with_the_recorded_snapshot(make_sim, spot):
    sim = make_sim(venues=["binance-spot"], replay=str(spot))
    rest = sim.endpoints["binance-spot"]["rest"]
    snapshots = {r["url"].split("symbol=")[1].split("&")[0]: r["payload"]
                 for r in _recorded(spot) if r["src"] == "rest"}
    for symbol, payload in snapshots.items():
        assert get(f"{rest}/api/v3/depth?symbol={symbol}&limit=1000") == (200, payload)
    _, info = get(rest + "/api/v3/exchangeInfo")
    assert sorted(s["symbol"] for s in info["symbols"]) == sorted(snapshots)


def test_replay_serves_only_the_subscribed_streams_and_raw_sockets_get_data(make_sim, usdm):
    sim = make_sim(venues=["binance-usdm"], replay=str(usdm))
    wanted = [r["payload"]["data"] for r in _recorded(usdm)
              if r["src"] == "ws" and r["payload"]["stream"] == "sushiusdt@depth@100ms"]
    ws = connect(sim.endpoints["binance-usdm"]["ws"] + "/ws/sushiusdt@depth@100ms")
    got = [orjson.loads(ws.recv()) for _ in wanted]
    ws.close()
    assert got == wanted
    assert all(b["pu"] == a["u"] for a, b in zip(got, got[1:]))


def test_replay_faults_apply_to_recorded_diffs(make_sim, usdm):
    sim = make_sim(venues=["binance-usdm"], replay=str(usdm))
    sim.inject("binance-usdm", "gap", symbol="SUSHIUSDT")
    wanted = [r["payload"]["data"] for r in _recorded(usdm)
              if r["src"] == "ws" and r["payload"]["stream"] == "sushiusdt@depth@100ms"]
    ws = connect(sim.endpoints["binance-usdm"]["ws"] + "/ws/sushiusdt@depth@100ms")
    got = [orjson.loads(ws.recv()) for _ in wanted[1:]]
    ws.close()
    assert got == wanted[1:]


def test_okx_replay_acks_live_and_replays_recorded_books(make_sim, okx):
    sim = make_sim(venues=["okx"], replay=str(okx))
    meta = orjson.loads((okx / "meta.json").read_bytes())
    request = meta["subscribe_requests"][-1]["body"]
    args = orjson.loads(request)["args"]
    data_lines = [r["payload"] for r in _recorded(okx)
                  if r["src"] == "ws" and "event" not in r["payload"]]
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    sim.inject("okx", "checksum", symbol="BTC-USDT")
    ws.send(request)
    acks = [orjson.loads(ws.recv()) for _ in args]
    assert [a["arg"] for a in acks] == args and all(a["event"] == "subscribe" for a in acks)
    got = [orjson.loads(ws.recv()) for _ in data_lines]
    assert okx_barrier(ws) == []
    ws.close()
    books, bad = {}, []
    for msg in got:
        if msg["arg"]["channel"] != "books":
            continue
        d, inst = msg["data"][0], msg["arg"]["instId"]
        if msg["action"] == "snapshot":
            books[inst] = LocalBook(d["bids"], d["asks"])
        else:
            books[inst].apply(d["bids"], d["asks"])
        if okx_checksum(*books[inst].top(25)) != d["checksum"]:
            bad.append(inst)
    assert bad == ["BTC-USDT"]                   # the one corrupted on purpose
    assert len(got) == len(data_lines)


def test_replay_paces_frames_by_recorded_time(make_sim, okx):
    sim = make_sim(venues=["okx"], replay=str(okx), replay_speed=50.0)   # ~10.8 s -> ~0.22 s
    lines = [r for r in _recorded(okx) if r["src"] == "ws" and "event" not in r["payload"]
             and r["payload"]["arg"] == {"channel": "trades", "instId": "BTC-USDT"}]
    span = (lines[-1]["recv_ts"] - lines[0]["recv_ts"]) / 50.0
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/public")
    ws.send('{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}')
    ws.recv()
    first = orjson.loads(ws.recv())
    started = time.monotonic()
    for _ in lines[1:]:
        ws.recv()
    ws.close()
    assert first == lines[0]["payload"]
    assert time.monotonic() - started >= span * 0.9
