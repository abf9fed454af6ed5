"""`python -m meltica run` (what `make run` calls) ends with a status that tells the truth:
78 for a configuration error, found before anything starts or reported by a program
(never restarted, the run stops with its reason); 1 when a program died during the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import orjson
import pytest

from bench._chaos_harness import config_text
from core.config import EX_CONFIG
from core.run import RunContext

from ..conftest import REPO

pytestmark = [pytest.mark.multiprocess]


def meltica_run(tmp_path, reap, toml: str, *args: str):
    ctx = RunContext(f"exit{uuid.uuid4().hex[:8]}", tmp_path / "run")
    cfg = tmp_path / "meltica.toml"
    cfg.write_text(toml)
    err = tmp_path / "meltica.err"
    with open(err, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "meltica", "run", "--headless", "--config", str(cfg),
                              "--run-id", ctx.run_id, *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                             env={**os.environ, **ctx.env()}, start_new_session=True)
    reap.append(p)
    return p, ctx, cfg, err


@pytest.mark.timeout(60)
def test_a_typo_in_the_config_stops_the_run_before_anything_starts(tmp_path, reap):
    p, ctx, cfg, err = meltica_run(tmp_path, reap, "[dispatch]\nlatenes_ms = 100\n")
    assert p.wait(30) == EX_CONFIG
    out = err.read_text()
    assert f"{cfg}: [dispatch] latenes_ms: no such setting (did you mean lateness_ms?)" in out, out
    assert not ctx.run_dir.exists()  # nothing started


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_program_config_error_is_not_restarted_and_ends_the_run_with_its_reason(tmp_path, reap):
    toml = config_text(rate=20, merge_window_ms=1000, orders=False, order_interval_s=1) + \
        "\n[ingest.okx]\nring_capacity = 1000\n"   # passes the table check; ingest refuses it
    report = tmp_path / "r.json"
    p, ctx, cfg, err = meltica_run(tmp_path, reap, toml, "--duration", "60", "--report", str(report))
    assert p.wait(90) == EX_CONFIG, err.read_text()[-3000:]
    out = err.read_text()
    assert "the run stopped: ingest.okx stopped with a configuration error, not restarted: " \
           "python -m ingest: config error: ring capacity must be a power of two" in out, out
    r = orjson.loads(report.read_bytes())
    okx = r["processes"]["ingest.okx"]
    assert okx["restarts"] == 0 and okx["state"] == "config error" and len(okx["exits"]) == 1
    assert okx["exits"][0]["code"] == EX_CONFIG and "ring_capacity=1000" in okx["exits"][0]["line"]
    assert r["failure"].startswith("ingest.okx stopped with a configuration error")
    assert r["run"]["seconds"] < 50  # stopped at once, not at the end of --duration
    assert ctx.namespace.names() == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_program_that_died_during_the_run_makes_it_exit_1_and_says_why(tmp_path, reap):
    toml = config_text(rate=20, merge_window_ms=1000, orders=False, order_interval_s=1)
    report = tmp_path / "r.json"
    p, ctx, cfg, err = meltica_run(tmp_path, reap, toml, "--duration", "25", "--report", str(report))
    deadline = time.monotonic() + 60
    while "md.okx" not in ctx.namespace.names():
        assert p.poll() is None and time.monotonic() < deadline, err.read_text()[-3000:]
        time.sleep(0.1)
    os.kill(_child(p.pid, b"--venue\0okx"), signal.SIGKILL)
    assert p.wait(90) == 1, err.read_text()[-3000:]
    out = err.read_text()
    assert "meltica: restarted ingest.okx after SIGKILL" in out, out
    assert "ingest.okx exited 1 time during the run; last: SIGKILL" in out, out
    r = orjson.loads(report.read_bytes())
    assert r["processes"]["ingest.okx"]["restarts"] == 1 and r["failure"] is None
    assert r["processes"]["ingest.okx"]["exits"][0]["signal"] == "SIGKILL"


def _child(pid: int, marker: bytes) -> int:
    """The launcher's child whose command line holds `marker`."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    for kid in kids:
        with open(f"/proc/{kid}/cmdline", "rb") as f:
            if marker in f.read():
                return kid
    raise AssertionError(f"no child of {pid} runs {marker!r}")
