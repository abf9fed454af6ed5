"""`python -m execution`: order entry, venue order routing and the exec channel of one run.

One venue (`--venue binance-spot`) or several (`--venues binance-spot,okx`, or
`venues = "..."` in the [execution] table): each order names its venue. Endpoints per
venue: `--rest-url VENUE=URL` / `--ws-url VENUE=URL` (a bare URL: the only venue), else
the environment (<PREFIX>_REST_URL / _WS_URL), else the venue's documented default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
import sys
from urllib.parse import urlsplit

import orjson

import venues
from channels.names import EXECUTION_CTL, check_local
from events import BadInput
from core import config as run_config
from core.run import RunContext

SIM_KEY, SIM_SECRET = "meltica-sim-key", "meltica-sim-secret"
SIM_PASSPHRASE = "meltica-sim-passphrase"    # OKX keys have a passphrase too


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_credentials(key_file: str | None, rest_url: str, env_prefix: str = "MELTICA_BINANCE") -> tuple[str, str]:
    """API key and secret: a 0600 file (JSON {"key", "secret"} or two lines), else the
    environment, else (a loopback venue only) the simulator's defaults. Never printed."""
    if key_file:
        st = os.stat(key_file)
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise run_config.ConfigError(f"refusing {key_file}: mode {stat.S_IMODE(st.st_mode):o}, must be 0600")
        with open(key_file, "rb") as f:
            raw = f.read()
        if raw.lstrip().startswith(b"{"):
            d = orjson.loads(raw)
            return str(d["key"]), str(d["secret"])
        lines = [x.strip() for x in raw.decode().splitlines() if x.strip()]
        if len(lines) != 2:
            raise run_config.ConfigError(f"{key_file}: expected two lines (key, secret)")
        return lines[0], lines[1]
    env_key, env_secret = f"{env_prefix}_API_KEY", f"{env_prefix}_API_SECRET"
    key, secret = os.environ.get(env_key), os.environ.get(env_secret)
    if key and secret:
        return key, secret
    if _loopback(rest_url):
        return SIM_KEY, SIM_SECRET
    raise run_config.ConfigError(f"no API credentials: set {env_key} and {env_secret}, or pass --api-key-file")


def load_passphrase(rest_url: str, env_prefix: str) -> str:
    """The API key's passphrase (venues whose keys have one: `needs_passphrase`, e.g. OKX):
    <PREFIX>_API_PASSPHRASE, else (a loopback venue only) the simulator's default. Checked
    at start-up so a missing one is a configuration error, not a login loop. Never printed."""
    name = f"{env_prefix}_API_PASSPHRASE"
    value = os.environ.get(name)
    if value:
        return value
    if _loopback(rest_url):
        return SIM_PASSPHRASE
    raise run_config.ConfigError(f"no API passphrase: set {name}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m execution", description=__doc__)
    p.add_argument("--control", help=f"control endpoint (default ipc://<run_dir>/{EXECUTION_CTL})")
    p.add_argument("--venue", default="binance-spot", choices=venues.tradable(), help="venue (default binance-spot)")
    p.add_argument("--venues", help="several venues, comma-separated (e.g. binance-spot,okx); overrides --venue")
    p.add_argument("--rest-url", action="append", help="venue REST base URL, or VENUE=URL (repeat per venue) (env "
                   "<VENUE>_REST_URL, e.g. MELTICA_BINANCE_REST_URL; default the real venue)")
    p.add_argument("--ws-url", action="append", help="venue WebSocket URL for the user stream, or VENUE=URL; "
                   "a URL without a path gets the "
                   "venue's (Binance spot: /ws-api/v3) (env <VENUE>_WS_URL, e.g. MELTICA_BINANCE_WS_URL; "
                   "default the real venue)")
    p.add_argument("--api-key-file", help="0600 file with the API key and secret (else env "
                   "<VENUE>_API_KEY / <VENUE>_API_SECRET, e.g. MELTICA_BINANCE_API_KEY; OKX keys also "
                   "need MELTICA_OKX_API_PASSPHRASE)")
    p.add_argument("--limits", help="pre-trade limits: JSON file, JSON text, or "
                   "max_notional=DEC,max_open_orders=N,max_orders_per_s=N")
    p.add_argument("--durability", choices=["power", "process"], default="power",
                   help="power (default): journal and store fsynced before anything is published or "
                   "sent, so not even a power cut loses an order or a report (on a shared disk fsync "
                   "spikes cost 100s of ms at p99); process: written to the page cache only, so a "
                   "killed process loses nothing but a power cut may")
    p.add_argument("--trading-default", choices=["on", "off"], default="on",
                   help="trading switch of a consumer never seen before (default on)")
    p.add_argument("--telemetry", help="telemetry PUB endpoint (bind:ENDPOINT binds)")
    p.add_argument("--workers", type=int, default=2, help="REST worker threads (default 2)")
    p.add_argument("--timeout", type=float, default=2.0, help="REST timeout in seconds (default 2)")
    p.add_argument("--user-stream-lifetime", type=float, metavar="SECONDS",
                   help="move the user stream to a new connection this long after it opened (default: "
                   "the venue's; Binance spot: 23 h, before the venue's 24 h limit)")
    p.add_argument("--order-entry", choices=["rest", "ws"], default="rest",
                   help="order entry: rest (default), or ws: over the venue's WebSocket API where its adapter "
                   "offers it (Binance spot: order.place / order.cancel / order.status), REST while that "
                   "connection is down; a venue without it keeps REST")
    p.add_argument("--recv-window-ms", type=int, default=5000, help="signed request validity (default 5000)")
    p.add_argument("--allow-remote", action="store_true", help="allow a control endpoint beyond loopback/ipc")
    return p


