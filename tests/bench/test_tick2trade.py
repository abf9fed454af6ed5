"""`python -m bench tick2trade` runs end to end at a tiny rate and prints its keys (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(240)


def test_tick2trade_quick_runs_the_floor_and_the_pipeline_and_prints_every_key(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "tick2trade", "--quick", "--json"], cwd=REPO,
                         capture_output=True, timeout=230)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    res = orjson.loads(out.stdout)
    assert {"loadavg_before", "loadavg_after", "targets"} <= set(res)
    (rate,) = res["rates"].values()
    floor = rate["floor"]
    assert {"floor_p50_us", "floor_p99_us", "floor_p999_us"} <= set(floor) and floor["orders"] > 0
    assert set(rate) == {"floor", "process", "process_ws"}     # REST keeps its keys; the WebSocket beside it
    for key, path in (("process", "rest"), ("process_ws", "ws")):
        step = rate[key]
        assert {"tick_to_trade_p50_us", "tick_to_trade_p99_us", "tick_to_trade_p999_us", "floor_p50_us",
                "floor_p99_us", "ratio_p50", "venue_reply_p50_us"} <= set(step)
        assert step["joined"] > 0 and step["tick_to_trade_p50_us"] is not None  # orders left and were joined
        assert step["order_entry"] == path and set(step["sent_by_path"]) == {path}
        assert set(step["hops"]) == {"ingest_md_ring", "dispatch_consumer_ring", "strategy", "order_channel",
                                     "exec_checks_persist", "venue_send"}
        assert "leaked_segments" not in step
    assert {"p50_under_300us_at_10k_process", "p50_under_300us_at_10k_process_ws"} <= set(res["targets"])
