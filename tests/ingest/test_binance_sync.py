"""Binance depth sync of one instrument, walked through its lifecycle with a fake clock."""

from __future__ import annotations

import pytest

from events import HeaderFlag, Kind, Provider
from ingest.stream import Timers

from .helpers import S, Rig, depth_update

pytestmark = pytest.mark.timeout(30)

SNAP = {"lastUpdateId": 100, "bids": [["10.00", "1"], ["9.00", "2"]], "asks": [["11.00", "1"], ["12.00", "2"]]}


def spot(symbols=("BTCUSDT", "ETHUSDT"), **kw):
    return Rig(Provider.BINANCE_SPOT, list(symbols), **kw)


def diff(rig, sym, U, u, bids=(), asks=(), pu=None):
    rig.frame(depth_update(sym, U, u, bids, asks, pu), f"{sym.lower()}@depth@100ms")


def test_first_connect_requests_one_snapshot_per_instrument():
    rig = spot()
    rig.adapter.on_connected(True)
    assert rig.io.snapshots == ["BTCUSDT", "ETHUSDT"]
    assert rig.report.resyncs == 0


def test_buffered_diffs_straddling_the_snapshot_are_applied_and_the_book_published():
    rig = spot()
    diff(rig, "BTCUSDT", 95, 99, [["10.00", "5"]])          # u <= L: dropped
    diff(rig, "BTCUSDT", 100, 102, [["10.50", "1"]])        # U <= L+1 <= u: first
    assert not rig.sync("BTCUSDT").synced
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 103, 103, asks=[["11.00", "0"]])   # U == previous u + 1
    s = rig.sync("BTCUSDT")
    assert s.synced and s.last_u == 103
    assert rig.report.diffs_applied == 2 and rig.report.diffs_dropped_stale == 1
    books = rig.records(Kind.BOOK)
    assert [int(b["seq_provider"]) for b in books] == [102, 103]
    assert books[0]["flags"] & HeaderFlag.SNAPSHOT and not books[1]["flags"] & HeaderFlag.SNAPSHOT
    top = books[1]["book"]
    assert int(top["bid_px"][0]) == 1_050_000_000 and int(top["ask_px"][0]) == 1_200_000_000
    assert int(top["last_update_id"]) == 103


def test_no_book_is_published_before_the_chain_is_established():
    rig = spot()
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    assert not rig.sync("BTCUSDT").synced
    assert len(rig.records(Kind.BOOK)) == 0


def test_spot_gap_resyncs_only_that_instrument():
    rig = spot()
    for sym in ("BTCUSDT", "ETHUSDT"):
        rig.adapter.on_snapshot(sym, SNAP, 1)
        diff(rig, sym, 101, 101, [["10.00", "3"]])
    diff(rig, "BTCUSDT", 103, 104, [["10.00", "4"]])        # 102 is missing
    assert rig.report.gaps == 1
    assert rig.report.resync_reasons == {"gap": 1}
    assert rig.io.snapshots == ["BTCUSDT"]
    assert not rig.sync("BTCUSDT").synced and rig.sync("ETHUSDT").synced
    diff(rig, "ETHUSDT", 102, 102, [["10.00", "5"]])        # the other one keeps flowing
    before = len(rig.records(Kind.BOOK))
    diff(rig, "BTCUSDT", 105, 105)                          # buffered, not published
    assert len(rig.records(Kind.BOOK)) == before
    rig.adapter.on_snapshot("BTCUSDT", {**SNAP, "lastUpdateId": 104}, 2)
    assert rig.sync("BTCUSDT").synced and rig.sync("BTCUSDT").last_u == 105
    last = rig.records(Kind.BOOK)[-1]
    assert last["flags"] & HeaderFlag.RESYNCED and last["flags"] & HeaderFlag.SNAPSHOT


def test_duplicate_and_older_diffs_are_dropped_as_stale_not_gaps():
    rig = spot()
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 103)
    diff(rig, "BTCUSDT", 101, 103)
    diff(rig, "BTCUSDT", 98, 99)
    assert rig.report.gaps == 0 and rig.report.diffs_dropped_stale == 2
    assert rig.sync("BTCUSDT").synced


def test_an_overlapping_spot_diff_is_applied_not_a_gap_per_the_corrected_procedure():
    """2025-11-12 procedure: ignore u < the book's id; a gap only when U > id + 1."""
    rig = spot()
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 103, [["10.00", "3"]])
    diff(rig, "BTCUSDT", 102, 105, [["10.00", "4"]])        # overlaps 102..103: applies
    assert rig.report.gaps == 0 and rig.sync("BTCUSDT").synced and rig.sync("BTCUSDT").last_u == 105
    assert int(rig.records(Kind.BOOK)[-1]["book"]["bid_sz"][0]) == 4 * 10**8
    diff(rig, "BTCUSDT", 107, 108)                          # 106 missing: a gap
    assert rig.report.gaps == 1 and rig.report.resync_reasons == {"gap": 1}


