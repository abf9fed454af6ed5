"""Shared helpers of the ingest tests: fake I/O, a fake clock, frame builders, records."""

from __future__ import annotations

import time

import numpy as np
import orjson

from events import BOOK_DEPTH, Provider, concat
from ingest.publisher import Publisher
from ingest.report import Report
from ingest.stream import Stream, Timers
import venues

S = 1_000_000_000


class FakeIo:
    """Records what an adapter asks of the outside world."""

    def __init__(self):
        self.snapshots: list[str] = []
        self.sent: list[dict] = []
        self.reconnects: list[str] = []

    def request_snapshot(self, venue_symbol: str) -> None:
        self.snapshots.append(venue_symbol)

    def send(self, text: str) -> None:
        self.sent.append(orjson.loads(text))

    def reconnect(self, reason: str) -> None:
        self.reconnects.append(reason)


class FakeClock:
    def __init__(self, start_ns: int = 1_000 * S):
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> int:
        self.now += int(seconds * S)
        return self.now


class Collector:
    """A publisher sink keeping copies of every flushed record."""

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def __call__(self, batch: np.ndarray) -> None:
        self.batches.append(batch.copy())

    @property
    def records(self) -> np.ndarray:
        """Every record so far, as one EVENT array."""
        return concat(self.batches)


class Rig:
    """One adapter wired to a collecting publisher, a fake io and a fake clock."""

    def __init__(self, provider: Provider, venue_symbols, *, timers: Timers | None = None,
                 depth: int = BOOK_DEPTH, ignore=()):
        self.provider = provider
        self.clock = FakeClock()
        self.io = FakeIo()
        self.sink = Collector()
        self.report = Report(provider.slug)
        self.pub = Publisher(provider, sink=self.sink)
        venue = venues.get(provider)
        self.streams = [Stream(venue.instrument(vs), vs, depth) for vs in venue_symbols]
        self.adapter = venue.md_adapter()(provider, self.streams, self.pub, self.report, self.io,
                                               timers=timers, clock=self.clock, ignore=ignore)

    def frame(self, payload, stream: str | None = None) -> None:
        body = {"stream": stream, "data": payload} if stream else payload
        self.adapter.on_frame(orjson.dumps(body), time.time_ns())

    def records(self, kind=None) -> np.ndarray:
        self.pub.flush()
        recs = self.sink.records
        return recs if kind is None else recs[recs["kind"] == int(kind)]

    def sync(self, venue_symbol: str):
        return self.adapter.syncs[venue_symbol]


def depth_update(symbol: str, U: int, u: int, bids=(), asks=(), pu: int | None = None, E: int = 1_700_000_000_000):
    d = {"e": "depthUpdate", "E": E, "s": symbol, "U": U, "u": u,
         "b": [list(x) for x in bids], "a": [list(x) for x in asks]}
    if pu is not None:
        d["pu"] = pu
    return d


def okx_books(inst_id: str, action: str, bids, asks, *, checksum=None, seq=None, prev=None,
              ts: str = "1652459225464"):
    d = {"asks": [list(a) + ["0", "1"] for a in asks], "bids": [list(b) + ["0", "1"] for b in bids], "ts": ts}
    if checksum is not None:
        d["checksum"] = checksum
    if seq is not None:
        d["seqId"], d["prevSeqId"] = seq, prev
    return {"arg": {"channel": "books", "instId": inst_id}, "action": action, "data": [d]}


def okx_checksum_of(bids, asks) -> int:
    """The checksum of a full book given best-first [px, sz] string pairs."""
    from venues.okx.checksum import check_text, signed_crc32
    b, a = bids[:25], asks[:25]
    return signed_crc32(check_text([x[0] for x in b], [x[1] for x in b], [x[0] for x in a],
                                   [x[1] for x in a]))


