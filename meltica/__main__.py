"""`python -m meltica run`: the whole pipeline on the local venue simulator (or live feeds).

    python -m meltica run [--duration S] [--headless] [--report FILE] [--config FILE]
                          [--live-feeds] [--run-id ID] [--metrics-port N]

This is what `make run ARGS="..."` calls. Ctrl-C (or the end of --duration) stops every
program and removes every shared-memory segment of the run, also after crashes.

Exit status: 0 for a clean run; 78 (EX_CONFIG) for a configuration error, found before
anything starts or reported by a program (the run stops at once, with the reason);
1 when a program exited on its own during the run (each is listed with its last
reason) or shared-memory segments were left behind; 2 when the run directory is not
this user's alone (core.run.RunDirError).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson

from shm.cleanup import sweep_stale

from core import config

from . import report, runconfig
from .pipeline import Pipeline, ProgramFailed
from core.run import RunContext, RunDirError
from core.signals import StopFlag, stop_on_signals


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m meltica", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole pipeline")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.add_argument("--headless", action="store_true", help="no terminal view; a status line every 5 s")
    run.add_argument("--report", help="write the run report (JSON) to this file at the end")
    run.add_argument("--config", help="TOML configuration merged over core/defaults.toml")
    run.add_argument("--live-feeds", action="store_true",
                     help="the real Binance / OKX public feeds instead of the simulator (needs internet)")
    run.add_argument("--hosts", type=int, choices=(1, 2), default=1,
                     help="2: venues and ingest on one host, the rest on another, joined by NATS (meltica.hosts)")
    run.add_argument("--run-id", help="run id (default run-<time>): shared-memory namespace and run/<id>/")
    run.add_argument("--metrics-port", type=int, default=None,
                     help="Prometheus endpoint port (default from config; 0: off)")
    col = sub.add_parser("collect", help="the run's telemetry collector and /metrics only "
                                         "(for supervisord; the run comes from MELTICA_RUN / MELTICA_RUN_DIR)")
    col.add_argument("--metrics-port", type=int, default=9464, help="Prometheus endpoint port (0: off)")
    col.add_argument("--endpoint", default=None,
                     help="SUB endpoint to bind (default $MELTICA_TELEMETRY, else ipc://<run_dir>/telemetry.sock)")
    return ap


def main(argv=None) -> int:
    args = config.cli_args(_parser(), sys.argv[1:] if argv is None else argv)
    if args.command == "collect":
        return collect(args)
    config_path = os.path.abspath(args.config) if args.config else None
    try:
        cfg = runconfig.load_checked(config_path)
    except config.ConfigError as err:
        print(f"meltica: config error, nothing started:\n{err}", file=sys.stderr, flush=True)
        return config.EX_CONFIG
    if args.metrics_port is not None:
        cfg["run"]["metrics_port"] = args.metrics_port
    run_id = args.run_id or time.strftime("run-%Y%m%d-%H%M%S")
    try:
        ctx = RunContext.from_env(run_id)
    except RunDirError as err:
        print(f"meltica: {err}", file=sys.stderr)
        return 2
    sweep_stale()  # segments of earlier runs whose writers are gone
    if args.hosts == 2:
        from meltica.hosts import TradingHost
        pipeline = TradingHost(cfg, ctx, live_feeds=args.live_feeds or None, config_path=config_path)
    else:
        pipeline = Pipeline(cfg, ctx, live_feeds=args.live_feeds or None, config_path=config_path)
    stop = StopFlag()
    stop_on_signals(stop)
    print(f"meltica: run {ctx.run_id}, files in {ctx.run_dir}", file=sys.stderr, flush=True)
    failure = None
    try:
        try:
            pipeline.start()
            deadline = time.monotonic() + args.duration if args.duration else None
            if args.headless:
                _headless(pipeline, stop, deadline)
            else:
                _live(pipeline, stop, deadline, args.duration)
            failure = pipeline.failure()
        except ProgramFailed as err:
            failure = str(err)
        result = report.build(pipeline)
    finally:
        codes = pipeline.stop()
        pipeline.close()
    result["exit_codes"] = codes
    result["failure"] = failure
    if args.report:
        with open(args.report, "wb") as f:
            f.write(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        print(f"meltica: report written to {args.report}", file=sys.stderr)
    left = ctx.namespace.names()
    print(f"meltica: stopped; {len(left)} shared-memory segments left", file=sys.stderr)
    exits = pipeline.unexpected_exits()
    for line in exits:
        print(f"meltica: {line}", file=sys.stderr)
    if failure:
        print(f"meltica: the run stopped: {failure}", file=sys.stderr, flush=True)
        return config.EX_CONFIG if pipeline.launcher.failed() else 1
    return 1 if left or exits else 0


def collect(args) -> int:
    """Bind the run's telemetry collector and serve /metrics until SIGTERM / Ctrl-C."""
    from .collector import Collector
    from .metrics import serve

    try:
        ctx = RunContext.from_env()
    except RunDirError as err:
        print(f"meltica collect: {err}", file=sys.stderr)
        return 2
    sweep_stale()
    endpoint = args.endpoint or os.environ.get("MELTICA_TELEMETRY") or \
        f"ipc://{ctx.run_dir.resolve() / 'telemetry.sock'}"
    stop = StopFlag()
    stop_on_signals(stop)
    collector = Collector(endpoint).start()
    server = serve(collector, args.metrics_port)[0] if args.metrics_port else None
    print(f"meltica collect: run {ctx.run_id}, telemetry {endpoint}, "
          f"metrics {'http://127.0.0.1:%d/metrics' % args.metrics_port if server else 'off'}",
          file=sys.stderr, flush=True)
    stop.wait()
    if server is not None:
        server.shutdown()
    collector.close()
    return 0


def _headless(pipeline, stop, deadline) -> None:
    next_status = time.monotonic() + 5
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        restarted = pipeline.poll()
        if pipeline.failure():
            return
        if restarted:
            last = {s["name"]: s["last_exit"] for s in pipeline.launcher.states()}
            for name in restarted:
                print(f"meltica: restarted {name} after {last[name]}", file=sys.stderr, flush=True)
        if time.monotonic() >= next_status:
            next_status += 5
            mon = pipeline.monitor.snapshot() if pipeline.monitor else {"counts": {}}
            states = " ".join(f"{s['name']}={s['state']}" for s in pipeline.launcher.states())
            print(f"meltica: {pipeline.uptime_s():.0f}s delivered={sum(mon['counts'].values())} {states}",
                  file=sys.stderr, flush=True)
        stop.wait(0.1)


def _live(pipeline, stop, deadline, duration) -> None:
    from rich.live import Live

    from .liveview import LiveView

    view = LiveView(pipeline, duration)
    with Live(view.render(), refresh_per_second=4, screen=False) as live:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            pipeline.poll()
            live.update(view.render())
            if pipeline.failure():
                return
            stop.wait(0.25)


if __name__ == "__main__":
    sys.exit(main())
