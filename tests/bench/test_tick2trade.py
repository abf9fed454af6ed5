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
    floor, step = rate["floor"], rate["process"]
    assert {"floor_p50_us", "floor_p99_us", "floor_p999_us"} <= set(floor) and floor["orders"] > 0
    assert {"tick_to_trade_p50_us", "tick_to_trade_p99_us", "tick_to_trade_p999_us", "floor_p50_us",
            "floor_p99_us", "ratio_p50"} <= set(step)
    assert step["joined"] > 0 and step["tick_to_trade_p50_us"] is not None  # orders left and were joined
    assert set(step["hops"]) == {"ingest_md_ring", "dispatch_consumer_ring", "strategy", "order_channel",
                                 "exec_checks_persist", "venue_send"}
    assert "leaked_segments" not in step
