"""Check that a venue works from this machine: connect, sync the books, report.

    python -m ingest.probe --venue V --symbols S1,S2 [--rest-url URL] [--ws-url URL]
                           [--duration SECONDS] [--depth N] [--json]

Runs the live ingest code (`ingest.process.IngestProcess`: the venue's connections,
its adapter and book sync, liveness and resync timers) without a ring or a run
directory, against the real venue by default or the given URLs. For a venue that
splits its streams by category (Binance USD-M) `--ws-url` is the base: the category
paths (/public, /market) are appended as the venue does. After `--duration` seconds
it prints one JSON object in the shape of `ingest.replay --json`:

  venue, duration_s, connections [{url, kinds, connects}],
  books {canonical symbol: {synced, bids, asks (decimal strings, best first),
         last_update_id}}, snapshots, resyncs, resync_reasons, gaps,
  checksum_ok, checksum_failed, messages {book, trade, ticker} (records out),
  frames, bad_frames, reconnects, silences, unknown_symbols, errors [text]

or, without `--json`, a table. Exit status: 0 when every book is synced at the end,
1 when one is not, 2 when the venue cannot be reached (a one-line error on stderr,
nothing on stdout). Logs are collected into `errors` (warnings and errors), not
printed; `--log-level` prints them on stderr as well.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import sys
import time

import orjson

import venues
from events import BOOK_DEPTH, BadInput, PeerGone, Provider
from core.telemetry import Telemetry

from .config import Config
from .process import IngestProcess
from .transport import RestClient

MAX_ERRORS = 50
CONNECT_TRIES = 2         # failed attempts, with none open, before "cannot connect"


class CannotConnect(PeerGone):
    """The venue could not be reached at all (REST or WebSocket)."""


class _Errors(logging.Handler):
    """Warnings and errors of the run, as text, for the report."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if len(self.lines) < MAX_ERRORS:
            self.lines.append(text)
        else:
            self.dropped += 1


def probe(venue: str, symbols: list[str], *, rest_url: str | None = None, ws_url: str | None = None,
          duration_s: float = 10.0, depth: int = BOOK_DEPTH, connect_timeout_s: float = 10.0) -> dict:
    """Run one venue's ingest for `duration_s` and return the report (CannotConnect: unreachable)."""
    provider = Provider.from_slug(venue)
    v = venues.get(provider)
    config = Config(provider, symbols, rest_url, ws_url, depth, refresh_max_s=0.0,
                    status_interval_s=3600.0, backoff_max_s=5.0, snapshot_limit=1000)
    errors = _Errors()
    watched = [logging.getLogger(n) for n in ("ingest", "venues")]
    for lg in watched:
        lg.addHandler(errors)
    proc = IngestProcess(config, None, telemetry=Telemetry(f"ingest.probe.{provider.slug}", None))
    try:
        _reachable(v, proc, symbols[0])
        t0 = time.monotonic()
        proc.start()
        deadline = t0 + duration_s
        connect_by = t0 + min(connect_timeout_s, max(duration_s, 0.1))
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if not proc.do_work():
                proc.idle(min(0.05, deadline - now))
            unreached = [f for f in proc.feeds if not f.connects]
            stuck = [f for f in unreached if f.failures >= CONNECT_TRIES]
            if stuck or (unreached and now > connect_by):
                f = (stuck or unreached)[0]
                raise CannotConnect(f"cannot connect to {f.url}: {f.last_error or 'no answer'}")
        proc.adapter.pub.flush()
        return _result(proc, v, time.monotonic() - t0, errors)
    finally:
        proc.close()
        for lg in watched:
            lg.removeHandler(errors)


def _reachable(v, proc: IngestProcess, venue_symbol: str) -> None:
    """One REST request where the venue's books need REST: an unreachable host is fatal."""
    path = v.snapshot_path(venue_symbol, 5)
    if path is None:
        return
    rest = RestClient(proc.rest_url, proc.config.rest_timeout_s)
    try:
        rest.get(path)
    except (OSError, http.client.HTTPException) as exc:
        raise CannotConnect(f"cannot connect to {proc.rest_url}: {type(exc).__name__}: {exc}") from None
    finally:
        rest.close()