def test_server_shutdown_asks_for_a_new_connection_and_is_no_bad_input():
    rig = spot()
    rig.frame({"e": "serverShutdown", "E": 1770123456789}, "!serverShutdown")
    rig.frame({"e": "serverShutdown", "E": 1770123456789})            # raw stream form
    assert rig.io.reconnects == ["serverShutdown", "serverShutdown"]
    assert rig.report.bad_frames == 0


def test_a_new_cause_restarts_the_recovery_clock_and_a_retry_keeps_it():
    rig = spot(timers=Timers(stale_ns=2 * S, refresh_ns=None, snapshot_timeout_ns=S))
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 101)
    rig.clock.advance(3)
    rig.adapter.check_timers(rig.clock())                   # stale: a resync begins
    rig.clock.advance(2)
    rig.adapter.check_timers(rig.clock())                   # no answer: a retry, same clock
    stream = rig.streams[0]
    assert stream.resync_started_ns == rig.clock() - 2 * S
    rig.clock.advance(20)
    rig.adapter.on_connected(False)                         # a reconnect: a new cause
    rig.clock.advance(0.05)
    rig.adapter.on_snapshot("BTCUSDT", {**SNAP, "lastUpdateId": 200}, 2)
    diff(rig, "BTCUSDT", 201, 201)
    symbol, reason, took = rig.report.recoveries[-1]
    assert (reason, took) == ("reconnect", int(0.05 * S))


def test_snapshot_older_than_the_stream_is_fetched_again():
    rig = spot()
    diff(rig, "BTCUSDT", 120, 125)
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)             # L=100: 101..119 are gone
    assert rig.report.resync_reasons == {"snapshot_behind": 1}
    assert rig.io.snapshots == ["BTCUSDT"]
    rig.adapter.on_snapshot("BTCUSDT", {**SNAP, "lastUpdateId": 124}, 2)
    assert rig.sync("BTCUSDT").synced and rig.sync("BTCUSDT").last_u == 125


def test_futures_chain_by_pu_and_apply_the_diff_ending_at_the_snapshot():
    rig = Rig(Provider.BINANCE_USDM, ["BTCUSDT"])
    diff(rig, "BTCUSDT", 90, 100, [["10.00", "7"]], pu=80)  # u == L: applied (futures rule)
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 130, 140, pu=100)                  # U jumps; pu chains
    s = rig.sync("BTCUSDT")
    assert s.synced and s.last_u == 140 and rig.report.gaps == 0
    diff(rig, "BTCUSDT", 150, 160, pu=141)
    assert rig.report.gaps == 1 and not s.synced


def test_crossed_book_resyncs():
    rig = spot()
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 101, [["11.50", "1"]])
    assert rig.report.resync_reasons == {"crossed": 1}
    assert not rig.sync("BTCUSDT").synced
    assert len(rig.records(Kind.BOOK)) == 0


def test_a_diff_with_a_bad_level_goes_to_the_dlq_and_resyncs():
    rig = spot()
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 101, [["10.00", "1"], ["x", "1"]])
    assert rig.report.bad_frames == 1
    assert rig.report.resync_reasons == {"bad_input": 1}


def test_staleness_and_snapshot_timeout_follow_the_clock():
    timers = Timers(stale_ns=5 * S, refresh_ns=None, snapshot_timeout_ns=3 * S)
    rig = spot(timers=timers)
    rig.adapter.on_connected(True)
    for sym in ("BTCUSDT", "ETHUSDT"):
        rig.adapter.on_snapshot(sym, SNAP, 1)
        diff(rig, sym, 101, 101)
    rig.io.snapshots.clear()
    rig.clock.advance(4)
    diff(rig, "ETHUSDT", 102, 102)
    rig.adapter.check_timers(rig.clock.advance(2))          # BTC silent for 6 s
    assert rig.report.resync_reasons == {"stale": 1}
    assert rig.io.snapshots == ["BTCUSDT"]
    rig.clock.advance(2)
    diff(rig, "ETHUSDT", 103, 103)
    rig.adapter.check_timers(rig.clock.advance(2))          # no answer within 3 s
    assert rig.report.resync_reasons == {"stale": 1, "snapshot_timeout": 1}
    assert rig.io.snapshots == ["BTCUSDT", "BTCUSDT"]


