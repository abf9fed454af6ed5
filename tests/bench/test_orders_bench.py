"""`python -m bench orders --venue V --json` runs REST and WebSocket order entry in one run at a
tiny rate and prints its keys (no timing asserted); the figures of a venue without WebSocket
order entry are null with a reason, and lost reports are counted from the journal."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from bench._order_paths import Block, Plan, lost_reports, summarize
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(240)
PER_PATH = ("round_trip_rest_ms_p50", "round_trip_rest_ms_p99", "round_trip_ws_ms_p50", "round_trip_ws_ms_p99")
EXISTING = ("orders", "orders_per_s", "filled", "venue_rtt_ms_p50", "venue_rtt_ms_p99", "reply_ms_p50",
            "round_trip_ack_ms_p50", "round_trip_ack_ms_p99", "round_trip_fill_ms_p50", "round_trip_fill_ms_p99",
            "exec_to_consumer_ms_p50", "md_frames_per_s", "sim_handler_ms_p50", "exec_channel_reports_per_s",
            "ring_only_reports_per_s", "exec_channel_vs_ring_ratio", "target_met")


@pytest.mark.multiprocess
def test_binance_spot_measures_both_paths_in_one_run_and_loses_nothing():
    out = subprocess.run([sys.executable, "-m", "bench", "orders", "--venue", "binance-spot", "--json",
                          "--rate", "20", "--seconds", "1", "--blocks", "1", "--reports", "500"],
                         cwd=REPO, capture_output=True, timeout=230)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    res = orjson.loads(out.stdout)
    assert set(EXISTING + PER_PATH) <= set(res)
    assert res["venue"] == "binance-spot" and res["ws_null_reason"] is None
    assert (res["orders_rest"], res["orders_ws"]) == (20, 20)
    assert all(res[k] is not None and res[k] > 0 for k in PER_PATH)
    assert res["venue_rtt_ws_ms_p50"] > 0                    # the WS blocks' orders went over the WebSocket
    assert (res["reports_lost"], res["reports_duplicated"]) == (0, 0)
    assert (res["duplicates_at_venue"], res["venue_received_twice"]) == (0, 0)
    assert res["venue_orders_accepted"] == res["orders_sent"] == 40


def block(path: str, used: str, n: int, seqs: list[int], journal_last: int, terminal: int,
          account: tuple[int, ...] = ()) -> Block:
    """`account`: the journal's exec_seqs that are ACCOUNT records (no consumer reads them as reports)."""
    b = Block(path, used=used, orders=n, elapsed=1.0, seqs=seqs, journal_last=journal_last,
              journal_reports=set(range(1, journal_last + 1)) - set(account))
    b.ack_s = [0.001 * (i + 1) for i in range(n)]
    b.fill_s = [0.002] * terminal
    return b


def test_a_venue_without_websocket_entry_gets_null_ws_figures_and_a_reason():
    rest = [block("rest", "rest", 3, [1, 2, 3, 4, 5, 6], 6, 3)]
    ws = [block("ws", "rest", 3, [1, 2, 3, 4, 5, 6], 6, 3)]
    res = summarize("okx", Plan("BTC-USDT", "0.01"), rest, ws)
    assert res["round_trip_ws_ms_p50"] is None and res["round_trip_ws_ms_p99"] is None
    assert "offers no WebSocket order entry" in res["ws_null_reason"] and "order_entry=rest" in res["ws_null_reason"]
    assert res["round_trip_rest_ms_p50"] == 2.0 and res["reports_lost"] == 0


def test_lost_reports_are_journal_gaps_and_orders_without_a_terminal_report():
    assert lost_reports(block("rest", "rest", 3, [1, 2, 4, 5, 6], 7, 3)) == 2      # seqs 3 and 7 never read
    assert lost_reports(block("ws", "ws", 3, [1, 2, 3, 4], 4, 2)) == 1             # one order never finished
    assert lost_reports(block("rest", "rest", 3, [1, 2, 4, 5, 6], 7, 3, account=(3, 7))) == 0  # ACCOUNT records
    res = summarize("binance-spot", Plan("BTC-USDT", "0.001"), [block("rest", "rest", 1, [1, 1, 2], 2, 1)],
                    [block("ws", "ws", 1, [1, 2], 2, 1)])
    assert (res["reports_duplicated"], res["reports_lost"], res["ws_null_reason"]) == (1, 0, None)
