"""Replay a recorded dataset through the live adapter and book code; print one JSON object.

    python -m ingest.replay DATASET --venue binance-spot|binance-usdm|binance-coinm|okx
                            [--symbol S] [--depth N] [--json]

DATASET is a folder or a `messages.jsonl[.gz]` file in the ../shared/data format.
WebSocket lines go to the adapter's `on_frame` as their compact JSON bytes (which
reproduce the recorded bytes); REST lines answer snapshot requests (a REST line
without a symbol belongs to the dataset's only symbol, or to --symbol). Time-driven
resyncs (staleness, periodic refresh) are off: a recording cannot answer a new
snapshot request, so after a gap with no later snapshot an instrument stays
`synced: false`. Output (stdout): messages, diffs_applied, diffs_dropped_stale,
gaps, checksum_ok, checksum_failed, resyncs, events_out per kind, books per
canonical symbol (top-N bids/asks as decimal strings, last_update_id, synced).
Logs go to stderr.

The file is read by `ingest.recording`: a line that is no recorded message is skipped
and counted (`bad_lines`: the count, and the first lines by their 1-based number in
the file with the reason); a damaged or truncated `.gz` ends the replay with what was
read, and `error` says where (also on stderr; exit status 1). Bad arguments exit 78.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

import venues
from events import BOOK_DEPTH, HeaderFlag, Provider
from core.config import EX_CONFIG, cli_args

from .publisher import Publisher
from .recording import REST, WS, Recording, dataset_file  # noqa: F401 (dataset_file: public here too)
from .report import Report
from .stream import Stream

log = logging.getLogger("ingest.replay")
_URL_SYMBOL = re.compile(r"[?&]symbol=([A-Za-z0-9_\-]+)")


@dataclass
class Dataset:
    """A recording loaded in memory: (src, recv_ns, frame bytes | payload, rest symbol)."""

    path: Path
    lines: list = field(default_factory=list)
    venue_symbols: list = field(default_factory=list)  # in order of first appearance
    bad_lines: dict = field(default_factory=lambda: {"count": 0, "first": []})
    error: str | None = None    # why the file could not be read to its end


def load(path: str | Path, provider: Provider) -> Dataset:
    """Read a dataset; find the venue symbols it carries (for the registry)."""
    rec = Recording(path)
    ds = Dataset(rec.path)
    seen: dict[str, None] = {}
    symbol_of = venues.get(provider).recorded_symbol
    for _line, src, ns, payload, url in rec:
        if src == REST:
            sym = payload.get("symbol") if isinstance(payload, dict) else None
            if sym is None:
                m = _URL_SYMBOL.search(url or "")
                sym = m.group(1) if m else None
            if sym is not None:
                seen.setdefault(sym, None)
            ds.lines.append((REST, ns, payload, sym))
            continue
        ds.lines.append((WS, ns, orjson.dumps(payload), None))
        sym = symbol_of(payload)
        if sym is not None:
            seen.setdefault(sym, None)
    ds.venue_symbols = list(seen)
    ds.bad_lines, ds.error = rec.bad_lines(), rec.error
    return ds


class _ReplayIo:
    """Snapshot requests are answered by the recording's REST lines; sends go nowhere."""

    def __init__(self):
        self.requested: list[str] = []
        self.sent: list[str] = []
        self.reconnects: list[str] = []

    def request_snapshot(self, venue_symbol: str) -> None:
        self.requested.append(venue_symbol)

    def send(self, text: str) -> None:
        self.sent.append(text)

    def reconnect(self, reason: str) -> None:
        """A recording cannot reconnect: noted (Binance's serverShutdown asks for it)."""
        self.reconnects.append(reason)


