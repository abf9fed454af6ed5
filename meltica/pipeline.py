"""The whole pipeline of one run, from a configuration: what `make run` starts.

    venue (the simulator; not with live feeds)
    execution            (orders; not with live feeds unless API keys are set)
    dispatch
    ingest --venue X     (one per [ingest.X] table)
    strategy             (strategies.demo)
    + in this process: the telemetry collector, the Prometheus endpoint, the monitor

The configuration is checked, table by table, before anything starts
(`meltica.runconfig`). `Pipeline.start()` brings the programs up in that order (each
program waits for what it needs by itself, so the order only shortens start-up), `poll()`
restarts what died, `failure()` says why the run must stop (a program's configuration
error), `stop()` ends every program and removes every shared-memory segment of the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import orjson

import venues as venues_pkg
from events import MelticaError

from . import runconfig
from .collector import Collector
from core.config import section
from .launcher import Launcher, Program
from .metrics import serve
from .monitor import Monitor
from core.run import RunContext

SIM_KEY = ("meltica-sim-key", "meltica-sim-secret")


def _csv(value) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


class ProgramFailed(MelticaError):
    """A program of the run stopped for good (a configuration error): the run stops."""


class Pipeline:
    runs_simulator = True  # False: another host runs it (meltica.hosts, --hosts 2)

    def __init__(self, cfg: dict, ctx: RunContext, *, live_feeds: bool | None = None,
                 config_path: str | None = None):
        runconfig.check(cfg, config_path or "the run configuration")  # ConfigError: nothing starts
        self.cfg = cfg
        self.ctx = ctx
        self.config_path = config_path
        run = section(cfg, "run")
        self.live_feeds = run.get("live_feeds", False) if live_feeds is None else live_feeds
        tables = section(cfg, "ingest")
        chosen = _csv(run.get("venues")) or list(tables)  # [run] venues: which [ingest.*] tables run
        unknown = sorted(set(chosen) - set(tables))
        if unknown:
            raise runconfig.ConfigError(f"[run] venues: no [ingest.<venue>] table for {', '.join(unknown)}")
        self.venues = sorted(chosen)
        self.symbols = _csv(section(cfg, "strategy").get("symbols") or section(cfg, "dispatch").get("instruments"))
        # what each venue carries ([ingest.<venue>] symbols; else the run's): a perpetuals-only
        # venue (binance-usdm) carries other symbols than the spot venues
        self.carried = {v: _csv(tables[v].get("symbols")) or self.symbols for v in self.venues}
        self.merged = _csv(section(cfg, "strategy").get("merged"))
        ctx.claim()  # private umask (the programs inherit it), run directory 0700
        self.telemetry_endpoint = f"ipc://{ctx.run_dir.resolve() / 'telemetry.sock'}"
        self.collector: Collector | None = None
        self.metrics_server = None
        self.metrics_port = int(run.get("metrics_port", 0) or 0)
        self.launcher = Launcher(ctx, self.telemetry_endpoint, cwd=str(Path(__file__).resolve().parent.parent))
        self.monitor: Monitor | None = None
        self.endpoints: dict = {}
        self.started_ns = 0
        self.trading = not self.live_feeds or bool(os.environ.get("MELTICA_BINANCE_API_KEY"))

    # -- programs ------------------------------------------------------------------

    def _common(self) -> list[str]:
        return ["--config", self.config_path] if self.config_path else []

    def _venue_program(self) -> Program:
        ep_file = self.ctx.path("simulator.endpoints.json")
        if ep_file.exists():
            ep_file.unlink()
        venues = sorted(set(self.venues) | (set(self.trading_venues()) if self.trading else set()))
        v = section(self.cfg, "simulator")
        args = ["--venues", ",".join(venues), "--instruments", str(v.get("instruments", 3)),
                "--rate", str(v.get("rate", 20)), "--seed", str(v.get("seed", 1)),
                "--endpoints-file", str(ep_file)]
        return Program("simulator", "simulator", args)

    def _wait_endpoints(self, timeout_s: float = 30.0) -> dict:
        ep_file = self.ctx.path("simulator.endpoints.json")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ep_file.exists() and ep_file.stat().st_size:
                return orjson.loads(ep_file.read_bytes().splitlines()[0])["endpoints"]
            self.launcher.poll()  # records an exit (and restarts a crash, not a config error)
            reason = self.failure()
            if reason:
                raise ProgramFailed(reason)
            time.sleep(0.05)
        last = self.launcher.exits()["simulator"]
        raise ProgramFailed(f"the venue simulator did not publish its endpoints within {timeout_s}s"
                            + (f"; it exited {len(last)} times, last: {last[-1].reason()}" if last else "")
                            + f" (log: {self.log_path('simulator')})")

    def trading_venues(self) -> list[str]:
        """The venues execution trades: [run] `trade_venues`, else [execution] `venues` or
        `venue` (comma-separated); passed to execution as --venues."""
        ex = section(self.cfg, "execution")
        names = section(self.cfg, "run").get("trade_venues") or ex.get("venues") or ex.get("venue") or "binance-spot"
        return [n.strip() for n in str(names).split(",") if n.strip()]

    def _urls(self, venue: str) -> list[str]:
        if self.live_feeds:
            return []
        ep = self.endpoints[venue]
        return ["--rest-url", ep["rest"], "--ws-url", ep["ws"]]

    def programs(self) -> list[Program]:
        """Every program after the simulator, in start order."""
        tel = ["--telemetry", self.telemetry_endpoint]
        progs = []
        if self.trading:
            env, urls = {}, []
            for v in self.trading_venues():  # execution reads which from its own [execution] table
                if not self.live_feeds:
                    prefix = venues_pkg.get(v).env_prefix
                    env.update({f"{prefix}_API_KEY": SIM_KEY[0], f"{prefix}_API_SECRET": SIM_KEY[1]})
                    urls += [f"--rest-url={v}={self.endpoints[v]['rest']}", f"--ws-url={v}={self.endpoints[v]['ws']}"]
            progs.append(Program("execution", "execution", [*self._common(), "--venues=" + ",".join(self.trading_venues()),
                                                            *urls, *tel], env=env))
        progs.append(Program("dispatch", "dispatch", [*self._common(), *tel]))
        for venue in self.venues:
            progs.append(Program(f"ingest.{venue}", "ingest", [*self._common(), "--venue", venue,
                                                                *self._urls(venue), *tel]))
        strat = ["--providers", ",".join(self.venues), *self._common()]
        if not self.trading or not section(self.cfg, "run").get("orders", True):
            strat.append("--no-orders")
        elif "order_venues" not in section(self.cfg, "strategy"):  # order where we trade and see the book
            strat.append("--order-venues=" + ",".join(v for v in self.trading_venues() if v in self.venues))
        progs.append(Program("strategy.demo", "strategies.demo", strat))
        return progs

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.started_ns = time.monotonic_ns()
        self.collector = Collector(self.telemetry_endpoint).start()
        if self.metrics_port:
            try:
                self.metrics_server, _ = serve(self.collector, self.metrics_port)
            except OSError as err:
                print(f"metrics endpoint not started on port {self.metrics_port}: {err}", file=sys.stderr)
                self.metrics_port = 0
        if not self.live_feeds and self.runs_simulator:
            self.launcher.start(self._venue_program())
            self.endpoints = self._wait_endpoints()
        for program in self.programs():
            self.launcher.start(program)
        self.monitor = Monitor(self.ctx, self.symbols, self.venues, self.merged if len(self.venues) > 1 else [],
                               carried=self.carried)
        self.monitor.start()

    def poll(self) -> list[str]:
        return self.launcher.poll()

    def log_path(self, name: str):
        return self.ctx.path("logs", f"{name}.log")

    def failure(self) -> str | None:
        """Why the run must stop now (a program's configuration error), else None."""
        failed = self.launcher.failed()
        if not failed:
            return None
        return "; ".join(f"{name} stopped with a configuration error, not restarted: "
                         f"{ex.line or ex.reason()} (log: {self.log_path(name)})" for name, ex in failed)

    def unexpected_exits(self) -> list[str]:
        """One line per program that exited on its own during the run (but for those
        `failure()` names): how often, the last reason. Empty for a clean run."""
        out = []
        failed = {name for name, _ in self.launcher.failed()}  # said by failure()
        for s in self.launcher.states():
            if s["exits"] and s["name"] not in failed:
                out.append(f"{s['name']} exited {s['exits']} time{'s' if s['exits'] > 1 else ''} "
                           f"during the run; last: {s['last_exit']} (log: {self.log_path(s['name'])})")
        return out

    def uptime_s(self) -> float:
        return (time.monotonic_ns() - self.started_ns) / 1e9 if self.started_ns else 0.0

    def stop(self) -> dict:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor.join(5)
        codes = self.launcher.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        return codes

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None


def wait(seconds: float) -> None:
    threading.Event().wait(seconds)
