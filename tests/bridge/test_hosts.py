"""`python -m meltica run --hosts 2`: venues and ingest on one "host", dispatch, execution and
the strategy on another, nothing shared but a NATS server from the wheel. Market data
crosses the bridge into dispatch and the strategy's orders fill; at the end every
program exited 0, and no segment of either run and no nats-server is left."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import orjson
import pytest

from bench._chaos_harness import config_text
from core.run import RunContext
from shm import Namespace
from tests.conftest import REPO

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(120)]


def test_two_hosts_joined_by_nats(tmp_path):
    ctx = RunContext(f"h2{uuid.uuid4().hex[:8]}", tmp_path / "run")
    cfg = tmp_path / "meltica.toml"
    cfg.write_text(config_text(rate=50, merge_window_ms=1000, orders=True, order_interval_s=0.5))
    report = tmp_path / "report.json"
    try:
        p = subprocess.run([sys.executable, "-m", "meltica", "run", "--hosts", "2", "--headless", "--duration", "15",
                            "--config", str(cfg), "--run-id", ctx.run_id, "--report", str(report)],
                           cwd=REPO, env={**os.environ, **ctx.env()}, capture_output=True, timeout=100)
        assert p.returncode == 0, p.stderr.decode()[-3000:]
        r = orjson.loads(report.read_bytes())
        assert r["failure"] is None and set(r["exit_codes"].values()) == {0}, r["exit_codes"]
        assert {"bridge.md-in", "venues/bridge.md-out", "venues/simulator"} <= set(r["exit_codes"])
        assert sum(n for kinds in r["delivered"].values() for n in kinds.values()) > 0, "no market data crossed"
        assert r["orders"]["accepted"] > 0 and r["orders"]["strategy_reports_received"] > 0, r["orders"]
        venues = (tmp_path / "run").parent / f"{ctx.run_id}-venues"
        assert (venues / "logs" / "bridge.md-out.log").exists()
        assert not (tmp_path / "run" / "nats" / "store" / "js-n0").exists()
    finally:
        left = ctx.namespace.names() + Namespace(f"{ctx.run_id}-venues").names()
        ctx.namespace.cleanup()
        Namespace(f"{ctx.run_id}-venues").cleanup()
    assert not left, left
