"""The launcher restarts what dies, stops everything, and leaves no segment behind."""

import os
import signal
import threading

import pytest

from meltica.launcher import Launcher, Program
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