def wait_until(predicate, timeout_s: float, step_s: float = 0.02, what: str = "condition"):
    """Poll `predicate` until true; AssertionError after `timeout_s` (for cross-thread state)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(step_s)


class LiveIngest:
    """An IngestProcess (real loopback WebSockets) against a Simulator, run in a thread.

    Records written to its ring are drained by `drain()` into `seen`:
    (kind, instrument) -> list of (seq_provider, flags). Use as a context manager.
    """

    def __init__(self, ctx, sim, venue: str, symbols, **overrides):
        import threading

        from events import EVENT
        from ingest.config import Config
        from ingest.process import IngestProcess
        from core.telemetry import Telemetry
        from shm import RingReader

        ep = sim.endpoints[venue]
        settings = dict(stale_after_s=60.0, refresh_max_s=0.0, watchdog_s=5.0, ping_interval_s=1.0,
                        backoff_base_s=0.05, backoff_max_s=0.5, status_interval_s=3600.0,
                        snapshot_timeout_s=3.0)
        settings.update(overrides)
        provider = Provider.from_slug(venue)
        self.sim = sim
        self.venue = venue
        self.config = Config(provider, list(symbols), ep["rest"], ep["ws"], **settings)
        self.telemetry = Telemetry(f"ingest.{venue}")
        self.proc = IngestProcess(self.config, ctx, telemetry=self.telemetry)
        self.stop = threading.Event()
        self.thread = None
        self.reader = None
        try:
            self.proc.start()
            self.thread = threading.Thread(target=self.proc.run, args=(self.stop,), daemon=True)
            self.thread.start()
            self.reader = RingReader.attach(ctx.namespace, f"md.{venue}", EVENT, start="oldest")
        except BaseException:
            self.close()
            raise
        self.ids = {s.venue_symbol: s.iid for s in self.proc.streams}
        self.sym = {s.venue_symbol: s.symbol for s in self.proc.streams}  # -> canonical
        self.seen: dict = {}

    def drain(self) -> None:
        while True:
            batch = self.reader.try_read(1024)
            if not len(batch):
                self.reader.release()
                return
            for k, i, q, f in zip(batch["kind"].tolist(), batch["instrument"].tolist(),
                                  batch["seq_provider"].tolist(), batch["flags"].tolist()):
                self.seen.setdefault((k, i), []).append((q, f))
            self.reader.release()

    def books(self, venue_symbol: str) -> int:
        from events import Kind
        return len(self.seen.get((int(Kind.BOOK), self.ids[venue_symbol]), ()))

    def count(self, kind, venue_symbol: str) -> int:
        return len(self.seen.get((int(kind), self.ids[venue_symbol]), ()))

    def pump(self, predicate, timeout_s: float = 10.0, step: bool = True, what: str = "condition"):
        """Step the market (one step per turn) and drain the ring until `predicate()`."""
        deadline = time.monotonic() + timeout_s
        while True:
            if step:
                self.sim.advance(1)
            self.drain()
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                     f"stats={self.proc.statistics()}")
            time.sleep(0.01)

    def counter(self, name: str, **labels) -> int:
        from core.telemetry import metric_key
        return self.telemetry.snapshot()["counters"].get(metric_key(name, labels), 0)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        if self.reader is not None:
            self.reader.close()
        self.proc.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def flowing(run_ctx, sim, venue: str, symbols, **overrides) -> LiveIngest:
    """A LiveIngest of `symbols` whose books all flow; what happened during its start-up
    sync (a snapshot that raced the subscription may be refetched: snapshot_behind) is
    set aside, so `new_reasons` / `recovered` tell what happened after."""
    ing = LiveIngest(run_ctx, sim, venue, symbols, **overrides)
    try:
        ing.pump(lambda: all(ing.books(vs) >= 3 for vs in symbols), what="every book flowing")
    except BaseException:
        ing.close()
        raise
    ing.base = dict(ing.proc.report.resync_reasons)
    ing.proc.report.recoveries.clear()
    return ing


def new_reasons(ing: LiveIngest) -> dict:
    """Resync reasons counted since `flowing` returned."""
    now = ing.proc.report.resync_reasons
    return {k: v - ing.base.get(k, 0) for k, v in now.items() if v > ing.base.get(k, 0)}


def recovered(ing: LiveIngest, symbol: str, reason: str) -> list:
    """The recoveries of `symbol` after a resync for `reason`."""
    return [r for r in ing.proc.report.recoveries if r[0] == symbol and r[1] == reason]
