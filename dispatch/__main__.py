"""`python -m dispatch`: run the dispatch process of the current run (MELTICA_RUN)."""

from __future__ import annotations

import argparse
import sys

import orjson

from channels.names import DISPATCH_CTL, EXECUTION_CTL, check_local
from core import config
from core.run import RunContext
from core.signals import StopFlag

from .config import DispatchConfig
from .process import DispatchProcess, install_signal_stop


def parser() -> argparse.ArgumentParser:
    """The flags; `python -m meltica run` checks the [dispatch] table against them."""
    p = argparse.ArgumentParser(
        prog="python -m dispatch",
        description="Order, de-duplicate, merge and fan out the run's market data to consumers. "
                    "Run from MELTICA_RUN / MELTICA_RUN_DIR.")
    p.add_argument("--control", help=f"control ROUTER endpoint (default ipc://<run_dir>/{DISPATCH_CTL})")
    p.add_argument("--telemetry", help="telemetry PUB endpoint, connected to (a 'bind:' prefix "
                                       "binds); default $MELTICA_TELEMETRY, else "
                                       "bind:ipc://<run_dir>/dispatch.tel; '' disables")
    p.add_argument("--execution", help="execution control endpoint for set-trading-mode "
                                       f"(default ipc://<run_dir>/{EXECUTION_CTL})")
    p.add_argument("--instruments", default="",
                   help="comma-separated canonical symbols consumers may subscribe to before "
                        "any provider publishes them (BTC-USDT,ETH-USDT-PERP)")
    p.add_argument("--lateness-ms", type=float, default=150.0, help="wait this long for a gap")
    p.add_argument("--flush-ms", type=float, default=50.0, help="check held records this often")
    p.add_argument("--max-held", type=int, default=200, help="records held per stream")
    p.add_argument("--order-mode", choices=("auto", "gapless", "monotonic"), default="auto",
                   help="per-stream seq handling: probe each stream (auto), always wait for "
                        "gaps (gapless), or never wait (monotonic)")
    p.add_argument("--merge-window-ms", type=float, default=10_000.0, help="merge window length")
    p.add_argument("--merge-max-events", type=int, default=1000, help="merge window size")
    p.add_argument("--ring-capacity", type=int, default=1 << 14,
                   help="records per consumer ring (power of two)")
    p.add_argument("--fanout-rate", type=float, default=0.0,
                   help="fixed fan-out budget in records/s shared fairly by consumers (0: none; "
                        "dispatch still meters by itself when it finds it is saturated)")
    p.add_argument("--saturation-ms", type=float, default=100.0,
                   help="judge saturation (input left unread) this often and set the fan-out "
                        "budget so that every consumer keeps >= 25%% of its demand; 0: never")
    p.add_argument("--trading-default", choices=("on", "off"), default="off",
                   help="trading switch of a newly registered consumer")
    p.add_argument("--consumer-silence-s", type=float, default=30.0,
                   help="release a registration (pid or not) after this long without a request; "
                        "the SDK heartbeats every 5 s, a dead pid is released at once")
    p.add_argument("--exec-timeout-ms", type=float, default=500.0,
                   help="wait this long for execution to answer a forwarded set-trading-mode")
    p.add_argument("--idle-max-us", type=float, default=1000.0,
                   help="longest park of the idle loop; records wake it at once, control "
                        "requests wait at most this long (latency of control vs CPU burnt)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a control endpoint beyond loopback/ipc")
    return p


def parse_args(argv):
    """Flags; defaults from the [dispatch] table of --config / $MELTICA_CONFIG (core.config)."""
    return config.parse_args(parser(), argv, "dispatch")


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    ctx = RunContext.from_env()
    ms = 1_000_000
    try:
        if a.control and not a.allow_remote:
            check_local(a.control)
        settings = DispatchConfig(
            lateness_ns=int(a.lateness_ms * ms), flush_ns=int(a.flush_ms * ms), max_held=a.max_held,
            order_mode=a.order_mode,
            merge_window_ns=int(a.merge_window_ms * ms), merge_max_events=a.merge_max_events,
            consumer_ring_capacity=a.ring_capacity, fanout_rate=a.fanout_rate,
            saturation_interval_ns=int(a.saturation_ms * ms))
    except ValueError as err:
        config.exit_config_error("python -m dispatch", str(err))
    instruments = [s.strip() for s in a.instruments.split(",") if s.strip()]
    proc = DispatchProcess(ctx, settings, control=a.control, telemetry=a.telemetry,
                           execution=a.execution, instruments=instruments,
                           trading_default=a.trading_default == "on",
                           silence_ns=int(a.consumer_silence_s * 1e9),
                           exec_timeout_ns=int(a.exec_timeout_ms * ms))
    stop = StopFlag()
    install_signal_stop(stop)
    print(f"dispatch: run={ctx.run_id} control={proc.server.endpoint}", file=sys.stderr, flush=True)
    try:
        proc.run(stop, max_nap_ns=int(a.idle_max_us * 1000))
    finally:
        counters = proc.core.metrics()["counters"]
        proc.close()
        print(f"dispatch: stopped: {orjson.dumps(counters).decode()}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