def _result(proc: IngestProcess, v, elapsed_s: float, errors: _Errors) -> dict:
    r = proc.report
    books = {sym: {k: val for k, val in b.items() if k != "venue_symbol"}
             for sym, b in proc.adapter.books().items()}
    errs = list(errors.lines)
    if errors.dropped:
        errs.append(f"... and {errors.dropped} more")
    return {
        "venue": proc.provider.slug,
        "duration_s": round(elapsed_s, 3),
        "connections": [{"url": f.url, "kinds": list(f.kinds), "connects": f.connects}
                        for f in proc.feeds],
        "books": books,
        "snapshots": r.snapshots,
        "resyncs": r.resyncs,
        "resync_reasons": dict(r.resync_reasons),
        "gaps": r.gaps,
        "checksum_ok": r.checksum_ok,
        "checksum_failed": r.checksum_failed,
        "messages": dict(proc.adapter.pub.counts),
        "frames": r.messages,
        "bad_frames": r.bad_frames,
        "reconnects": r.reconnects,
        "silences": dict(proc.liveness.silences),
        "unknown_symbols": dict(r.unknown_symbols),
        "errors": errs,
    }


def table(out: dict) -> str:
    """The report as a readable table."""
    synced = sum(1 for b in out["books"].values() if b["synced"])
    lines = [f"{out['venue']}: {synced}/{len(out['books'])} books synced in {out['duration_s']:.1f} s",
             *(f"  {c['url']}  ({', '.join(c['kinds'])}; {c['connects']} connect(s))"
               for c in out["connections"]),
             "",
             f"  {'symbol':<18} {'synced':<7} {'best bid':>26}   {'best ask':<26}"]
    for sym, b in out["books"].items():
        bid = f"{b['bids'][0][0]} x {b['bids'][0][1]}" if b["bids"] else "-"
        ask = f"{b['asks'][0][0]} x {b['asks'][0][1]}" if b["asks"] else "-"
        lines.append(f"  {sym:<18} {'yes' if b['synced'] else 'NO':<7} {bid:>26}   {ask:<26}")
    m = out["messages"]
    reasons = ", ".join(f"{k} {n}" for k, n in sorted(out["resync_reasons"].items()))
    lines += ["",
              f"  messages    book {m.get('book', 0)}  trade {m.get('trade', 0)}  ticker {m.get('ticker', 0)}"
              f"  (frames {out['frames']}, bad {out['bad_frames']})",
              f"  snapshots {out['snapshots']}  resyncs {out['resyncs']}" + (f" ({reasons})" if reasons else "")
              + f"  gaps {out['gaps']}  checksum ok {out['checksum_ok']} failed {out['checksum_failed']}"
              + f"  reconnects {out['reconnects']}"]
    if out["unknown_symbols"]:
        lines.append("  unknown symbols: " + ", ".join(sorted(out["unknown_symbols"])))
    lines.append("  errors: " + ("none" if not out["errors"] else f"{len(out['errors'])}"))
    lines += [f"    {e}" for e in out["errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ingest.probe",
                                 description="Check that a venue works from this machine: connect, "
                                             "sync the books, report.")
    ap.add_argument("--venue", required=True, choices=list(venues.SUPPORTED))
    ap.add_argument("--symbols", help="comma-separated venue or canonical symbols (default: the venue's)")
    ap.add_argument("--rest-url", help="REST base URL (default: the real venue)")
    ap.add_argument("--ws-url", help="WebSocket base URL (default: the real venue; category paths "
                    "are appended for a venue that splits its streams)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    ap.add_argument("--depth", type=int, default=BOOK_DEPTH, help=f"book levels per side, 1..{BOOK_DEPTH}")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--log-level", help="also print logs of this level on stderr")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=(args.log_level or "CRITICAL").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.log_level:        # collected into "errors", not printed
        logging.getLogger().handlers[:] = [logging.NullHandler()]
        logging.getLogger().setLevel(logging.WARNING)
    v = venues.get(args.venue)
    raw = args.symbols.split(",") if args.symbols else list(v.default_symbols)
    try:
        symbols = list(dict.fromkeys(v.venue_symbol(s) for s in raw if s.strip()))
        if args.duration <= 0:
            raise ValueError(f"duration must be positive: {args.duration}")
        out = probe(args.venue, symbols, rest_url=args.rest_url, ws_url=args.ws_url,
                    duration_s=args.duration, depth=args.depth)
    except CannotConnect as exc:
        print(f"ingest.probe: {args.venue}: {exc}", file=sys.stderr)
        return 2
    except (BadInput, ValueError) as exc:      # bad arguments, or every symbol unknown
        print(f"ingest.probe: {args.venue}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    else:
        print(table(out))
    return 0 if out["books"] and all(b["synced"] for b in out["books"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
