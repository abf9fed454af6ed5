"""Shared helpers of the ingest tests: fake I/O, a fake clock, frame builders, records."""

from __future__ import annotations

import time

import numpy as np
import orjson

from events import BOOK_DEPTH, EVENT, Provider
from ingest.publisher import Publisher
from ingest.report import Report
from ingest.stream import Stream, Timers
from ingest.venues import adapter_class, make_instrument

S = 1_000_000_000


class FakeIo:
    """Records what an adapter asks of the outside world."""

    def __init__(self):
        self.snapshots: list[str] = []
        self.sent: list[dict] = []

    def request_snapshot(self, venue_symbol: str) -> None:
        self.snapshots.append(venue_symbol)

    def send(self, text: str) -> None:
        self.sent.append(orjson.loads(text))


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
        """Every record so far, as one EVENT array (np.concatenate would repack the dtype)."""
        out = np.zeros(sum(len(b) for b in self.batches), EVENT)
        raw = out.view(np.dtype((np.void, EVENT.itemsize)))
        i = 0
        for b in self.batches:
            raw[i:i + len(b)] = b.view(raw.dtype)
            i += len(b)
        return out


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
        self.streams = [Stream(make_instrument(provider, vs), vs, depth) for vs in venue_symbols]
        self.adapter = adapter_class(provider)(provider, self.streams, self.pub, self.report, self.io,
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
    from ingest.venues.okx.checksum import check_text, signed_crc32
    d = {"asks": [list(a) + ["0", "1"] for a in asks], "bids": [list(b) + ["0", "1"] for b in bids], "ts": ts}
    if checksum is not None:
        d["checksum"] = checksum
    if seq is not None:
        d["seqId"], d["prevSeqId"] = seq, prev
    return {"arg": {"channel": "books", "instId": inst_id}, "action": action, "data": [d]}


def okx_checksum_of(bids, asks) -> int:
    """The checksum of a full book given best-first [px, sz] string pairs."""
    from ingest.venues.okx.checksum import check_text, signed_crc32
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
