"""A reader of a ring: its own cursor, any number of them (broadcast)."""

from __future__ import annotations

import time

import numpy as np

from . import layout as L
from . import procs
from ._base import RingBase, check_memory_order, resolve_namespace, validate_header
from .errors import (NoReaderSlot, ReaderEvicted, RingClosed, RingError,
                     UseAfterRelease)
from .segment import Namespace, Segment
from .wait import WaitStrategy, default_reader_strategy

POISON = 0xDE  # every byte of a released batch in debug mode


def lap_resume(w: int, capacity: int) -> int:
    """The position a lapped reader of an overwrite ring goes on from, writer at `w`.

    Not the oldest record still present (`w - capacity`): that slot is the writer's next
    one, so a reader slower than its writer would copy records that are rewritten while
    it copies, drop them, find itself lapped again, and chase the writer's tail without
    ever returning a record (seen: a bridge reading a ring written at 7M records/s sent
    39k/s). A quarter of the ring past the oldest gives it that much headroom; what it
    skips is counted as lost like the rest.
    """
    return w - capacity + capacity // 4


class RingReader(RingBase):
    """One reader's cursor over a ring. Use from one thread of one process.

    `try_read(n)` returns up to `n` records as a view; process them, then `release()`.
    Lossless rings: the view is the ring's own memory (zero copy) and the writer may
    not reuse those slots before `release()`. Overwrite rings: the records are copied
    into this reader's buffer and checked against the per-slot sequence after the
    copy, so a record the writer rewrote meanwhile is never returned; it is counted
    in `lost` with every record the writer lapped.
    """

    @classmethod
    def attach(cls, ns: Namespace | str, name: str, dtype=None, *, start: str | int = "latest",
               batch_capacity: int = 4096, debug: bool | None = None) -> "RingReader":
        """Attach to ring `name` of namespace `ns`, checking the record dtype.

        `start`: "latest" (only what is published from now on), "oldest" (everything
        still in the ring), or an absolute position (resume; clamped to what is left).
        `dtype=None` accepts the segment's own dtype.
        """
        check_memory_order()
        seg = Segment.attach(resolve_namespace(ns).path(name))
        try:
            dtype, capacity, max_readers = validate_header(seg, dtype)
            return cls(seg, dtype, capacity, max_readers, start, batch_capacity, debug)
        except BaseException:
            seg.close()
            raise

    def __init__(self, seg, dtype, capacity, max_readers, start, batch_capacity, debug):
        self._map(seg, dtype, capacity, max_readers)
        self._lossless = self._words[L.H_POLICY] == L.POLICY_LOSSLESS
        self.debug = bool(self._words[L.H_DEBUG]) if debug is None else debug
        self._created_ns = self._words[L.H_CREATED_NS]
        self._writer_pid = self._words[L.H_WRITER_PID]
        self._writer_ticks = self._words[L.H_WRITER_START_TICKS]
        self._batch_capacity = batch_capacity
        self._buf = np.zeros(batch_capacity, dtype)
        self._buf_raw = self._buf.view(np.dtype((np.void, dtype.itemsize)))
        self._pending = 0
        self._released = 0
        self._last_batch: np.ndarray | None = None
        self.lost = 0
        self._closed = False
        self._slot = self._claim_slot(start)
        self._POS = self._slot_word(self._slot, L.R_POSITION)
        self._STATE = self._slot_word(self._slot, L.R_STATE)
        self._HBR = self._slot_word(self._slot, L.R_HEARTBEAT_NS)
        self._LOST = self._slot_word(self._slot, L.R_LOST)
        self.try_read_bytes = self._bind_try_read_bytes()

    def _claim_slot(self, start) -> int:
        pid, ticks = procs.my_identity()
        with self._seg.lock():
            free = None
            for i in range(self.max_readers):
                state = self._words[self._slot_word(i, L.R_STATE)]
                if state == L.SLOT_FREE:
                    free = i
                    break
                spid = self._words[self._slot_word(i, L.R_PID)]
                sticks = self._words[self._slot_word(i, L.R_START_TICKS)]
                if not procs.is_alive(spid, sticks):  # reclaim a dead reader's slot
                    free = i
                    break
            if free is None:
                raise NoReaderSlot(f"{self.name}: all {self.max_readers} reader slots are taken")
            w = self._words[self._W]
            if start == "latest":
                pos = w
            elif start == "oldest":
                pos = max(0, w - self.capacity)
            else:
                pos = max(int(start), w - self.capacity, 0)
                pos = min(pos, w)
            s = lambda field: self._slot_word(free, field)  # noqa: E731
            self._words[s(L.R_PID)] = pid
            self._words[s(L.R_START_TICKS)] = ticks
            self._words[s(L.R_POSITION)] = pos
            self._words[s(L.R_LOST)] = 0
            self._words[s(L.R_HEARTBEAT_NS)] = time.monotonic_ns()
            self._words[s(L.R_STATE)] = L.SLOT_ACTIVE
        self._pos = pos
        return free

    # -- reading -------------------------------------------------------------------

    def try_read(self, max_n: int = 1024) -> np.ndarray:
        """Return up to `max_n` published records (maybe none); call `release()` after."""
        if self._pending:
            raise RingError(f"{self.name}: release() the previous batch before reading again")
        w = self._words[self._W]
        pos = self._pos
        if w == pos:
            return self._buf[:0]
        if self._words[self._STATE] != L.SLOT_ACTIVE:
            self._raise_evicted()
        if self._lossless:
            idx = pos & self._mask
            k = min(w - pos, max_n, self.capacity - idx)
            if not self.debug:
                self._pending = k
                return self.records[idx : idx + k]
            batch = np.array(self.records[idx : idx + k])  # private copy, poisoned on release
            self._pending = k
            self._last_batch = batch
            return batch
        return self._read_overwrite(w, pos, min(max_n, self._batch_capacity))

    def _read_overwrite(self, w: int, pos: int, max_n: int) -> np.ndarray:
        cap = self.capacity
        if w - pos > cap:  # lapped: go on a quarter ring past the oldest (see `lap_resume`)
            pos = self._lapped(w, pos)
        idx = pos & self._mask
        k = min(w - pos, max_n, cap - idx)
        self._buf_raw[:k] = self._raw[idx : idx + k]
        # Valid iff the slot still holds position pos (seq 2*pos+2) after the copy; the
        # writer rewrites slots in position order, so checking the oldest one suffices.
        if self._seq_words[idx] != 2 * pos + 2:
            seqs = self._seqs[idx : idx + k]
            expected = self._odd_even(pos, k)
            bad = np.flatnonzero(seqs != expected)
            drop = int(bad[-1]) + 1
            self._count_lost(drop)
            self._buf_raw[: k - drop] = self._buf_raw[drop:k]
            pos += drop
            k -= drop
        self._pos = pos + k
        self._pending = k
        batch = self._buf[:k]
        self._last_batch = batch
        return batch

    @staticmethod
    def _odd_even(pos: int, k: int) -> np.ndarray:
        return np.arange(pos, pos + k, dtype=np.int64) * 2 + 2

    def _lapped(self, w: int, pos: int) -> int:
        """Where a reader the writer lapped goes on: `lap_resume(w, capacity)`, the records
        skipped counted as lost."""
        resume = lap_resume(w, self.capacity)
        self._count_lost(resume - pos)
        return resume

    def _count_lost(self, n: int) -> None:
        self.lost += n
        self._words[self._LOST] = self.lost

    def release(self) -> None:
        """Give the last batch back: the writer may reuse those slots (lossless)."""
        k = self._pending
        if self.debug and self._last_batch is not None:
            self._last_batch.view(np.uint8)[:] = POISON
            self._last_batch = None
        self._pending = 0
        if self._lossless:
            self._pos += k
        self._words[self._POS] = self._pos
        self._released += 1
        if self._released & 63 == 0:
            self._words[self._HBR] = time.monotonic_ns()

    def read_into(self, out: np.ndarray) -> int:
        """Copy up to len(out) records into `out`, release them, return the count."""
        batch = self.try_read(len(out))
        k = len(batch)
        if k:
            out.view(self._buf_raw.dtype)[:k] = batch.view(self._buf_raw.dtype)
        self.release()
        return k

    def try_read_bytes(self) -> bytes | None:
        """Return a copy of the next record's raw bytes, or None: the fastest single read.

        Needs no `release()`. On an overwrite ring a lapped or rewritten record is
        skipped and counted in `lost`, as in `try_read`. Bound per instance to a
        closure over the ring's views (see `_bind_try_read_bytes`).
        """
        raise AssertionError("replaced in __init__")

    def _bind_try_read_bytes(self):
        words, W, POS, STATE, HBR = self._words, self._W, self._POS, self._STATE, self._HBR
        seqw, mm, base = self._seq_words, self._seg.map, self._rec_off
        size, mask, cap, lossless = self._size, self._mask, self.capacity, self._lossless
        active, monotonic_ns = L.SLOT_ACTIVE, time.monotonic_ns
        ring = self
        seen = [0]  # the writer position last loaded: read up to it before loading again

        def try_read_bytes():
            if ring._pending:
                raise RingError(f"{ring.name}: release() the previous batch before reading again")
            while True:
                pos = ring._pos
                if pos >= seen[0]:
                    w = seen[0] = words[W]
                    if w == pos:
                        return None
                    if not lossless and w - pos > cap:
                        pos = ring._lapped(w, pos)
                    ring._released += 1
                    if ring._released & 15 == 0:
                        words[HBR] = monotonic_ns()
                off = base + (pos & mask) * size
                data = mm[off : off + size]
                ring._pos = pos + 1
                if pos + 1 == seen[0]:
                    words[POS] = pos + 1  # batch done: let a lossless writer reuse it
                if words[STATE] != active:  # after the copy: an evicted reader's slots may be reused
                    ring._raise_evicted()
                if not lossless and seqw[pos & mask] != 2 * pos + 2:
                    ring._count_lost(1)  # rewritten while we copied: lost, never torn
                    seen[0] = 0
                    continue
                return data

        return try_read_bytes

    def wait_read_bytes(self, timeout_s: float | None = None,
                        strategy: WaitStrategy | None = None) -> bytes | None:
        """`try_read_bytes`, waiting up to `timeout_s` for a record (None on timeout).

        The blocking form of the single-record read: while records flow it costs what
        `try_read_bytes` costs; on an empty ring it waits as `wait_read` does. Raises
        RingClosed once the writer has closed the ring and everything is read.
        """
        data = self.try_read_bytes()
        if data is not None:
            return data
        strategy = strategy or default_reader_strategy()
        deadline = None if timeout_s is None else time.monotonic_ns() + int(timeout_s * 1e9)
        while True:
            token = self._words[self._W]  # before the look: a publish after it changes the word
            data = self.try_read_bytes()
            if data is not None:
                strategy.reset()
                return data
            if self._words[L.H_CLOSED]:
                raise RingClosed(f"{self.name}: the writer closed the ring")
            now = time.monotonic_ns()
            self._words[self._HBR] = now
            if deadline is not None and now >= deadline:
                return None
            strategy.idle(self._wake, token)

    def try_read_one(self):
        """Return a copy of the next record, or None."""
        batch = self.try_read(1)
        rec = batch[0].copy() if len(batch) else None
        self.release()
        return rec

    def wait_read(self, max_n: int = 1024, timeout_s: float | None = None,
                  strategy: WaitStrategy | None = None) -> np.ndarray:
        """Like `try_read`, waiting up to `timeout_s` for records (empty view on timeout).

        Raises RingClosed once the writer has closed the ring and everything is read.
        """
        batch = self.try_read(max_n)
        if len(batch):
            if strategy is not None:
                strategy.reset()  # work found: a strategy kept across calls starts over
            return batch
        self.release()
        strategy = strategy or default_reader_strategy()
        deadline = None if timeout_s is None else time.monotonic_ns() + int(timeout_s * 1e9)
        while True:
            token = self._words[self._W]
            batch = self.try_read(max_n)
            if len(batch):
                strategy.reset()
                return batch
            self.release()
            if self._words[L.H_CLOSED]:
                raise RingClosed(f"{self.name}: the writer closed the ring")
            now = time.monotonic_ns()
            self._words[self._HBR] = now
            if deadline is not None and now >= deadline:
                return self._buf[:0]
            strategy.idle(self._wake, token)

    def wait(self, timeout_s: float, strategy: WaitStrategy | None = None) -> bool:
        """Wait up to `timeout_s` until there is a record to read, reading nothing: True if
        there is one, False on timeout or once the writer has closed the ring.

        For a loop that reads several rings (it parks on one, bounded, and then looks at
        all); the wake-up is the writer's publish, as in `wait_read`.
        """
        strategy = strategy or default_reader_strategy()
        deadline = time.monotonic_ns() + int(timeout_s * 1e9)
        while True:
            token = self._words[self._W]
            if token != self._pos:
                strategy.reset()
                return True
            if self._words[L.H_CLOSED]:
                return False
            now = time.monotonic_ns()
            self._words[self._HBR] = now
            if now >= deadline:
                return False
            strategy.idle(self._wake, token)

    def check(self, batch: np.ndarray) -> np.ndarray:
        """Debug mode: raise UseAfterRelease if `batch` was released (it is poisoned)."""
        raw = batch.view(np.uint8)
        if len(raw) and (raw == POISON).all():
            raise UseAfterRelease(f"{self.name}: a released batch was used")
        return batch

    def _raise_evicted(self):
        raise ReaderEvicted(
            f"{self.name}: this reader (slot {self._slot}) was evicted by the writer at "
            f"position {self._pos}; re-attach and resume from a journal")

    # -- state ---------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Next position this reader will read."""
        return self._pos

    def available(self) -> int:
        """Records published and not yet read (may exceed capacity when lapped)."""
        return self._words[self._W] - self._pos

    def writer_state(self) -> str:
        """"alive", "closed", "dead" (writer process gone) or "replaced" (new segment)."""
        if self._seg.replaced():
            return "replaced"
        if self._words[L.H_CLOSED]:
            return "closed"
        if not procs.is_alive(self._writer_pid, self._writer_ticks):
            return "dead"
        return "alive"

    def writer_heartbeat_age_ns(self) -> int:
        return time.monotonic_ns() - self._words[self._HB]

    def statistics(self) -> dict:
        return {"name": self.name, "policy": self.policy, "position": self._pos,
                "available": self.available(), "lost": self.lost, "slot": self._slot}

    def close(self) -> None:
        """Free this reader's slot and unmap. Never removes the segment's name."""
        if self._closed:
            return
        self._closed = True
        with self._seg.lock():
            if self._words[self._STATE] == L.SLOT_ACTIVE:
                self._words[self._STATE] = L.SLOT_FREE
        self._last_batch = None
        self.try_read_bytes = None  # the closure holds views of the mapping
        self._buf = self._buf_raw = None  # type: ignore[assignment]
        self._release_views()
        self._seg.close()

    def __enter__(self) -> "RingReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
