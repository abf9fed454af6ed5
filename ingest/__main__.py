"""`python -m ingest --venue V [--symbols ...] [...]`: one venue connection -> ring md.<venue>.

The run id and run directory come from the environment (MELTICA_RUN, MELTICA_RUN_DIR).
Flag defaults come from the run configuration's `[ingest.<venue>]` table
(`--config FILE` or $MELTICA_CONFIG, see core.config); a flag on the command line wins.
Default URLs are the real venues; pass --rest-url / --ws-url for the simulator.
SIGINT / SIGTERM stop the process cleanly (threads stopped, ring closed and removed).
"""

from __future__ import annotations

import argparse
import logging
import sys

import venues
from events import BOOK_DEPTH, BadInput, Provider
from core import config as run_config
from core.run import RunContext
from core.signals import StopFlag, stop_on_signals

from .config import Config
from .liveness import parse_silence
from .process import IngestProcess, RingInUse

VENUES = list(venues.SUPPORTED)


def parser() -> argparse.ArgumentParser:
    """The flags; `python -m meltica run` checks each [ingest.<venue>] table against them."""
    ap = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Turn one venue's market data into canonical events on ring md.<venue>.")
    ap.add_argument("--venue", required=True, choices=VENUES)
    ap.add_argument("--symbols", help="comma-separated venue or canonical symbols "
                    "(BTCUSDT,ETHUSDT | BTC-USDT,...); default: BTC and ETH against USDT")
    ap.add_argument("--rest-url", help="REST base URL (default: the real venue)")
    ap.add_argument("--ws-url", help="WebSocket base URL (default: the real venue)")
    ap.add_argument("--depth", type=int, default=BOOK_DEPTH, help=f"book levels per side, 1..{BOOK_DEPTH}")
    ap.add_argument("--ring-capacity", type=int, default=16384, help="records (a power of two)")
    ap.add_argument("--telemetry", help="ZeroMQ endpoint for telemetry events ('bind:' to bind)")
    ap.add_argument("--stale-after", type=float, default=60.0,
                    help="resync a book with no update for this many seconds (0: never)")
    ap.add_argument("--refresh-min", type=float, default=120.0, help="periodic refresh, seconds (min)")
    ap.add_argument("--refresh-max", type=float, default=300.0, help="periodic refresh, seconds (max; 0: off)")
    ap.add_argument("--snapshot-timeout", type=float, default=10.0, help="seconds to wait for a snapshot")
    ap.add_argument("--snapshot-limit", type=int, default=1000, help="REST depth snapshot levels (Binance; OKX: at most 400)")
    ap.add_argument("--watchdog", type=float, default=30.0,
                    help="reconnect a connection with no data frame for this many seconds (pongs do not count)")
    ap.add_argument("--silence", help="liveness by data, per stream kind: reconnect when no KIND data "
                    "arrived for SECONDS (book=3,ticker=3,trade=120: the venue's defaults; 0: off)")
    ap.add_argument("--ping-interval", type=float, default=15.0, help="ping after this many idle seconds")
    ap.add_argument("--backoff-max", type=float, default=30.0, help="reconnect backoff cap, seconds")
    ap.add_argument("--no-metadata", action="store_true", help="skip exchangeInfo/instruments (scales 8/8)")
    ap.add_argument("--status-interval", type=float, default=10.0, help="status log and rates, seconds")
    ap.add_argument("--log-level", default="INFO")
    return ap


def parse_args(argv: list[str] | None) -> Config:
    """The process's Config from argv and [ingest.<venue>]; bad ones exit EX_CONFIG."""
    ap = parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--venue", choices=VENUES)
    known, _ = pre.parse_known_args(argv)
    if known.venue:   # the venue picks the config table: [ingest.<venue>]
        args = run_config.parse_args(ap, argv, f"ingest.{known.venue}")
    else:
        args = run_config.cli_args(ap, argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    provider = Provider.from_slug(args.venue)
    venue = venues.get(provider)
    raw = args.symbols.split(",") if args.symbols else list(venue.default_symbols)
    try:
        symbols = list(dict.fromkeys(venue.venue_symbol(s) for s in raw if s.strip()))
        silence = parse_silence(args.silence) if args.silence else None
        cfg = Config(provider, symbols, args.rest_url, args.ws_url, args.depth, args.ring_capacity,
                     args.telemetry, args.stale_after, args.refresh_min, args.refresh_max,
                     args.snapshot_timeout, args.snapshot_limit, args.watchdog, args.ping_interval,
                     backoff_max_s=args.backoff_max, metadata=not args.no_metadata,
                     status_interval_s=args.status_interval, silence=silence)
        cfg.check()
        return cfg
    except (BadInput, ValueError) as exc:
        run_config.exit_config_error(ap.prog, str(exc))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    log = logging.getLogger("ingest")
    stop = StopFlag()  # not threading.Event: its set() deadlocks under a second signal
    stop_on_signals(stop)
    try:
        proc = IngestProcess(config, RunContext.from_env())
    except ValueError as exc:   # settings that cannot work: a restart would not help
        log.error("config error: %s", exc)
        return run_config.EX_CONFIG
    try:
        proc.start()
        proc.run(stop)
    except venues.UnknownSymbols as exc:   # the venue lists none of them: nothing to restart for
        log.error("config error: %s", exc)
        return run_config.EX_CONFIG
    except (ValueError, BadInput, RingInUse) as exc:
        log.error("%s", exc)
        return 2
    finally:
        proc.close()
        log.info("stopped: %s", {k: v for k, v in proc.report.counters().items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
