"""Start, watch, restart and stop the processes of one run (what `make run` uses).

Each program runs in its own session (so a terminal's Ctrl-C reaches only us and we stop
the programs in order), with its output in `<run_dir>/logs/<name>.log`, the run's
environment (MELTICA_RUN, MELTICA_RUN_DIR, MELTICA_TELEMETRY), and PR_SET_PDEATHSIG so
that it is killed if this launcher dies without stopping it. A program that exits while
the run goes on is restarted with capped exponential backoff, and every restart is
counted. `stop()` ends the programs one at a time in reverse start order (SIGTERM, a
bounded wait, SIGKILL if need be) and removes every shared-memory segment of the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from shm.cleanup import sweep_stale

from .run import RunContext

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int):
    """The child's preexec: SIGTERM when the launcher dies. Runs between fork and exec."""
    def preexec() -> None:
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent_pid:  # the launcher died before prctl: no signal would ever come
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


@dataclass
class Program:
    """One program of a run: `python -m <module> <args>`."""

    name: str
    module: str
    args: list[str] = field(default_factory=list)
    restart: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args]


@dataclass
class _Running:
    program: Program
    proc: subprocess.Popen | None = None
    started_ns: int = 0
    restarts: int = 0
    exited_ns: int = 0
    backoff_ns: int = 0
    last_exit: int | None = None
    log: object = None


class Launcher:
    """Runs a list of programs for one run. Call `poll()` regularly, `stop()` at the end."""

    def __init__(self, ctx: RunContext, telemetry_endpoint: str | None = None, *,
                 max_backoff_s: float = 10.0, cwd: str | None = None):
        self.ctx = ctx
        self.telemetry_endpoint = telemetry_endpoint
        self.max_backoff_ns = int(max_backoff_s * 1e9)
        self.cwd = cwd
        self._running: dict[str, _Running] = {}
        self._order: list[str] = []
        self.stopping = False
        self.left_by_programs: list[str] | None = None  # segments the programs left (set by stop)

    def _env(self, program: Program) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.ctx.env())
        if self.telemetry_endpoint:
            env["MELTICA_TELEMETRY"] = self.telemetry_endpoint
        env.update(program.env)
        return env

    def start(self, program: Program) -> None:
        """Start `program` now (and remember it for restarts)."""
        if program.name not in self._running:
            self._running[program.name] = _Running(program)
            self._order.append(program.name)
        self._spawn(self._running[program.name])

    def _spawn(self, r: _Running) -> None:
        log_path = self.ctx.path("logs", f"{r.program.name}.log")
        if r.log is None:
            r.log = open(log_path, "ab")
        r.proc = subprocess.Popen(r.program.argv(), stdin=subprocess.DEVNULL, stdout=r.log,
                                  stderr=subprocess.STDOUT, env=self._env(r.program), cwd=self.cwd,
                                  start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        r.started_ns = time.monotonic_ns()

    def poll(self) -> list[str]:
        """Restart programs that exited (after their backoff); return names restarted now.

        Backoff doubles from 0.25 s per consecutive restart, capped; a program that had
        run for 30 s before it died starts again after 0.25 s.
        """
        restarted = []
        now = time.monotonic_ns()
        for name in self._order:
            r = self._running[name]
            if r.proc is None or self.stopping:
                continue
            code = r.proc.poll()
            if code is None:
                continue
            if r.exited_ns == 0:  # first time we see this exit
                r.exited_ns, r.last_exit = now, code
                ran_ns = now - r.started_ns
                r.backoff_ns = int(0.25e9) if ran_ns > 30e9 else \
                    min(self.max_backoff_ns, int(0.25e9 * 2 ** min(r.restarts, 8)))
            if r.program.restart and now - r.exited_ns >= r.backoff_ns:
                r.restarts += 1
                r.exited_ns = 0
                self._spawn(r)
                restarted.append(name)
        return restarted

    def states(self) -> list[dict]:
        """Name, pid, state ("running", "exited N", "restarting"), uptime, restarts."""
        out = []
        now = time.monotonic_ns()
        for name in self._order:
            r = self._running[name]
            code = r.proc.poll() if r.proc else None
            if r.proc is None:
                state = "not started"
            elif code is None:
                state = "running"
            elif r.program.restart and not self.stopping:
                state = f"restarting (exit {code})"
            else:
                state = f"exited {code}"
            out.append({"name": name, "pid": r.proc.pid if r.proc else None, "state": state,
                        "uptime_s": round((now - r.started_ns) / 1e9, 1) if code is None and r.proc else 0,
                        "restarts": r.restarts})
        return out

    def pid(self, name: str) -> int | None:
        r = self._running.get(name)
        return r.proc.pid if r and r.proc and r.proc.poll() is None else None

    def restarts(self) -> dict[str, int]:
        return {name: self._running[name].restarts for name in self._order}

    def stop(self, timeout_s: float = 10.0) -> dict[str, int | None]:
        """Stop every program, one at a time in reverse start order, then remove the
        run's segments.

        Each program gets SIGTERM and its share of `timeout_s` to exit (then SIGKILL)
        before the next one is asked: strategies leave while dispatch still answers their
        unregister, ingest closes its ring while dispatch reads it, execution outlives
        every order client, the venue goes last. `left_by_programs` then names the
        segments that outlived their programs (a clean stop leaves none; the sweep
        removes them anyway).
        """
        self.stopping = True
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int | None] = {}
        names = [n for n in reversed(self._order) if self._running[n].proc is not None]
        for left, name in zip(range(len(names), 0, -1), names):
            r = self._running[name]
            if r.proc.poll() is None:
                try:
                    os.killpg(r.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                codes[name] = r.proc.wait(max(0.5, (deadline - time.monotonic()) / left))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(r.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                codes[name] = r.proc.wait(5)
            if r.log is not None:
                r.log.close()
                r.log = None
        self.left_by_programs = self.ctx.namespace.names()  # each program should have removed its own
        self.ctx.namespace.cleanup()
        sweep_stale()
        return codes
