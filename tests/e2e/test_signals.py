"""Programs end cleanly on SIGTERM however many come.

Several SIGTERMs in a row are ordinary: PR_SET_PDEATHSIG fires again each time a dying
multi-threaded launcher hands its children on to its next exiting thread (measured: 2
SIGTERMs from a launcher with 6 threads killed by SIGKILL), an operator presses Ctrl-C
twice, a supervisor repeats its stop. A handler that calls `threading.Event.set()` takes
the Event's lock; a second SIGTERM that lands while the first handler holds it runs the
handler again on the same thread, which then waits for itself forever (seen in the
chaos runs: `Fatal Python error` dumps with `set -> __enter__` nested under the handler).

The test makes that landing deterministic without touching the program: it runs the real
`python -m <program>` through a shim that (1) marks the time spent inside a Python signal
handler and (2) gives every `threading.Event` a lock that, when taken inside a handler,
raises one more SIGTERM first. A handler that takes no lock (`core.signals.StopFlag`)
never triggers it, so the test passes for any correct fix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import REPO

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(60)]

SHIM = r"""
import os, runpy, signal, sys, threading

_depth = [0]       # nesting of Python signal handlers on the main thread
_fired = [False]   # the one extra SIGTERM


class _LockRaisingSigterm:
    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()
        if _depth[0] == 1 and not _fired[0]:
            _fired[0] = True
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs at the next bytecode
        return True

    def __exit__(self, *exc):
        self.lock.release()

    def acquire(self, *a, **k):
        return self.lock.acquire(*a, **k)

    def release(self):
        self.lock.release()


class Event(threading.Event):
    def __init__(self):
        super().__init__()
        self._cond._lock = _LockRaisingSigterm(self._cond._lock)


threading.Event = Event
_install = signal.signal


def _counting(sig, handler):
    if callable(handler):
        inner = handler

        def handler(signum, frame):
            _depth[0] += 1
            try:
                return inner(signum, frame)
            finally:
                _depth[0] -= 1
    return _install(sig, handler)


signal.signal = _counting
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def start(module: str, args: list[str], run_ctx, log) -> subprocess.Popen:
    env = {**os.environ, **run_ctx.env(), "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen([sys.executable, "-c", SHIM, module, *args], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_line(path, text: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not seen (exit {proc.poll()}): {path.read_text()[-2000:]}")
        time.sleep(0.02)


@pytest.mark.parametrize("program", [
    "dispatch",
    "ingest",
    "simulator",
])
def test_a_second_sigterm_inside_the_first_ones_handler_still_ends_the_program(program, run_ctx, reap, tmp_path):
    from simulator import Simulator

    logf = tmp_path / f"{program}.log"
    with open(logf, "wb") as log, Simulator(venues=("okx",), instruments=1, rate=0) as sim:
        if program == "dispatch":  # prints its first line after installing its handlers
            p = start("dispatch", ["--telemetry", ""], run_ctx, log)
            ready = "dispatch: run="
        elif program == "ingest":  # installs them first, logs "writing ring" once started
            ep = sim.endpoints["okx"]
            p = start("ingest", ["--venue", "okx", "--symbols", "BTC-USDT", "--rest-url", ep["rest"],
                                 "--ws-url", ep["ws"], "--telemetry", ""], run_ctx, log)
            ready = "writing ring"
        else:  # prints its endpoints after installing them
            p = start("simulator", ["--venues", "okx", "--instruments", "1", "--rate", "0"], run_ctx, log)
            ready = '"endpoints"'
        reap.append(p)
        wait_for_line(logf, ready, p)
        os.kill(p.pid, signal.SIGTERM)
        try:
            code = p.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: its stack goes to the log
            p.wait(10)
            text = logf.read_text(errors="replace")
            raise AssertionError(f"{program} hung after the second SIGTERM:\n"
                                 f"{text[text.rfind('Fatal Python error'):][:2500]}") from None
    assert code == 0, logf.read_text()[-2000:]
