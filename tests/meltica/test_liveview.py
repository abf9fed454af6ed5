"""The live view stays readable in an 80x24 terminal: nothing cut to `…`, every number
and name whole, and why each program restarted, from the launcher's own record."""

from __future__ import annotations

import re
import threading
import types

import pytest
from rich.console import Console

from meltica.launcher import Launcher, Program
from meltica.liveview import LiveView

pytestmark = pytest.mark.timeout(60)
VENUES = ["binance-spot", "okx"]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
PRICES = {"BTC-USDT": ("97123.45", "97125.10"), "ETH-USDT": ("3456.78", "3456.79"),
          "SOL-USDT": ("0.00001234", "0.00001240")}


class Monitor:
    error = None

    def __init__(self, venues, symbols):
        self.venues, self.symbols = venues, symbols

    def snapshot(self):
        top = {f"{v}/{s}": {"bid": PRICES.get(s, PRICES["BTC-USDT"])[0], "ask": PRICES.get(s, PRICES["BTC-USDT"])[1],
                            "spread_bps": 48.39} for v in self.venues for s in self.symbols}
        return {"top": top, "counts": {"okx/book": 1_234_567, "binance-spot/book": 7_654_321}, "merged": 3}

    def latency_us(self, venue=None):
        return {"p50_us": 987.6, "p99_us": 123_456.7}


class Collector:
    def __init__(self, venues, symbols):
        self.counters = {f"md.messages{{provider={v},symbol={s}}}": 123_456 for v in venues for s in symbols}
        self.counters.update({f"book.resync{{provider={v},symbol={s},reason=gap}}": 12 for v in venues for s in symbols})
        self.counters.update({"fanout.coalesced{consumer=demo}": 1_234_567, "fanout.dropped{consumer=demo}": 98_765,
                              "strategy.orders.submitted": 43_210, "exec.orders.accepted": 43_000,
                              "exec.orders.rejected{reason=insufficient_balance}": 210,
                              "exec.reports{status=FILLED}": 86_420})

    def snapshots(self):
        return {"execution": {"counters": self.counters,
                              "gauges": {"exec.open_orders": 12, "exec.last_exec_seq": 1_234_567}}}


class States:
    REASON = ("exit 1: ValueError: consumer_ring_capacity must be a power of two: capacity=1000 "
              "(python -m dispatch --ring-capacity 1000)")

    def states(self):
        names = ["simulator", "execution", "dispatch", *[f"ingest.{v}" for v in VENUES], "strategy.demo"]
        out = [{"name": n, "pid": 4_194_000 + i, "state": "running", "uptime_s": 12_345.6, "restarts": 0,
                "exits": 0, "last_exit": None} for i, n in enumerate(names)]
        out[2].update(state="restarting", uptime_s=0, restarts=3, exits=3, last_exit=self.REASON)
        out[4].update(restarts=1, exits=1, last_exit="SIGKILL")
        return out


def pipeline(launcher, venues=VENUES, symbols=SYMBOLS, tmp="/tmp/x"):
    return types.SimpleNamespace(
        collector=Collector(venues, symbols), monitor=Monitor(venues, symbols), launcher=launcher,
        ctx=types.SimpleNamespace(run_id="run-20261202-064812", run_dir=f"{tmp}/run/run-20261202-064812"),
        uptime_s=lambda: 1234.5, live_feeds=False, metrics_port=9464, venues=venues, symbols=symbols)


