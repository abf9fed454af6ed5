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

The programs (`run_out`, `run_in`) speak the NATS protocol themselves (`bridge.wire`:
no copy of a batch in Python on either side); `MdOut.run` / `MdIn.run` are the same
cores over nats-py, for the bridges that carry a consumer's ring beside its control
(`bridge.ctl`).

A batch of 0 records says "the source ring is gone" (its writer closed, died or was
replaced): `MdOut(announce_gone=True)` sends it, and `MdIn` closes its ring of that name,
so the readers there see the writer gone exactly as on the source host. The bridge of
remote consumers (`bridge.ctl`) uses it for `consumer.<name>.md`: a dispatch that
restarts or releases the consumer closes the consumer's ring on both hosts, and the SDK
there registers again, as it does locally.
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

from .wire import NatsWireError

log = logging.getLogger("bridge.md")

PREFIX = "meltica.ring"
MAGIC = int.from_bytes(b"MDB1", "little")
LAYOUT_VERSION = 1
BATCH_HEADER = np.dtype([("magic", "<u4"), ("version", "<u2"), ("schema", "<u2"), ("record_bytes", "<u4"),
                         ("count", "<u4"), ("epoch", "<u8"), ("first_pos", "<u8")])
HEADER_BYTES = BATCH_HEADER.itemsize
# 1024 records (786 KB) stay under nats-server's default max_payload of 1 MB
MAX_BATCH = 1024
# md-out with nothing to send parks on its ring's futex (woken by the next publish) at most
# this long: it answers the server's PINGs and notices a restarted writer in between
IDLE_WAIT_S = 0.05


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
    def __init__(self, ns, ring: str, batch: int, start: str):
        self.reader = RingReader.attach(ns, ring, EVENT, start=start, batch_capacity=batch)
        self.lossless = self.reader.statistics()["policy"] == "lossless"
        self.epoch = int.from_bytes(os.urandom(8), "little") >> 1
        self.checked = time.monotonic()


