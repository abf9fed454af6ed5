"""`python -m meltica run` as an operator uses it: Ctrl-C ends the run with a report and no
shared-memory segment left; a launcher killed outright takes its programs with it
(PR_SET_PDEATHSIG), and they remove their own segments on the way out.

A killed launcher sends each program several SIGTERMs (see test_signals.py): a program
whose handler is not re-entrant may then hang, which the second test reports with the
program's Python stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from bench._chaos_harness import config_text
from channels.journal import JournalReader
from core.run import RunContext

from ..conftest import REPO

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(120)]
LIVE = {"md.binance-spot", "md.okx", "exec", "consumer.demo.md", "consumer.monitor.md"}


def start_run(tmp_path: Path, reap: list, *extra: str) -> tuple[subprocess.Popen, RunContext, Path]:
    ctx = RunContext(f"e2erun{uuid.uuid4().hex[:8]}", tmp_path / "run")
    cfg = tmp_path / "meltica.toml"
    cfg.write_text(config_text(rate=50, merge_window_ms=1000, orders=True, order_interval_s=0.5))
    err = tmp_path / "meltica.err"
    with open(err, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "meltica", "run", "--headless", "--config", str(cfg),
                              "--run-id", ctx.run_id, *extra], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                             env={**os.environ, **ctx.env(), "PYTHONFAULTHANDLER": "1"},  # stacks on SIGABRT
                             start_new_session=True)
    reap.append(p)
    return p, ctx, err


def wait_until(cond, timeout_s: float, what: str, proc: subprocess.Popen, err: Path):
    deadline = time.monotonic() + timeout_s
    while not (value := cond()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen (meltica run exit {proc.poll()}); "
                                 f"its output: {err.read_text()[-3000:]}")
        time.sleep(0.05)
    return value


def journaled(ctx: RunContext) -> int:
    try:
        j = JournalReader(ctx.path("exec", "exec.journal"))
    except (FileNotFoundError, OSError):
        return 0
    try:
        return j.last_seq()
    finally:
        j.close()


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def describe(pid: int, logs: Path) -> str:
    """A program still alive: its state, where it waits, its command, its Python stack
    (SIGABRT with PYTHONFAULTHANDLER on: the dump lands at the end of its log)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except FileNotFoundError:
        return f"{pid}: gone"
    os.kill(pid, signal.SIGABRT)
    deadline = time.monotonic() + 5
    while not ended(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    module = cmd.split(" -m ", 1)[-1].split()[0] if " -m " in cmd else "?"
    tail = next((f.read_text(errors="replace")[-2500:] for f in logs.glob("*.log") if f.name.startswith(module)), "")
    return f"{pid} state {state} wchan {wchan}: {cmd[:160]}\n{tail}"


def test_ctrl_c_ends_the_run_with_a_report_and_no_segment_left(tmp_path, reap):
    report = tmp_path / "report.json"
    p, ctx, err = start_run(tmp_path, reap, "--report", str(report))
    wait_until(lambda: LIVE <= set(ctx.namespace.names()) and journaled(ctx) >= 2, 60,
               "the run's rings and the demo strategy's first exec reports", p, err)
    wait_until(lambda: b" delivered=" in err.read_bytes() and b" delivered=0 " not in err.read_bytes(), 60,
               "a status line with records delivered to the monitor", p, err)
    p.send_signal(signal.SIGINT)
    assert p.wait(60) == 0, err.read_text()[-3000:]  # 0: no segment was left
    assert ctx.namespace.names() == []
    r = orjson.loads(report.read_bytes())
    assert set(r["exit_codes"].values()) == {0}, r["exit_codes"]
    assert all(s["restarts"] == 0 and s["state"] == "running" for s in r["processes"].values()), r["processes"]
    for venue in ("binance-spot", "okx"):
        assert r["delivered"][venue].get("book", 0) > 0, r["delivered"]
        assert r["market_data"][venue]["messages"] > 0
    assert r["latency_ingest_to_consumer"]["all"]["samples"] > 0
    assert r["orders"]["accepted"] > 0 and sum(r["orders"]["exec_reports"].values()) >= 2, r["orders"]
    assert r["orders"]["exec_reports_by_venue"] == {"binance-spot": sum(r["orders"]["exec_reports"].values())}
    assert r["monitor_error"] is None and r["monitor_recoveries"] == 0


def test_a_killed_launcher_takes_every_program_with_it_and_they_remove_their_segments(tmp_path, reap):
    p, ctx, err = start_run(tmp_path, reap)
    wait_until(lambda: LIVE <= set(ctx.namespace.names()), 60, "the run's rings", p, err)
    programs = wait_until(lambda: len(children(p.pid)) >= 6 and children(p.pid), 30,
                          "six programs: venue, execution, dispatch, two ingest, the demo", p, err)
    try:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        deadline = time.monotonic() + 60
        while not all(ended(c) for c in programs) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [describe(c, ctx.run_dir / "logs") for c in programs if not ended(c)]
        assert left == [], "programs outlived their launcher:\n" + "\n".join(left)
        # each program removed its own segments on SIGTERM (nobody swept them)
        assert ctx.namespace.names() == []
    finally:
        for c in programs:
            if not ended(c):
                os.kill(c, signal.SIGKILL)
        ctx.namespace.cleanup()
