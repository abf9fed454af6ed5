"""`python -m simulator`: run the venue simulator until SIGINT/SIGTERM.

Prints one JSON line on stdout once every venue listens:
    {"endpoints": {"binance-spot": {"rest": "http://127.0.0.1:P", "ws": "ws://127.0.0.1:P"}, ..},
     "pid": 1234}
and logs to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

import orjson

from .faults import FaultError
from .orders_api import DEFAULT_KEY, DEFAULT_SECRET
from .server import DEFAULT_VENUES, VENUES, Simulator, SimulatorError
from .userstream import LIFETIME_S, PING_INTERVAL_S


def parse_fault(text: str) -> dict[str, Any]:
    """Parse VENUE:FAULT[:key=value,...] (values as JSON where they parse)."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"expected VENUE:FAULT[:k=v,..]: {text!r}")
    spec: dict[str, Any] = {"venue": parts[0], "fault": parts[1]}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, eq, value = item.partition("=")
            if not eq:
                raise argparse.ArgumentTypeError(f"expected key=value: {item!r}")
            try:
                spec[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                spec[key] = value
    return spec


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Local exchange speaking Binance spot, USD-M and COIN-M, OKX and Kraken wire formats.")
    p.add_argument("--venues", default=",".join(DEFAULT_VENUES),
                   help=f"comma-separated venues, of {', '.join(VENUES)} (default: %(default)s)")
    p.add_argument("--instruments", type=int, default=4, help="number of instruments (default 4)")
    p.add_argument("--rate", type=float, default=20.0,
                   help="market steps per second per instrument; 0 = only /_sim/step (default 20)")
    p.add_argument("--seed", type=int, default=1, help="market seed (default 1)")
    p.add_argument("--depth", type=int, default=400, help="book levels per side (default 400)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port-base", type=int, default=0,
                   help="ports N..N+3 for binance-spot, binance-usdm, okx, kraken (default: ephemeral)")
    p.add_argument("--replay", metavar="DATASET", help="serve a recorded dataset instead")
    p.add_argument("--replay-venue", choices=VENUES, help="venue of the dataset (default: from meta.json)")
    p.add_argument("--replay-speed", type=float, default=1.0,
                   help="replay pace as a multiple of recorded time; 0 = as fast as possible (default 1)")
    p.add_argument("--fault", action="append", type=parse_fault, default=[], metavar="VENUE:FAULT[:k=v,..]",
                   help="arm a fault at start, e.g. okx:gap:symbol=BTC-USDT,count=2 (repeatable)")
    p.add_argument("--api-key", default=os.environ.get("MELTICA_SIM_API_KEY", DEFAULT_KEY),
                   help="API key the order API accepts (env MELTICA_SIM_API_KEY; default %(default)s)")
    p.add_argument("--api-secret", default=os.environ.get("MELTICA_SIM_API_SECRET", DEFAULT_SECRET),
                   help="HMAC secret of that key (env MELTICA_SIM_API_SECRET; default meltica-sim-secret)")
    p.add_argument("--user-stream-lifetime", type=float, default=LIFETIME_S, metavar="SECONDS",
                   help="binance-spot WebSocket API: close each connection this long after it opened "
                   "(default %(default)s, Binance's 24 h)")
    p.add_argument("--user-stream-ping", type=float, default=PING_INTERVAL_S, metavar="SECONDS",
                   help="binance-spot WebSocket API: server ping interval (default %(default)s)")
    p.add_argument("--okx-ws-snapshot", type=float, default=0.0, metavar="FRACTION",
                   help="OKX: fraction of connections still sent a WS books snapshot on subscribe "
                        "(default 0: none, as OKX today)")
    p.add_argument("--okx-checksum", action="store_true",
                   help="OKX: send the old CRC32 books checksum (default: 0, as OKX today)")
    p.add_argument("--endpoints-file", help="also write the endpoints JSON line to this file")
    p.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; return the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # a usage error is a configuration error: EX_CONFIG, not restarted
        raise SystemExit(os.EX_CONFIG if stop.code == 2 else stop.code) from None
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("venue")
    # A list, not a threading.Event: Event.set() takes a lock, and a second signal landing
    # inside the first handler would wait for that lock forever (a burst of SIGTERMs).
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop.append(signum))
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    try:
        sim = Simulator(venues=venues, instruments=args.instruments, rate=args.rate, seed=args.seed,
                        depth=args.depth, host=args.host, port_base=args.port_base,
                        replay=args.replay, replay_venue=args.replay_venue,
                        replay_speed=args.replay_speed, faults=args.fault,
                        api_key=args.api_key, api_secret=args.api_secret,
                        user_stream_lifetime=args.user_stream_lifetime, user_stream_ping=args.user_stream_ping,
                        okx={"ws_snapshot": args.okx_ws_snapshot, "checksum": args.okx_checksum})
    except (SimulatorError, FaultError, ValueError, OSError) as exc:  # what it was asked to be
        log.error("config error: %s", exc)
        return os.EX_CONFIG
    try:
        sim.start()
    except FaultError as exc:  # a fault armed at start that the venue does not have
        log.error("config error: %s", exc)
        return os.EX_CONFIG
    except (SimulatorError, ValueError, OSError) as exc:  # e.g. a port still held: a restart may do
        log.error("cannot start: %s", exc)
        return 2
    line = orjson.dumps({"endpoints": sim.endpoints, "pid": os.getpid()})
    if args.endpoints_file:
        tmp = args.endpoints_file + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(line + b"\n")
        os.replace(tmp, args.endpoints_file)
    sys.stdout.write(line.decode() + "\n")
    sys.stdout.flush()
    try:
        while not stop:
            time.sleep(0.2)  # a signal interrupts the sleep; its handler runs at once
    finally:
        log.info("stopping")
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