class MdOut:
    """Rings of namespace `ns` -> core NATS, one batch read = one message.

    `rings` are read from "latest" and attached again whenever their writer restarts;
    `add(ring)` reads one more ring from now until its writer is gone (then it is
    forgotten, and with `announce_gone` a 0-record batch tells the receivers).
    """

    def __init__(self, ns, rings: list[str], *, prefix: str = PREFIX, batch: int = MAX_BATCH,
                 announce_gone: bool = False):
        self.ns, self.rings, self.prefix = ns, list(rings), prefix
        self.announce_gone = announce_gone
        self.batch = min(batch, MAX_BATCH)
        self._added: set[str] = set()
        self._gone: list[tuple[str, bytes]] = []
        self.sent_records = 0
        self.sent_batches = 0
        self.attaches = 0
        self._src: dict[str, _Source] = {}
        self._turn = 0
        self.subjects = {r: subject(r, prefix) for r in self.rings}

    def add(self, ring: str) -> None:
        """Read `ring` from now on (attached before this returns), until its writer is gone.

        Idempotent. What the ring held before is not sent: the caller adds it when what
        comes next matters (ctl: at a register result, which the consumer has already).
        """
        if ring not in self._added:
            self._added.add(ring)
            self.rings.append(ring)
            self.subjects[ring] = subject(ring, self.prefix)
            if self._attach(ring) is None:
                self._drop(ring)  # gone already: say so

    def announce(self, ring: str) -> None:
        """Say that `ring` is gone, to whoever receives it (a restarted bridge forgot what it sent)."""
        self._gone.append((subject(ring, self.prefix), (encode_header(0, 0, 0),)))

    def _attach(self, ring: str) -> _Source | None:
        try:
            src = _Source(self.ns, ring, self.batch, "latest")
        except (SegmentNotFound, RingError, FileNotFoundError):
            return None  # its writer has not started yet
        self.attaches += 1
        log.info("reading ring %s (epoch %x)", ring, src.epoch)
        self._src[ring] = src
        return src

    def _drop(self, ring: str) -> None:
        src = self._src.pop(ring, None)
        if self.announce_gone:
            head = encode_header(0, 0, 0) if src is None else encode_header(0, src.epoch, src.reader.position)
            self._gone.append((self.subjects[ring], (head,)))
        if src is not None:
            try:
                src.reader.close()
            except RingError:
                pass
        if ring in self._added:  # an added ring is read once: its next writer is added again
            self._added.discard(ring)
            self.rings.remove(ring)

    def pump(self, now: float) -> list[tuple[str, tuple]]:
        """One batch of every ring that has records, as (subject, (header, records)) to publish
        (records: a uint8 view of the reader's batch, valid until the next `pump`)."""
        out, self._gone = self._gone, []
        for ring in list(self.rings):
            src = self._src.get(ring) or self._attach(ring)
            if src is None:
                if ring in self._added:  # gone (dropped, and a writer of that name appeared since)
                    self._drop(ring)
                continue
            r = src.reader
            try:
                r.release()  # the batch of the last pump is sent: its slots go back (lossless)
                recs = r.try_read(self.batch)
            except RingError:
                self._drop(ring)
                continue
            k = len(recs)
            if k:
                first = r.position if src.lossless else r.position - k  # lossless: moved on release
                out.append((self.subjects[ring], (encode_header(k, src.epoch, first), recs.view(np.uint8))))
                self.sent_records += k
                self.sent_batches += 1
            elif now - src.checked > 0.5:
                src.checked = now
                if r.writer_state() != "alive":  # the writer restarted (a new ring) or stopped
                    self._drop(ring)
        gone, self._gone = self._gone, []
        return out + gone

    def wait(self, timeout_s: float) -> None:
        """After a `pump` that found nothing: park until a record is published (on one ring,
        each in turn when there are several, as dispatch does), at most `timeout_s`."""
        sources = list(self._src.values())
        if not sources:
            time.sleep(min(timeout_s, 0.01))  # no ring yet: look for its writer again soon
            return
        self._turn = (self._turn + 1) % len(sources)
        try:
            sources[self._turn].reader.wait(timeout_s if len(sources) == 1 else min(timeout_s, 0.0005))
        except RingError:
            pass  # the next pump finds out what happened to that ring

    def close(self) -> None:
        """Detach from every ring (no notice is sent: the receivers keep what they have)."""
        self.announce_gone = False
        for ring in list(self._src):
            self._drop(ring)

    async def run(self, nc, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                batches = self.pump(time.monotonic())
                for subj, parts in batches:
                    await nc.publish(subj, b"".join(parts))
                if not batches:
                    await asyncio.sleep(0.0005)  # an event loop must not park in a futex
        finally:
            self.close()

    def statistics(self) -> dict:
        lost = {ring: src.reader.lost for ring, src in self._src.items()}
        return {"sent_records": self.sent_records, "sent_batches": self.sent_batches,
                "attaches": self.attaches, "source_lost": lost}


class _Sink:
    def __init__(self):
        self.writer: RingWriter | None = None   # None: the source ring is gone (until its next batch)
        self.epoch: int | None = None
        self.next_pos = 0
        self.received = 0
        self.lost = 0
        self.resets = 0
        self.gone = 0
        self.marked = 0
        self.unmarked: set | None = None   # after a loss: books not yet marked; None = all marked


class MdIn:
    """Core NATS -> rings of the same names in namespace `ns` (overwrite policy)."""

    def __init__(self, ns, *, prefix: str = PREFIX, capacity: int = 16384):
        self.ns, self.prefix, self.capacity = ns, prefix, capacity
        self.bad = 0
        self.sinks: dict[str, _Sink] = {}
        self._subs: dict[str, object] = {}

    def ensure(self, ring: str, capacity: int | None = None) -> _Sink:
        """The local ring `ring`, created now if it is not open (we are its only writer)."""
        sink = self.sinks.get(ring)
        if sink is None:
            sink = self.sinks[ring] = _Sink()
        if sink.writer is None:
            path = self.ns.path(ring)
            if os.path.exists(path):  # left by a killed bridge: we are this ring's only writer
                os.unlink(path)
            cap = capacity or self.capacity
            sink.writer = RingWriter.create(self.ns, ring, EVENT, cap, policy="overwrite")
            sink.epoch, sink.next_pos = None, 0
            log.info("writing ring %s (capacity %d)", ring, cap)
        return sink

    def close(self, ring: str) -> None:
        """Close (and unlink) local ring `ring`: its readers see the writer gone."""
        sink = self.sinks.get(ring)
        if sink is not None and sink.writer is not None:
            sink.writer.close()
            sink.writer = None
            sink.gone += 1
            log.info("ring %s gone at the source: closed here", ring)

    def on_message(self, subj: str, data: bytes) -> None:
        """One batch: count what was lost before it, mark books after a loss, write the ring."""
        try:
            h, recs = decode(data)
        except BatchError as exc:
            self.bad += 1
            log.warning("%s: %s (dropped; %d so far)", subj, exc, self.bad)
            return
        ring = subj[len(self.prefix) + 1:]
        if not len(recs):  # the source ring is gone
            self.close(ring)
            return
        sink = self.ensure(ring)
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
        if not recs.flags.writeable:  # bytes of nats-py; the wire's receive buffer is ours to change
            recs = recs.copy()
        flags = recs["flags"]
        flags[todo] = flags[todo] | flags.dtype.type(HeaderFlag.RESYNCED)
        sink.unmarked.update(int(k) for k in keys[first])
        sink.marked += len(todo)
        return recs

    async def follow(self, nc, ring: str = ">") -> None:
        """Subscribe to ring `ring`'s batches (">": every ring sent); idempotent."""
        if ring in self._subs:
            return

        async def cb(msg):
            self.on_message(msg.subject, msg.data)

        self._subs[ring] = await nc.subscribe(subject(ring, self.prefix), cb=cb, pending_msgs_limit=65536,
                                              pending_bytes_limit=1 << 30)

    def heartbeat(self) -> None:
        for sink in self.sinks.values():
            if sink.writer is not None:
                sink.writer.heartbeat()

    def close_rings(self) -> None:
        for sink in self.sinks.values():
            if sink.writer is not None:
                sink.writer.close()
                sink.writer = None

    async def close_all(self) -> None:
        for s in self._subs.values():
            try:
                await s.unsubscribe()
            except Exception:  # a closed connection: nothing left to unsubscribe
                pass
        self._subs.clear()
        self.close_rings()

    async def run(self, nc, stop: asyncio.Event, rings: list[str] | None = None) -> None:
        for r in rings or [">"]:
            await self.follow(nc, r)
        try:
            while not stop.is_set():
                self.heartbeat()
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.close_all()

    def statistics(self) -> dict:
        return {"bad": self.bad, "rings": {r: {"received": s.received, "lost": s.lost, "resets": s.resets,
                                              "marked": s.marked, "gone": s.gone} for r, s in self.sinks.items()}}


# -- the programs md-out and md-in: blocking loops on the raw wire (bridge.wire) -----------

def _connected(connect, stop, what: str):
    """A new connection from `connect()`, retried until it comes or `stop()`; None if stopped."""
    delay = 0.05
    while not stop():
        try:
            return connect()
        except NatsWireError as exc:
            log.warning("%s: %s; retrying", what, exc)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    return None


def run_out(worker: MdOut, connect, stop) -> None:
    """md-out: publish every batch read, until `stop()`; a lost connection is made again
    (what the rings held meanwhile is lost at the source and counted by the receiver)."""
    conn, serviced = None, 0.0
    try:
        while not stop():
            if conn is None:
                conn = _connected(connect, stop, "md-out")
                if conn is None:
                    break
            now = time.monotonic()
            batches = worker.pump(now)
            try:
                for subj, parts in batches:
                    conn.publish(subj, *parts)
                if now - serviced > 0.1:  # PINGs and -ERRs of the server
                    serviced = now
                    conn.service()
            except NatsWireError as exc:
                log.warning("md-out: %s; reconnecting", exc)
                conn.close()
                conn = None
                continue
            if not batches:
                worker.wait(IDLE_WAIT_S)
    finally:
        worker.close()
        if conn is not None:
            conn.close()


def run_in(worker: MdIn, connect, stop, rings: list[str] | None = None) -> None:
    """md-in: every batch of `rings` (default: all) into the local rings, until `stop()`."""
    conn, beat = None, 0.0
    try:
        while not stop():
            if conn is None:
                conn = _connected(connect, stop, "md-in")
                if conn is None:
                    break
                for r in rings or [">"]:
                    conn.subscribe(subject(r, worker.prefix))
            try:
                conn.pump(worker.on_message, 0.1)
            except NatsWireError as exc:
                log.warning("md-in: %s; reconnecting", exc)
                conn.close()
                conn = None
            now = time.monotonic()
            if now - beat > 0.5:
                beat = now
                worker.heartbeat()
    finally:
        worker.close_rings()
        if conn is not None:
            conn.close()
