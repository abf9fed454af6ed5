"""Fault injection through the venue simulator over real loopback WebSockets.

Each test runs an IngestProcess (threads, real sockets, a real ring) against an
in-process Simulator that the test steps itself (rate 0), injects one fault and
checks the documented recovery, its telemetry, and that the other instrument
keeps flowing meanwhile.
"""

from __future__ import annotations

import orjson
import pytest

from events import Kind

from .helpers import flowing, new_reasons, recovered

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(60)]

SYMBOLS = {"binance-spot": ["BTCUSDT", "ETHUSDT"], "binance-usdm": ["BTCUSDT", "ETHUSDT"],
           "okx": ["BTC-USDT", "ETH-USDT"]}
RECOVERY_S = 5.0


@pytest.fixture
def sim():
    from simulator import Simulator
    s = Simulator(instruments=2, rate=0, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


def live(run_ctx, sim, venue, **kw):
    return flowing(run_ctx, sim, venue, SYMBOLS[venue], **kw)


@pytest.mark.parametrize("venue", ["binance-spot", "binance-usdm", "okx"])
def test_a_gap_resyncs_only_that_instrument_within_five_seconds(run_ctx, sim, venue):
    btc, eth = SYMBOLS[venue]
    with live(run_ctx, sim, venue) as ing:
        k0 = ing.books(btc)
        sim.inject(venue, "gap", symbol=btc)
        ing.pump(lambda: recovered(ing, ing.sym[btc], "gap"), what="BTC resynced after the gap")
        _, _, recovery_ns = recovered(ing, ing.sym[btc], "gap")[0]
        assert recovery_ns < RECOVERY_S * 1e9
        assert ing.counter("book.gap", provider=venue, symbol=ing.sym[btc]) == 1
        assert ing.counter("book.resync", provider=venue, symbol=ing.sym[btc], reason="gap") == 1
        assert ing.counter("book.resync", provider=venue, symbol=ing.sym[eth], reason="gap") == 0
        n_btc, n_eth = ing.books(btc), ing.books(eth)
        ing.pump(lambda: ing.books(btc) > n_btc + 2 and ing.books(eth) > n_eth + 2, what="books after")
        btc_flags = [f for _, f in ing.seen[(int(Kind.BOOK), ing.ids[btc])][k0:]]
        assert sum(1 for f in btc_flags if f & 2) == 1      # exactly one RESYNCED book
        assert new_reasons(ing) == {"gap": 1}


def test_a_bad_okx_checksum_fetches_a_snapshot_of_that_book_and_recovers(run_ctx, sim):
    with live(run_ctx, sim, "okx") as ing:
        sim.inject("okx", "checksum", symbol="ETH-USDT")
        ing.pump(lambda: recovered(ing, "ETH-USDT", "checksum"), what="ETH resynced")
        assert recovered(ing, "ETH-USDT", "checksum")[0][2] < RECOVERY_S * 1e9
        assert ing.counter("book.checksum_failed", provider="okx", symbol="ETH-USDT") == 1
        assert new_reasons(ing) == {"checksum": 1}
        n = ing.books("BTC-USDT")
        ing.pump(lambda: ing.books("BTC-USDT") > n + 2, what="BTC still flowing")


@pytest.mark.parametrize("venue", ["binance-spot", "okx"])
def test_a_stale_feed_is_resynced_while_the_other_instrument_keeps_flowing(run_ctx, sim, venue):
    btc, eth = SYMBOLS[venue]
    with live(run_ctx, sim, venue, stale_after_s=0.5) as ing:
        sim.inject(venue, "stall", symbol=btc, seconds=1.5, drop=True)
        n_eth = ing.books(eth)
        ing.pump(lambda: new_reasons(ing).get("stale"), what="a stale resync")
        assert ing.counter("book.resync", provider=venue, symbol="BTC-USDT", reason="stale") >= 1
        assert ing.counter("book.resync", provider=venue, symbol="ETH-USDT", reason="stale") == 0
        assert ing.books(eth) > n_eth                         # ETH flowed during BTC's stall
        ing.pump(lambda: any(r[0] == "BTC-USDT" for r in ing.proc.report.recoveries),
                 what="BTC synced again after the stall")
        assert set(new_reasons(ing)) <= {"stale", "snapshot_behind", "snapshot_timeout"}
        n = ing.books(btc)
        ing.pump(lambda: ing.books(btc) > n + 2, what="BTC books again")


@pytest.mark.parametrize("venue", ["binance-spot", "okx"])
def test_a_disconnect_reconnects_and_resyncs_every_book(run_ctx, sim, venue):
    btc, eth = SYMBOLS[venue]
    with live(run_ctx, sim, venue) as ing:
        sim.inject(venue, "disconnect", abrupt=True)
        ing.pump(lambda: ing.proc.report.reconnects >= 1 and len(ing.proc.report.recoveries) >= 2,
                 what="reconnected and both books resynced")
        assert ing.counter("ws.reconnect", provider=venue) >= 1
        assert {r[0] for r in ing.proc.report.recoveries} == {"BTC-USDT", "ETH-USDT"}
        assert all(r[2] < RECOVERY_S * 1e9 for r in ing.proc.report.recoveries)
        n_btc, n_eth = ing.books(btc), ing.books(eth)
        ing.pump(lambda: ing.books(btc) > n_btc + 2 and ing.books(eth) > n_eth + 2, what="books after")


def test_a_silent_connection_is_dropped_by_the_watchdog(run_ctx, sim):
    with live(run_ctx, sim, "okx", watchdog_s=0.8, ping_interval_s=0.2) as ing:
        sim.inject("okx", "stall", seconds=2.0, drop=True)     # holds even our pongs
        ing.pump(lambda: ing.proc.report.reconnects >= 1, what="a watchdog reconnect")
        n = ing.books("BTC-USDT")
        ing.pump(lambda: ing.books("BTC-USDT") > n + 2, timeout_s=15, what="BTC flowing again")


@pytest.mark.parametrize("venue,kind", [("binance-spot", "json"), ("binance-spot", "shape"),
                                        ("okx", "json"), ("okx", "shape")])
def test_malformed_frames_go_to_the_dead_letter_queue_and_the_feed_continues(run_ctx, sim, venue, kind):
    btc, eth = SYMBOLS[venue]
    with live(run_ctx, sim, venue) as ing:
        sim.inject(venue, "malformed", symbol=btc, kind=kind, count=2)
        ing.pump(lambda: ing.proc.report.bad_frames >= 2, what="two bad frames")
        n_btc, n_eth = ing.books(btc), ing.books(eth)
        ing.pump(lambda: ing.books(btc) > n_btc + 2 and ing.books(eth) > n_eth + 2, what="books after")
        assert new_reasons(ing) == {}
        dead = ing.proc.dlq.read_all()
        assert len(dead) == 2
        assert all(d["process"] == f"ingest.{venue}" and d["reason"] in ("not_json", "malformed", "bad_input")
                   and d.get("raw") for d in dead)
        if kind == "json":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(dead[0]["raw"])
        assert ing.counter("ingest.bad_frame", provider=venue, reason=dead[0]["reason"]) >= 1


def test_a_stale_snapshot_is_detected_and_fetched_again(run_ctx, sim):
    with live(run_ctx, sim, "binance-spot") as ing:
        sim.inject("binance-spot", "stale_snapshot", symbol="BTCUSDT", lag=50)
        sim.inject("binance-spot", "gap", symbol="BTCUSDT")
        ing.pump(lambda: recovered(ing, "BTC-USDT", "snapshot_behind"), what="resynced after a stale snapshot")
        assert new_reasons(ing).get("snapshot_behind") == 1


def test_periodic_refresh_keeps_publishing_and_finds_the_same_book(run_ctx, sim):
    with live(run_ctx, sim, "binance-spot", refresh_min_s=0.3, refresh_max_s=0.5) as ing:
        ing.pump(lambda: new_reasons(ing).get("refresh", 0) >= 2, what="two refreshes")
        ing.pump(lambda: all(s.shadow is None for s in ing.proc.adapter.syncs.values()), what="swapped")
        assert ing.proc.report.refresh_mismatches == 0 and ing.proc.report.gaps == 0
        assert all(s.synced for s in ing.proc.adapter.syncs.values())


@pytest.mark.parametrize("venue", ["binance-spot", "okx"])
def test_a_duplicated_diff_is_dropped_without_a_resync(run_ctx, sim, venue):
    btc, _ = SYMBOLS[venue]
    with live(run_ctx, sim, venue) as ing:
        stale0, gaps0 = ing.proc.report.diffs_dropped_stale, ing.proc.report.gaps
        sim.inject(venue, "duplicate", symbol=btc)
        ing.pump(lambda: ing.proc.report.diffs_dropped_stale > stale0, what="the copy dropped")
        n = ing.books(btc)
        ing.pump(lambda: ing.books(btc) > n + 2, what="books after the copy")
        assert ing.proc.report.gaps == gaps0 and new_reasons(ing) == {}


def test_reordered_diffs_are_a_gap_and_recover(run_ctx, sim):
    with live(run_ctx, sim, "binance-spot") as ing:
        sim.inject("binance-spot", "reorder", symbol="ETHUSDT")
        ing.pump(lambda: recovered(ing, "ETH-USDT", "gap"), what="resynced after the reorder")
        assert new_reasons(ing) == {"gap": 1}


def test_an_unexpected_error_in_the_adapter_is_reported_and_the_loop_keeps_running(run_ctx, sim):
    with live(run_ctx, sim, "binance-spot") as ing:
        real = ing.proc.adapter.on_frame
        state = {"raised": 0}

        def flaky(frame, ns):          # a bug for one trade frame: not bad input
            if b"@trade" in frame and not state["raised"]:
                state["raised"] = 1
                raise ZeroDivisionError("simulated bug")
            real(frame, ns)

        ing.proc.adapter.on_frame = flaky
        ing.pump(lambda: ing.proc.internal_errors == 1, what="the error reported")
        n = ing.books("BTCUSDT")
        ing.pump(lambda: ing.books("BTCUSDT") > n + 2, what="books after the error")
        assert ing.counter("ingest.internal_error", provider="binance-spot") == 1
        assert [d["reason"] for d in ing.proc.dlq.read_all()] == ["internal_error"]
