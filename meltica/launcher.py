"""Start, watch, restart and stop the processes of one run (what `make run` uses).

Each program runs in its own session (so a terminal's Ctrl-C reaches only us and we stop
the programs in order), with its output in `<run_dir>/logs/<name>.log`, the run's
environment (MELTICA_RUN, MELTICA_RUN_DIR, MELTICA_TELEMETRY), and PR_SET_PDEATHSIG so
that it is killed if this launcher dies without stopping it. A program that exits while
the run goes on is restarted with capped exponential backoff, and every restart is
counted. `stop()` ends the programs one at a time in reverse start order (SIGTERM, a
bounded wait, SIGKILL if need be) and removes every shared-memory segment of the run.

Every exit is recorded with why (`Exit`: the exit status or the signal, and the last
error line the program wrote to its log in that run), for the live view and the report.
A program that exits with EX_CONFIG (78, a configuration error) is not restarted: what a
restart cannot fix stops the run (`failed()`), with that program's reason.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from shm.cleanup import sweep_stale

from core.config import EX_CONFIG
from core.run import RunContext

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


@dataclass(frozen=True)
class Exit:
    """One exit of a program while the run went on: why, and what it said last."""

    at_s: float             # seconds since the launcher started
    ran_s: float            # how long that run of the program lasted
    code: int | None        # exit status; None when a signal ended it
    signal: str | None      # "SIGKILL", ...
    line: str               # the last error line of its log in that run ("" if none)

    @property
    def config_error(self) -> bool:
        return self.code == EX_CONFIG

    def reason(self) -> str:
        """"exit 1: ValueError: ...", "SIGKILL", "config error (exit 78): ..."."""
        head = (f"config error (exit {self.code})" if self.config_error else
                self.signal if self.signal else f"exit {self.code}")
        return f"{head}: {self.line}" if self.line else head

    def as_dict(self) -> dict:
        return {"at_s": self.at_s, "ran_s": self.ran_s, "code": self.code, "signal": self.signal,
                "line": self.line, "reason": self.reason()}


_ERROR_LINE = re.compile(r"\b\w*(Error|Exception|Interrupt)\b|\b(ERROR|CRITICAL|FATAL)\b|error:|Traceback")
LINE_MAX = 300   # characters of a log line kept in an Exit
_TAIL_BYTES = 16384


def last_error_line(path, start: int = 0, *, or_last: bool = True) -> str:
    """The last line of the log at `path` (from byte `start`, the start of the run in
    question) that reads as an error, else (`or_last`) its last line, else "". Lines
    longer than LINE_MAX are cut, saying how much was left out."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(start, size - _TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = next((ln for ln in reversed(lines) if _ERROR_LINE.search(ln)), lines[-1] if or_last else "")
    return line if len(line) <= LINE_MAX else f"{line[:LINE_MAX]} [+{len(line) - LINE_MAX} chars]"


@dataclass
class _Running:
    program: Program
    proc: subprocess.Popen | None = None
    started_ns: int = 0
    restarts: int = 0
    exited_ns: int = 0
    backoff_ns: int = 0
    log: object = None
    log_start: int = 0                 # where this run of the program begins in its log
    exits: list[Exit] = field(default_factory=list)   # the last KEEP_EXITS
    n_exits: int = 0

    @property
    def last_exit(self) -> Exit | None:
        return self.exits[-1] if self.exits else None


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
        self.t0_ns = time.monotonic_ns()
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
        r.log_start = os.fstat(r.log.fileno()).st_size
        r.proc = subprocess.Popen(r.program.argv(), stdin=subprocess.DEVNULL, stdout=r.log,
                                  stderr=subprocess.STDOUT, env=self._env(r.program), cwd=self.cwd,
                                  start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        r.started_ns = time.monotonic_ns()

    def poll(self) -> list[str]:
        """Record exits, restart programs that exited (after their backoff); return the
        names restarted now. A configuration error (EX_CONFIG) is never restarted.

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
                r.exited_ns = now
                ran_ns = now - r.started_ns
                self._record_exit(r, code, now, ran_ns)
                r.backoff_ns = int(0.25e9) if ran_ns > 30e9 else \
                    min(self.max_backoff_ns, int(0.25e9 * 2 ** min(r.restarts, 8)))
            if r.last_exit.config_error:
                continue
            if r.program.restart and now - r.exited_ns >= r.backoff_ns:
                r.restarts += 1
                r.exited_ns = 0
                self._spawn(r)
                restarted.append(name)
        return restarted

    KEEP_EXITS = 10

    def _record_exit(self, r: _Running, code: int, now_ns: int, ran_ns: int) -> None:
        sig = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else None
        log_path = self.ctx.path("logs", f"{r.program.name}.log")
        if r.log is not None:
            r.log.flush()
        r.exits.append(Exit(at_s=round((now_ns - self.t0_ns) / 1e9, 1), ran_s=round(ran_ns / 1e9, 1),
                            code=None if sig else code, signal=sig,
                            line=last_error_line(log_path, r.log_start, or_last=sig is None)))
        del r.exits[:-self.KEEP_EXITS]
        r.n_exits += 1

    def failed(self) -> list[tuple[str, Exit]]:
        """Programs stopped for good by a configuration error (call `poll()` first)."""
        return [(name, r.last_exit) for name in self._order
                if (r := self._running[name]).last_exit is not None and r.exited_ns
                and r.last_exit.config_error]

    def exits(self) -> dict[str, list[Exit]]:
        """Each program's last exits during the run (not counting `stop()`), oldest first."""
        return {name: list(self._running[name].exits) for name in self._order}

    def states(self) -> list[dict]:
        """Name, pid, state ("running", "restarting", "config error", "exited N"), uptime,
        restarts, exits (how many times it exited during the run) and the last exit's
        reason ("SIGKILL", "exit 1: ValueError: ...", None)."""
        out = []
        now = time.monotonic_ns()
        for name in self._order:
            r = self._running[name]
            code = r.proc.poll() if r.proc else None
            last = r.last_exit
            if r.proc is None:
                state = "not started"
            elif code is None:
                state = "running"
            elif self.stopping:
                state = f"exited {code}"
            elif r.exited_ns and last is not None and last.config_error:
                state = "config error"
            elif r.program.restart:
                state = "restarting"
            else:
                state = f"exited {code}"
            out.append({"name": name, "pid": r.proc.pid if r.proc else None, "state": state,
                        "uptime_s": round((now - r.started_ns) / 1e9, 1) if code is None and r.proc else 0,
                        "restarts": r.restarts, "exits": r.n_exits,
                        "last_exit": last.reason() if last else None})
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