def test_periodic_refresh_swaps_in_a_shadow_book_without_a_blackout():
    timers = Timers(stale_ns=0, refresh_ns=(120 * S, 300 * S), snapshot_timeout_ns=10 * S)
    rig = spot(["BTCUSDT"], timers=timers)
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 101, [["10.00", "3"]])
    due = rig.sync("BTCUSDT").stream.refresh_due_ns - rig.clock.now
    assert 120 * S <= due <= 300 * S
    rig.adapter.check_timers(rig.clock.advance(301))
    assert rig.io.snapshots == ["BTCUSDT"] and rig.report.resync_reasons == {"refresh": 1}
    diff(rig, "BTCUSDT", 102, 102, [["9.00", "4"]])         # still published meanwhile
    rig.adapter.on_snapshot("BTCUSDT", {"lastUpdateId": 102, "bids": [["10.00", "3"], ["9.00", "4"]],
                                        "asks": [["11.00", "1"], ["12.00", "2"]]}, 2)
    diff(rig, "BTCUSDT", 103, 103, [["9.50", "1"]])
    s = rig.sync("BTCUSDT")
    assert s.synced and s.shadow is None and rig.report.refresh_mismatches == 0
    assert [int(b["seq_provider"]) for b in rig.records(Kind.BOOK)] == [101, 102, 103]


def test_refresh_that_finds_a_different_book_reports_a_mismatch():
    timers = Timers(stale_ns=0, refresh_ns=(1 * S, 1 * S), snapshot_timeout_ns=10 * S)
    rig = spot(["BTCUSDT"], timers=timers)
    rig.adapter.on_snapshot("BTCUSDT", SNAP, 1)
    diff(rig, "BTCUSDT", 101, 101)
    rig.adapter.check_timers(rig.clock.advance(2))
    rig.adapter.on_snapshot("BTCUSDT", {"lastUpdateId": 101, "bids": [["10.00", "9"]],
                                        "asks": [["11.00", "1"]]}, 2)
    diff(rig, "BTCUSDT", 102, 102)
    assert rig.report.refresh_mismatches == 1
    assert rig.sync("BTCUSDT").book.best()[1] == 900_000_000


def test_reconnect_resyncs_every_book():
    rig = spot()
    rig.adapter.on_connected(True)
    rig.adapter.on_connected(False)
    assert rig.report.resync_reasons == {"reconnect": 2}
    assert rig.io.snapshots == ["BTCUSDT", "ETHUSDT", "BTCUSDT", "ETHUSDT"]


def test_unknown_symbols_go_to_the_dlq_and_carried_ones_keep_flowing():
    rig = spot()
    rig.frame({"u": 5, "s": "DOGEUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, "dogeusdt@bookTicker")
    rig.frame({"u": 6, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, "btcusdt@bookTicker")
    assert rig.report.bad_frames == 1
    assert len(rig.records(Kind.TICKER)) == 1


def test_trades_and_tickers_become_records():
    rig = spot()
    rig.frame({"e": "trade", "E": 1723161255612, "s": "ETHUSDT", "t": 1520538925, "p": "2683.80000000",
               "q": "0.00200000", "T": 1723161255611, "m": True, "M": True}, "ethusdt@trade")
    rig.frame({"u": 35346513501, "s": "ETHUSDT", "b": "2683.80000000", "B": "3.02920000",
               "a": "2683.81000000", "A": "31.43950000"}, "ethusdt@bookTicker")
    t = rig.records(Kind.TRADE)[0]
    assert int(t["seq_provider"]) == 1520538925 and int(t["trade"]["side"]) == 2
    assert int(t["trade"]["px"]) == 268380000000 and int(t["event_ts_ns"]) == 1723161255612_000000
    k = rig.records(Kind.TICKER)[0]
    assert int(k["ticker"]["update_id"]) == 35346513501 and int(k["event_ts_ns"]) == 0
    assert int(k["ticker"]["ask_sz"]) == 3143950000


def test_failing_snapshot_requests_are_retried_with_a_growing_delay():
    timers = Timers(stale_ns=0, refresh_ns=None, snapshot_timeout_ns=10 * S)
    rig = spot(["BTCUSDT"], timers=timers)
    rig.adapter.on_connected(True)
    for _ in range(3):
        rig.adapter.on_snapshot_error("BTCUSDT", "HTTP 503")
    assert rig.report.resync_reasons == {"snapshot_failed": 3}
    assert rig.io.snapshots == ["BTCUSDT"] * 3            # the first two at once
    assert "BTCUSDT" in rig.adapter.snapshots.deferred               # the third waits
    rig.adapter.check_timers(rig.clock.advance(0.1))
    assert rig.io.snapshots == ["BTCUSDT"] * 3
    rig.adapter.check_timers(rig.clock.advance(0.2))       # 0.25 s after the third failure
    assert rig.io.snapshots == ["BTCUSDT"] * 4
    rig.adapter.on_snapshot("BTCUSDT", b"not json", 1)    # a bad body: dead-lettered, retried
    assert rig.report.bad_frames == 1 and rig.report.resync_reasons["snapshot_failed"] == 4