def render(p, width=80) -> str:
    console = Console(width=width, height=24, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(LiveView(p, 3600).render())
    return cap.get()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_default_run_fits_80x24_with_every_number_and_name_whole():
    text = render(pipeline(States()))
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 24 and max(len(line.rstrip()) for line in lines) <= 80, text
    assert "…" not in text and "..." not in text, text
    words = set(text.split())
    for whole in [*VENUES, *SYMBOLS, *(px for pair in PRICES.values() for px in pair), "48.39",
                  "123,457", "988", "1,234,567", "98,765", "43,210", "43,000", "210", "86,420",
                  "ingest.binance-spot", "strategy.demo", "4194003", "restarting", "3h25m",
                  "http://127.0.0.1:9464/metrics"]:
        assert whole in words, (whole, text)
    assert "8,888,888" in words  # delivered to the monitor, in full
    assert any("open 12" in line for line in lines) and any("exec_seq 1,234,567" in line for line in lines)
    assert f"dispatch exited 3x, last: {States.REASON}" in flat(text), text
    assert "ingest.okx exited, last: SIGKILL" in flat(text), text


def test_longer_names_and_symbols_still_fit_80_columns_without_cutting():
    venues, symbols = ["binance-coinm", "binance-usdm"], ["BTC-USD-PERP", "ETH-USDT-PERP"]
    text = render(pipeline(States(), venues, symbols))
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    rows = [line.split() for line in text.splitlines()]
    for venue in venues:
        assert any(r[:2] == [venue, symbols[0]] for r in rows), text   # one line, both whole
    assert any(r[:1] == ["ETH-USDT-PERP"] and r[1:3] == ["97123.45", "97125.10"] for r in rows), text


def test_the_view_shows_why_a_real_program_restarted(run_ctx):
    from tests.conftest import REPO
    launcher = Launcher(run_ctx, cwd=str(REPO))
    launcher.start(Program("crash", "tests.meltica.exiter", ["raise", "no ring named md.okx (run 42)"]))
    try:
        ev = threading.Event()
        while not (launcher.poll(), launcher.restarts()["crash"] >= 1)[1]:
            assert ev.wait(0.02) is False
        text = render(pipeline(launcher, tmp=str(run_ctx.run_dir.parent)))
    finally:
        launcher.stop(timeout_s=5)
    assert re.search(r"crash exited( \dx)?, last: exit 1: ValueError: no ring named md.okx \(run 42\)",
                     flat(text)), text


def test_the_view_shows_each_venues_balances_and_positions_from_the_exec_journal(tmp_path):
    from channels.names import journal_path
    from events import AccountEntry, Kind, Provider, empty, instrument_id, stamp_header
    from execution.journal import Journal

    run_dir = tmp_path / "run" / "run-20261202-064812"
    path = journal_path(run_dir)
    path.parent.mkdir(parents=True)
    recs = empty(4)
    rows = [(Provider.BINANCE_SPOT, "USDT", 9_500_25000000, 500_00000000), (Provider.BINANCE_SPOT, "BTC", 12345678, 0),
            (Provider.BINANCE_SPOT, "ETH", 0, 0)]
    for i, (p, asset, free, locked) in enumerate(rows):
        stamp_header(recs[i], Kind.ACCOUNT, p, 0)
        a = recs[i]["account"]
        a["exec_seq"], a["entry"], a["asset"], a["free"], a["locked"], a["scale"] = (
            i + 1, AccountEntry.BALANCE, asset.encode(), free, locked, 8)
    stamp_header(recs[3], Kind.ACCOUNT, Provider.OKX, instrument_id("BTC-USDT-SWAP"))
    a = recs[3]["account"]
    a["exec_seq"], a["entry"], a["symbol"], a["asset"] = 4, AccountEntry.POSITION, b"BTC-USDT-SWAP", b"USDT"
    a["size"], a["sz_scale"], a["entry_px"], a["px_scale"], a["unrealized_pnl"], a["pnl_scale"] = (
        -25, 2, 301235, 1, -12, 1)
    journal = Journal(path, sync=False)
    journal.append(recs)
    journal.close()
    p = pipeline(States(), tmp=str(tmp_path))
    p.ctx.run_dir = run_dir
    text = render(p)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80 and "…" not in text, text
    assert "account binance-spot USDT 9,500.25 lk 500 BTC 0.12345678" in flat(text), text
    assert "ETH" not in text.split()  # zero: not held
    assert "okx BTC-USDT-SWAP -0.25@30,123.5 pnl -1.2" in flat(text), text