def per_venue(values, names: list[str], flag: str) -> dict[str, str]:
    """{venue: URL} from `--flag` values: VENUE=URL, or a bare URL when one venue is traded."""
    out: dict[str, str] = {}
    if isinstance(values, str):  # from a config table: one value
        values = [values]
    for v in values or ():
        if isinstance(v, str) and "=" in v.split("://")[0]:
            name, url = v.split("=", 1)
            if name not in names:
                raise run_config.ConfigError(f"{flag} {v}: {name!r} is not one of the venues traded ({','.join(names)})")
            out[name] = url
        elif len(names) == 1:
            out[names[0]] = v
        else:
            raise run_config.ConfigError(f"{flag} {v}: several venues are traded, say which: {flag} VENUE=URL")
    return out


def venue_names(args) -> list[str]:
    if not args.venues:
        return [args.venue]
    names = [n.strip() for n in str(args.venues).split(",") if n.strip()]
    tradable = venues.tradable()
    bad = [n for n in names if n not in tradable]
    if bad or not names:
        raise run_config.ConfigError(f"--venues {args.venues}: not tradable: {', '.join(bad) or '(none given)'}; "
                                     f"tradable: {', '.join(tradable)}")
    if len(set(names)) != len(names):
        raise run_config.ConfigError(f"--venues {args.venues}: a venue named twice")
    return names


def main(argv: list[str] | None = None) -> int:
    args = run_config.parse_args(parser(), sys.argv[1:] if argv is None else argv, "execution")
    from .limits import parse_limits
    from .process import AlreadyRunning, ExecutionProcess, VenueConfig, install_signals
    if args.control and not args.allow_remote:
        try:
            check_local(args.control)
        except ValueError as e:
            raise SystemExit(f"execution: {e}") from None
    configs = []
    try:
        names = venue_names(args)
        if args.api_key_file and len(names) > 1:
            raise run_config.ConfigError("--api-key-file holds one venue's key; with several venues give each "
                                         "venue's key in its environment (<PREFIX>_API_KEY / _API_SECRET)")
        rest, ws = per_venue(args.rest_url, names, "--rest-url"), per_venue(args.ws_url, names, "--ws-url")
        for name in names:
            venue = venues.get(name)
            rest_url = rest.get(name) or os.environ.get(f"{venue.env_prefix}_REST_URL", venue.trading_rest_url)
            ws_url = ws.get(name) or os.environ.get(f"{venue.env_prefix}_WS_URL", venue.trading_ws_url)
            key, secret = load_credentials(args.api_key_file, rest_url, venue.env_prefix)
            if getattr(venue, "needs_passphrase", False):
                load_passphrase(rest_url, venue.env_prefix)   # the adapter reads it from there
            configs.append(VenueConfig(name, rest_url, ws_url, key, secret))
        limits = parse_limits(args.limits) if args.limits else None
    except run_config.ConfigError as err:  # load_credentials refused the key source
        run_config.exit_config_error("python -m execution", str(err))
    except (BadInput, OSError, ValueError, KeyError) as err:  # bad limits, an unreadable key file
        run_config.exit_config_error("python -m execution", f"{type(err).__name__}: {err}")
    ctx = RunContext.from_env()
    try:
        proc = ExecutionProcess(ctx, venues_=configs, control=args.control, limits=limits,
                                durability=args.durability, trading_default=args.trading_default == "on",
                                telemetry_endpoint=args.telemetry, workers=args.workers, timeout_s=args.timeout,
                                recv_window_ms=args.recv_window_ms, user_stream_lifetime_s=args.user_stream_lifetime,
                                order_entry=args.order_entry)
    except AlreadyRunning as e:
        print(f"execution: {e}", file=sys.stderr)
        return 3
    install_signals(proc)
    print(f"execution: run {ctx.run_id}, control {proc.endpoint}, venues "
          + ", ".join(f"{c.name} {c.rest_url}" for c in configs), file=sys.stderr, flush=True)
    return proc.run()


if __name__ == "__main__":
    sys.exit(main())
