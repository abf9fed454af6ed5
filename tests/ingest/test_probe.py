"""`python -m ingest.probe` against the simulator: every venue and kind we ingest.

The probe runs the live ingest code (IngestProcess: connections, adapter, book sync)
for a few seconds and reports in the shape of `ingest.replay --json`. Binance.US
speaks Binance spot's protocol at its own host: it is probed against the simulator's
spot venue. COIN-M is the simulator's `binance-coinm`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from ingest.probe import probe

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(90)]

# probe venue -> (simulator venue, symbols as a user would type them, canonical symbols)
CASES = {
    "binance-spot": ("binance-spot", ["BTC-USDT", "ETHUSDT"], ["BTC-USDT", "ETH-USDT"]),
    "binance-us": ("binance-spot", ["BTCUSDT", "ETH-USDT"], ["BTC-USDT", "ETH-USDT"]),
    "binance-usdm": ("binance-usdm", ["BTC-USDT-PERP", "ETHUSDT"], ["BTC-USDT-PERP", "ETH-USDT-PERP"]),
    "binance-coinm": ("binance-coinm", ["BTCUSD_PERP", "ETH-USD-PERP"], ["BTC-USD-PERP", "ETH-USD-PERP"]),
    "okx": ("okx", ["BTC-USDT", "ETH-USDT"], ["BTC-USDT", "ETH-USDT"]),
    "kraken": ("kraken", ["XBT/USDT", "ETH-USDT"], ["BTC-USDT", "ETH-USDT"]),
}


@pytest.fixture(scope="module")
def sim():
    from simulator import Simulator
    s = Simulator(venues=["binance-spot", "binance-usdm", "binance-coinm", "okx", "kraken"],
                  instruments=2, rate=50, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


def run(sim, venue, duration_s=3.0):
    sim_venue, symbols, _ = CASES[venue]
    from venues import get
    v = get(venue)
    ep = sim.endpoints[sim_venue]
    return probe(venue, [v.venue_symbol(s) for s in symbols], rest_url=ep["rest"], ws_url=ep["ws"],
                 duration_s=duration_s, depth=10)


@pytest.mark.parametrize("venue", list(CASES))
def test_the_probe_syncs_every_book_and_sees_trades_and_tickers(sim, venue):
    out = run(sim, venue)
    assert sorted(out["books"]) == sorted(CASES[venue][2])
    for sym, book in out["books"].items():
        assert book["synced"], (sym, out)
        bids = [Decimal(p) for p, _ in book["bids"]]
        asks = [Decimal(p) for p, _ in book["asks"]]
        assert len(bids) == len(asks) == 10
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert all(out["messages"][k] > 0 for k in ("book", "trade", "ticker")), out["messages"]
    assert out["snapshots"] >= 2 and out["gaps"] == 0 and out["checksum_failed"] == 0
    assert out["bad_frames"] == 0 and out["errors"] == [], out["errors"]
    assert all(c["connects"] == 1 for c in out["connections"])
    if venue == "binance-usdm":           # the base URL given; the category paths appended
        assert [c["url"].split("/stream?")[0][-7:] for c in out["connections"]] == ["/public", "/market"]
    if venue == "kraken":
        assert out["checksum_ok"] > 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ingest.probe", *args], capture_output=True, text=True,
                          timeout=60)


def test_the_cli_prints_one_json_object_and_exits_zero_when_every_book_synced(sim):
    ep = sim.endpoints["binance-usdm"]
    r = cli("--venue", "binance-usdm", "--symbols", "BTCUSDT,ETHUSDT", "--rest-url", ep["rest"],
            "--ws-url", ep["ws"], "--duration", "2", "--depth", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert r.stdout.count("\n") == 1 and set(out["books"]) == {"BTC-USDT-PERP", "ETH-USDT-PERP"}
    assert all(len(b["bids"]) == 5 for b in out["books"].values())
    assert {"snapshots", "resyncs", "resync_reasons", "gaps", "checksum_ok", "checksum_failed",
            "messages", "errors"} <= set(out)


def test_the_cli_prints_a_table_without_json(sim):
    ep = sim.endpoints["kraken"]
    r = cli("--venue", "kraken", "--symbols", "XBT/USDT", "--ws-url", ep["ws"], "--duration", "2")
    assert r.returncode == 0, r.stderr
    assert "kraken: 1/1 books synced" in r.stdout and "BTC-USDT" in r.stdout and "yes" in r.stdout


@pytest.mark.parametrize("venue,flags", [
    ("binance-spot", ["--rest-url", "http://127.0.0.1:{port}", "--ws-url", "ws://127.0.0.1:{port}"]),
    ("kraken", ["--ws-url", "ws://127.0.0.1:{port}"]),
])
def test_an_unreachable_venue_is_one_line_and_exit_code_two(venue, flags):
    port = free_port()
    r = cli("--venue", venue, "--duration", "5", "--json", *[f.format(port=port) for f in flags])
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"ingest.probe: {venue}: cannot connect to")