class Replayer:
    """The adapter of `provider` wired to a publisher, ready to replay `dataset`."""

    def __init__(self, dataset: Dataset, provider: Provider, *, symbol: str | None = None,
                 depth: int = BOOK_DEPTH, writer=None, sink=None, report: Report | None = None,
                 batch: int = 1024):
        if not 1 <= depth <= BOOK_DEPTH:
            raise ValueError(f"depth must be in 1..{BOOK_DEPTH}: depth={depth}")
        self.dataset = dataset
        self.provider = provider
        venue = venues.get(provider)
        carried = dataset.venue_symbols
        if symbol is not None:
            carried = [venue.venue_symbol(symbol)]
        self.only = carried[0] if len(carried) == 1 else None
        streams = [Stream(venue.instrument(vs), vs, depth) for vs in carried]
        self.report = report or Report(provider.slug)
        self.publisher = Publisher(provider, writer, sink=sink, batch=batch,
                                   flags=int(HeaderFlag.REPLAYED))
        self.io = _ReplayIo()
        ignore = [vs for vs in dataset.venue_symbols if vs not in carried]
        self.adapter = venue.md_adapter()(provider, streams, self.publisher, self.report,
                                               self.io, timers=None, ignore=ignore)
        self.adapter.on_connected(True)
        self.rest_lines = 0

    def run(self) -> None:
        """Feed every line of the dataset, then flush the publisher."""
        on_frame = self.adapter.on_frame
        for src, ns, data, sym in self.dataset.lines:
            if src == WS:
                on_frame(data, ns)
            else:
                self.rest_lines += 1
                self.adapter.on_snapshot(sym or self.only or "", data, ns)
        self.publisher.flush()

    def result(self) -> dict:
        r = self.report
        out = {"dataset": str(self.dataset.path), "venue": self.provider.slug,
               "messages": r.messages + self.rest_lines}
        out.update({k: v for k, v in r.counters().items() if k != "messages"})
        out["events_out"] = dict(self.publisher.counts)
        out["books"] = {sym: {k: v for k, v in b.items() if k != "venue_symbol"}
                        for sym, b in self.adapter.books().items()}
        out["resync_reasons"] = dict(r.resync_reasons)
        out["snapshots"] = r.snapshots
        out["bad_frames"] = r.bad_frames
        out["filtered"] = r.filtered
        out["ignored"] = r.ignored
        out["bad_lines"] = self.dataset.bad_lines
        out["error"] = self.dataset.error
        return out


def replay(path, venue: str | Provider, *, symbol: str | None = None, depth: int = BOOK_DEPTH,
           writer=None, sink=None) -> dict:
    """Load and replay a dataset; return the result dict the CLI prints."""
    provider = venue if isinstance(venue, Provider) else Provider.from_slug(venue)
    r = Replayer(load(path, provider), provider, symbol=symbol, depth=depth, writer=writer, sink=sink)
    t0 = time.perf_counter()
    r.run()
    out = r.result()
    out["elapsed_s"] = round(time.perf_counter() - t0, 6)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ingest.replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="dataset folder or messages.jsonl[.gz] file")
    ap.add_argument("--venue", required=True,
                    choices=["binance-spot", "binance-usdm", "binance-coinm", "binance-us", "okx",
                             "kraken"])
    ap.add_argument("--symbol", help="replay only this instrument (venue or canonical symbol)")
    ap.add_argument("--depth", type=int, default=BOOK_DEPTH, help=f"book levels per side (1..{BOOK_DEPTH})")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    ap.add_argument("--log-level", default="WARNING")
    args = cli_args(ap, argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        out = replay(args.dataset, args.venue, symbol=args.symbol, depth=args.depth)
    except (FileNotFoundError, ValueError) as exc:  # no such dataset, symbol or depth
        print(f"ingest.replay: {exc}", file=sys.stderr)
        return EX_CONFIG
    opt = orjson.OPT_SORT_KEYS | (0 if args.json else orjson.OPT_INDENT_2)
    sys.stdout.buffer.write(orjson.dumps(out, option=opt) + b"\n")
    sys.stdout.flush()
    if out["bad_lines"]["count"]:
        first = ", ".join(str(b["line"]) for b in out["bad_lines"]["first"])
        print(f"ingest.replay: skipped {out['bad_lines']['count']} bad lines (first: {first})", file=sys.stderr)
    if out["error"]:
        print(f"ingest.replay: {out['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
