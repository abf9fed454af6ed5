"""The launcher restarts what dies, stops everything, and leaves no segment behind."""

import os
import signal
import threading

import pytest

from core.config import EX_CONFIG
from meltica.launcher import LINE_MAX, Launcher, Program, last_error_line
from shm import RingWriter
from tests.shm.workers import REC

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]


def wait_until(predicate, timeout_s=20.0):
    ev = threading.Event()
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return True
        ev.wait(0.02)
    return False


def test_a_killed_program_is_restarted_and_stop_leaves_no_process_and_no_segment(run_ctx):
    from tests.conftest import REPO
    launcher = Launcher(run_ctx, cwd=str(REPO))
    launcher.start(Program("writer", "tests.shm.workers",
                           ["write_forever", run_ctx.run_id, "md.test", "1024"]))
    launcher.start(Program("once", "tests.shm.workers", ["no_such_role"], restart=False))
    try:
        assert wait_until(lambda: run_ctx.namespace.names() == ["md.test"])
        first = launcher.pid("writer")
        os.kill(first, signal.SIGKILL)
        # The dead writer's segment is still there: the restarted one must replace it.
        assert wait_until(lambda: (launcher.poll(), launcher.pid("writer") not in (None, first))[1])
        assert launcher.restarts()["writer"] == 1
        assert wait_until(lambda: launcher.states()[1]["state"].startswith("exited"))
        assert launcher.restarts()["once"] == 0
    finally:
        codes = launcher.stop(timeout_s=5)
    assert codes["writer"] is not None
    assert run_ctx.namespace.names() == []
    assert (run_ctx.run_dir / "logs" / "writer.log").exists()


def test_a_config_error_is_not_restarted_and_every_exit_says_why(run_ctx):
    from tests.conftest import REPO
    launcher = Launcher(run_ctx, cwd=str(REPO))
    reason = "python -m prog: config error: [prog] latenes_ms: no such setting"
    launcher.start(Program("bad", "tests.meltica.exiter", ["exit", str(EX_CONFIG), reason]))
    launcher.start(Program("crash", "tests.meltica.exiter", ["raise", "boom 42"]))
    launcher.start(Program("sleeper", "tests.meltica.exiter", ["sleep"]))
    try:
        # the crash is restarted (0.25 s, then 0.5 s of backoff) while the config error stays down
        assert wait_until(lambda: (launcher.poll(), launcher.restarts()["crash"] >= 2)[1])
        assert [(name, ex.code, ex.line) for name, ex in launcher.failed()] == [("bad", EX_CONFIG, reason)]
        assert launcher.restarts()["bad"] == 0
        states = {s["name"]: s for s in launcher.states()}
        assert states["bad"]["state"] == "config error"
        assert states["bad"]["last_exit"] == f"config error (exit 78): {reason}"
        assert states["crash"]["last_exit"] == "exit 1: ValueError: boom 42"
        assert states["crash"]["exits"] >= 2
        os.kill(launcher.pid("sleeper"), signal.SIGKILL)
        assert wait_until(lambda: (launcher.poll(), launcher.restarts()["sleeper"] == 1)[1])
        sleeper = launcher.exits()["sleeper"]
        assert [(e.code, e.signal, e.line, e.reason()) for e in sleeper] == [(None, "SIGKILL", "", "SIGKILL")]
    finally:
        launcher.stop(timeout_s=5)


def test_the_last_error_line_is_taken_from_the_run_in_question_and_bounded(tmp_path):
    log = tmp_path / "p.log"
    log.write_bytes(b"ValueError: from an earlier run\n")
    start = log.stat().st_size
    with open(log, "ab") as f:
        f.write(b"2026-12-02 ingest INFO synced 3/3\n"
                b"2026-12-02 ingest ERROR okx refused: HTTP 400\n"
                b"dispatch: stopped: {\"control.errors\": 0}\n")
    assert last_error_line(log, start) == "2026-12-02 ingest ERROR okx refused: HTTP 400"
    assert last_error_line(log, log.stat().st_size) == ""
    log.write_bytes(b"quiet\n")
    assert last_error_line(log) == "quiet" and last_error_line(log, or_last=False) == ""
    log.write_bytes(b"RuntimeError: " + b"x" * 1000 + b"\n")
    line = last_error_line(log)
    assert line.startswith("RuntimeError: xxx") and line.endswith(f"[+{1014 - LINE_MAX} chars]")
