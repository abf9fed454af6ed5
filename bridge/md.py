"""Market data between hosts: ring records as raw bytes in batches over core NATS.

Sending host (`MdOut`): reads chosen rings (`md.<venue>`, or a consumer's ring) and
publishes each batch read, as the records' raw bytes behind a 32-byte batch header, on
subject `<prefix>.<ring name>` (so `meltica.ring.md.binance-spot`: one subject per venue,
and a receiver subscribes to the venues it wants). No record is decoded or re-encoded.

    batch header (little-endian)
    0   u4  magic "MDB1"
    4   u2  layout version (1)
    6   u2  events.SCHEMA_VERSION of the records
    8   u4  record bytes (768)
    12  u4  count
    16  u8  epoch: a random id of the sending reader (new after a bridge or ring restart)
    24  u8  ring position of the first record

Receiving host (`MdIn`): writes the records into local rings of the same names and
layout (overwrite policy, as ingest's), so dispatch there runs unchanged. The ring
positions make losses exact, like a lapped ring reader: a batch that starts past the
next expected position lost the difference (lapped at the source, or dropped by core
NATS); `lost` counts them per ring. A new epoch is an unknown loss (`resets`). After
either, the first book of each (provider, instrument) is marked `HeaderFlag.RESYNCED`:
book records carry full top-N state, so the book downstream is whole again at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import numpy as np

from events import EVENT, HeaderFlag, Kind
from events.kinds import SCHEMA_VERSION
from events.records import RECORD_BYTES
from shm import RingError, RingReader, RingWriter, SegmentNotFound

log = logging.getLogger("bridge.md")

PREFIX = "meltica.ring"
MAGIC = int.from_bytes(b"MDB1", "little")
LAYOUT_VERSION = 1
BATCH_HEADER = np.dtype([("magic", "<u4"), ("version", "<u2"), ("schema", "<u2"), ("record_bytes", "<u4"),
                         ("count", "<u4"), ("epoch", "<u8"), ("first_pos", "<u8")])
HEADER_BYTES = BATCH_HEADER.itemsize
# 1024 records (786 KB) stay under nats-server's default max_payload of 1 MB
MAX_BATCH = 1024


class BatchError(ValueError):
    """A message that is not a batch of our layout (dropped and counted)."""


def subject(ring: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{ring}"


def encode_header(count: int, epoch: int, first_pos: int) -> bytes:
    h = np.zeros(1, BATCH_HEADER)
    h[0] = (MAGIC, LAYOUT_VERSION, SCHEMA_VERSION, RECORD_BYTES, count, epoch, first_pos)
    return h.tobytes()


def decode(data: bytes) -> tuple[np.void, np.ndarray]:
    """(header, records: a read-only EVENT view of `data`), or BatchError."""
    if len(data) < HEADER_BYTES:
        raise BatchError(f"short message: {len(data)} bytes")
    h = np.frombuffer(data, BATCH_HEADER, 1)[0]
    if h["magic"] != MAGIC or h["version"] != LAYOUT_VERSION:
        raise BatchError(f"not a ring batch: magic={int(h['magic']):#x} version={int(h['version'])}")
    if h["schema"] != SCHEMA_VERSION or h["record_bytes"] != RECORD_BYTES:
        raise BatchError(f"schema {int(h['schema'])} / record bytes {int(h['record_bytes'])}; "
                         f"ours: {SCHEMA_VERSION} / {RECORD_BYTES}")
    n = int(h["count"])
    if len(data) != HEADER_BYTES + n * RECORD_BYTES:
        raise BatchError(f"batch of {n} records in {len(data)} bytes")
    return h, np.frombuffer(data, EVENT, n, HEADER_BYTES)


class _Source:
    def __init__(self, ns, ring: str, batch: int):
        self.reader = RingReader.attach(ns, ring, EVENT, start="latest", batch_capacity=batch)
        self.epoch = int.from_bytes(os.urandom(8), "little") >> 1
        self.checked = time.monotonic()


class MdOut:
    """Rings of namespace `ns` -> core NATS, one batch read = one message."""

    def __init__(self, ns, rings: list[str], *, prefix: str = PREFIX, batch: int = MAX_BATCH):
        self.ns, self.rings, self.prefix = ns, list(rings), prefix
        self.batch = min(batch, MAX_BATCH)
        self.sent_records = 0
        self.sent_batches = 0
        self.attaches = 0
        self._src: dict[str, _Source] = {}
        self.subjects = {r: subject(r, prefix) for r in self.rings}

    def _attach(self, ring: str) -> _Source | None:
        try:
            src = _Source(self.ns, ring, self.batch)
        except (SegmentNotFound, RingError, FileNotFoundError):
            return None  # its writer has not started yet
        self.attaches += 1
        log.info("reading ring %s (epoch %x)", ring, src.epoch)
        self._src[ring] = src
        return src

    def _drop(self, ring: str) -> None:
        src = self._src.pop(ring, None)
        if src is not None:
            try:
                src.reader.close()
            except RingError:
                pass

    def pump(self, now: float) -> list[tuple[str, bytes]]:
        """One batch of every ring that has records, as (subject, message) to publish."""
        out = []
        for ring in self.rings:
            src = self._src.get(ring) or self._attach(ring)
            if src is None:
                continue
            r = src.reader
            try:
                recs = r.try_read(self.batch)
            except RingError:
                self._drop(ring)
                continue
            k = len(recs)
            if k:
                data = encode_header(k, src.epoch, r.position - k) + recs.tobytes()
                r.release()
                out.append((self.subjects[ring], data))
                self.sent_records += k
                self.sent_batches += 1
            elif now - src.checked > 0.5:
                src.checked = now
                if r.writer_state() != "alive":  # the writer restarted (a new ring) or stopped
                    self._drop(ring)
        return out

    async def run(self, nc, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                batches = self.pump(time.monotonic())
                for subj, data in batches:
                    await nc.publish(subj, data)
                if not batches:
                    await asyncio.sleep(0.0005)
        finally:
            for ring in list(self._src):
                self._drop(ring)

    def statistics(self) -> dict:
        lost = {ring: src.reader.lost for ring, src in self._src.items()}
        return {"sent_records": self.sent_records, "sent_batches": self.sent_batches,
                "attaches": self.attaches, "source_lost": lost}


class _Sink:
    def __init__(self, writer: RingWriter):
        self.writer = writer
        self.epoch: int | None = None
        self.next_pos = 0
        self.received = 0
        self.lost = 0
        self.resets = 0
        self.marked = 0
        self.unmarked: set | None = None   # after a loss: books not yet marked; None = all marked
        self.seen: set = set()


class MdIn:
    """Core NATS -> rings of the same names in namespace `ns` (overwrite policy)."""

    def __init__(self, ns, *, prefix: str = PREFIX, capacity: int = 16384):
        self.ns, self.prefix, self.capacity = ns, prefix, capacity
        self.bad = 0
        self.sinks: dict[str, _Sink] = {}

    def _sink(self, ring: str) -> _Sink:
        sink = self.sinks.get(ring)
        if sink is None:
            path = self.ns.path(ring)
            if os.path.exists(path):  # left by a killed bridge: we are this ring's only writer
                os.unlink(path)
            sink = self.sinks[ring] = _Sink(RingWriter.create(self.ns, ring, EVENT, self.capacity,
                                                              policy="overwrite"))
            log.info("writing ring %s (capacity %d)", ring, self.capacity)
        return sink

    def on_message(self, subj: str, data: bytes) -> None:
        """One batch: count what was lost before it, mark books after a loss, write the ring."""
        try:
            h, recs = decode(data)
        except BatchError as exc:
            self.bad += 1
            log.warning("%s: %s (dropped; %d so far)", subj, exc, self.bad)
            return
        ring = subj[len(self.prefix) + 1:]
        sink = self._sink(ring)
        epoch, first = int(h["epoch"]), int(h["first_pos"])
        if sink.epoch != epoch:
            if sink.epoch is not None:
                sink.resets += 1
                sink.unmarked = set()
            sink.epoch = epoch
        elif first > sink.next_pos:
            sink.lost += first - sink.next_pos
            sink.unmarked = set()
        elif first < sink.next_pos:  # a batch from before: core NATS does not reorder one publisher
            self.bad += 1
            return
        sink.next_pos = first + len(recs)
        sink.received += len(recs)
        if sink.unmarked is not None:
            recs = self._mark(sink, recs)
        sink.writer.write_batch(recs)

    @staticmethod
    def _mark(sink: _Sink, recs: np.ndarray) -> np.ndarray:
        """Flag RESYNCED on the first book of each (provider, instrument) since the loss."""
        books = np.flatnonzero(recs["kind"] == Kind.BOOK)
        if not len(books):
            return recs
        keys = (recs["provider"][books].astype(np.int64) << 32) | recs["instrument"][books].astype(np.int64)
        _, first = np.unique(keys, return_index=True)
        todo = [int(books[i]) for i in first if int(keys[i]) not in sink.unmarked]
        if not todo:
            return recs
        recs = recs.copy()
        flags = recs["flags"]
        flags[todo] = flags[todo] | flags.dtype.type(HeaderFlag.RESYNCED)
        sink.unmarked.update(int(k) for k in keys[first])
        sink.marked += len(todo)
        return recs

    async def run(self, nc, stop: asyncio.Event, rings: list[str] | None = None) -> None:
        async def cb(msg):
            self.on_message(msg.subject, msg.data)

        subs = [await nc.subscribe(subject(r, self.prefix), cb=cb, pending_msgs_limit=65536,
                                   pending_bytes_limit=1 << 30)
                for r in (rings or [">"])]
        try:
            while not stop.is_set():
                for sink in self.sinks.values():
                    sink.writer.heartbeat()
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
        finally:
            for s in subs:
                await s.unsubscribe()
            for sink in self.sinks.values():
                sink.writer.close()

    def statistics(self) -> dict:
        return {"bad": self.bad, "rings": {r: {"received": s.received, "lost": s.lost, "resets": s.resets,
                                              "marked": s.marked} for r, s in self.sinks.items()}}
