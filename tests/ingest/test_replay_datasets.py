"""Replays of every recording in ../shared/data through the live adapter and book code."""

from __future__ import annotations

import gzip
import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from events import HeaderFlag, Kind
from ingest.replay import replay

from .helpers import Collector

DATASETS = {
    "binance_spot_2021-10-12_cryptofeed": "binance-spot",
    "binance_us_2021-10-12_cryptofeed": "binance-us",
    "binance_usdm_2021-07-22_cryptofeed": "binance-usdm",
    "binance_coinm_2021-07-22_cryptofeed": "binance-coinm",
    "binance_spot_ethusdt_2024-08-08_hftbacktest": "binance-spot",
    "okx_2022-05-13_cryptofeed": "okx",
}
BINANCE = [d for d, v in DATASETS.items() if v != "okx"]
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results():
    from tests.conftest import SHARED_DATA
    if not SHARED_DATA.is_dir():
        pytest.skip(f"recorded venue data not found at {SHARED_DATA}")
    out = {}
    for name, venue in DATASETS.items():
        if not (SHARED_DATA / name).is_dir():
            continue
        sink = Collector()
        out[name] = (replay(SHARED_DATA / name, venue, sink=sink), sink.records)
    return out


def _get(results, name):
    if name not in results:
        pytest.skip(f"dataset {name} is not in ../shared/data")
    return results[name]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", BINANCE)
def test_every_binance_symbol_syncs_with_zero_gaps(results, name):
    res, _ = _get(results, name)
    assert res["gaps"] == 0 and res["resyncs"] == 0 and res["bad_frames"] == 0
    assert res["books"] and all(b["synced"] for b in res["books"].values()), res["books"].keys()
    assert res["diffs_applied"] > 0 and res["events_out"]["book"] == res["diffs_applied"]
    for book in res["books"].values():
        assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])


@pytest.mark.timeout(90)
def test_every_okx_checksum_verifies(results):
    res, recs = _get(results, "okx_2022-05-13_cryptofeed")
    books = sum(1 for line in open(res["dataset"], "rb") if b'"channel":"books"' in line and b'"data"' in line)
    assert res["checksum_ok"] == books == 290 and res["checksum_failed"] == 0
    assert res["gaps"] == 0 and all(b["synced"] for b in res["books"].values())
    assert set(res["books"]) == {"BTC-USD-220527", "UNI-USD-PERP", "BTC-USDT"}
    assert set(recs["flags"] & HeaderFlag.REPLAYED) == {HeaderFlag.REPLAYED}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", BINANCE)
def test_replayed_top_of_book_equals_the_recorded_book_ticker_at_the_same_update_id(results, name):
    _, recs = _get(results, name)
    tops = {}
    for r in recs[recs["kind"] == Kind.BOOK]:
        b = r["book"]
        tops[(int(r["instrument"]), int(b["last_update_id"]))] = (
            int(b["bid_px"][0]), int(b["bid_sz"][0]), int(b["ask_px"][0]), int(b["ask_sz"][0]))
    compared = mismatched = 0
    for r in recs[recs["kind"] == Kind.TICKER]:
        t = r["ticker"]
        top = tops.get((int(r["instrument"]), int(t["update_id"])))
        if top is None:
            continue
        compared += 1
        if top != (int(t["bid_px"]), int(t["bid_sz"]), int(t["ask_px"]), int(t["ask_sz"])):
            mismatched += 1
    assert compared > 0, "no bookTicker shares an update id with an applied diff"
    assert mismatched == 0, f"{mismatched} of {compared} bookTickers differ from the replayed book"


@pytest.mark.timeout(60)
def test_replay_cli_prints_one_json_object(shared_data):
    path = shared_data / "binance_usdm_2021-07-22_cryptofeed"
    proc = subprocess.run([sys.executable, "-m", "ingest.replay", str(path), "--venue", "binance-usdm",
                           "--symbol", "SUSHIUSDT", "--depth", "5", "--json"],
                          capture_output=True, cwd=REPO, timeout=50)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    out = orjson.loads(lines[0])
    for key in ("messages", "diffs_applied", "diffs_dropped_stale", "gaps", "checksum_ok",
                "checksum_failed", "resyncs", "events_out", "books"):
        assert key in out
    assert list(out["books"]) == ["SUSHI-USDT-PERP"]
    book = out["books"]["SUSHI-USDT-PERP"]
    assert book["synced"] is True and len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert all(isinstance(px, str) and isinstance(sz, str) for px, sz in book["bids"] + book["asks"])
    assert out["messages"] == 1539 and out["filtered"] > 0


@pytest.mark.timeout(60)
def test_a_gap_with_no_later_snapshot_leaves_the_symbol_unsynced(shared_data, tmp_path):
    src = shared_data / "binance_spot_2021-10-12_cryptofeed" / "messages.jsonl"
    lines = src.read_bytes().splitlines()
    nkn = [i for i, line in enumerate(lines) if b"nknusdt@depth" in line]
    del lines[nkn[5]]                      # one NKNUSDT diff lost after the sync
    (tmp_path / "messages.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    res = replay(tmp_path, "binance-spot")
    assert res["gaps"] == 1 and res["resyncs"] == 1
    assert res["books"]["NKN-USDT"]["synced"] is False
    assert all(b["synced"] for s, b in res["books"].items() if s != "NKN-USDT")


@pytest.mark.timeout(60)
def test_replay_reads_gzip_files_and_rest_lines_without_a_symbol(shared_data, tmp_path):
    src = shared_data / "binance_spot_ethusdt_2024-08-08_hftbacktest" / "messages.jsonl.gz"
    with gzip.open(src, "rb") as f:
        head = [next(f) for _ in range(3000)]
    assert any(b'"src":"rest"' in line and b"symbol" not in line for line in head)
    out = tmp_path / "messages.jsonl.gz"
    with gzip.open(out, "wb") as f:
        f.writelines(head)
    res = replay(out, "binance-spot")
    assert res["books"]["ETH-USDT"]["synced"] and res["gaps"] == 0
