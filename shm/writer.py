"""The one writer of a ring. Create it in the process that owns the data."""

from __future__ import annotations

import os
import time

import numpy as np

from . import layout as L
from . import procs
from ._base import (RingBase, check_memory_order, dtype_descr, dtype_hash,
                    resolve_namespace)
from .errors import RingClosed, RingTimeout
from .segment import Namespace, Segment
from .wait import WaitStrategy, default_writer_strategy


def _remove_if_stale(path: str) -> None:
    from .cleanup import writer_of
    owner = writer_of(path)
    if owner is not None and not procs.is_alive(*owner):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class RingWriter(RingBase):
    """Single-writer ring: claim slots, fill them, publish. One writer process.

    Policies (fixed at creation):
      - "lossless": never overwrites a record an active reader has not released.
        `try_claim`/`try_write` return less/False when full; `write` waits, then raises.
        A reader whose process died, or whose heartbeat is older than
        `reader_timeout_ns`, is evicted and stops holding the writer back.
      - "overwrite": never waits. A lapped reader skips ahead and counts its loss.
    """

    @classmethod
    def create(cls, ns: Namespace | str, name: str, dtype, capacity: int, *,
               policy: str = "overwrite", max_readers: int = 16, debug: bool = False,
               reader_timeout_ns: int | None = 10_000_000_000,
               replace_stale: bool = True) -> "RingWriter":
        """Create ring `name` in namespace `ns`.

        A segment of that name whose writer process is gone (a crash) is replaced when
        `replace_stale`; its readers see `writer_state() == "replaced"` and re-attach.
        A segment with a live writer is never touched: SegmentExists.
        """
        check_memory_order()
        dtype = np.dtype(dtype)
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2: capacity={capacity}")
        if policy not in L.POLICY_CODES:
            raise ValueError(f"policy must be one of {sorted(L.POLICY_CODES)}: policy={policy!r}")
        if not 1 <= max_readers <= 256:
            raise ValueError(f"max_readers must be in 1..256: max_readers={max_readers}")
        descr = dtype_descr(dtype)
        if len(descr) > L.DESCR_BYTES:
            raise ValueError(f"record dtype description too long: {len(descr)} > {L.DESCR_BYTES} bytes")
        ns = resolve_namespace(ns)
        size = L.segment_size(max_readers, capacity, dtype.itemsize)
        path = ns.path(name)
        if replace_stale:
            _remove_if_stale(path)
        seg = Segment.create(path, size)
        pid, ticks = procs.my_identity()
        h = memoryview(seg.map)[: L.HEADER_WORDS * L.WORD].cast("q")
        for index, value in (
            (L.H_LAYOUT_VERSION, L.LAYOUT_VERSION), (L.H_CAPACITY, capacity),
            (L.H_RECORD_SIZE, dtype.itemsize), (L.H_MAX_READERS, max_readers),
            (L.H_POLICY, L.POLICY_CODES[policy]), (L.H_DTYPE_HASH, dtype_hash(descr)),
            (L.H_WRITER_PID, pid), (L.H_WRITER_START_TICKS, ticks),
            (L.H_CREATED_NS, time.time_ns()), (L.H_DESCR_LEN, len(descr)),
            (L.H_SEQS_OFFSET, L.seqs_offset(max_readers)),
            (L.H_RECORDS_OFFSET, L.records_offset(max_readers, capacity)),
            (L.H_DEBUG, int(debug)),
        ):
            h[index] = value
        d_off = L.descr_offset(max_readers)
        seg.map[d_off : d_off + len(descr)] = descr
        h[L.H_MAGIC] = L.MAGIC  # last: a header with a magic is complete
        h.release()
        try:
            seg.commit()
        except BaseException:
            seg.close()
            raise
        return cls(seg, dtype, capacity, max_readers, policy, reader_timeout_ns)

    def __init__(self, seg: Segment, dtype, capacity, max_readers, policy, reader_timeout_ns):
        self._map(seg, dtype, capacity, max_readers)
        self._lossless = policy == "lossless"
        self._reader_timeout_ns = reader_timeout_ns
        self._pos = 0
        self._claim_pos = 0
        self._claimed = 0
        self._gate = 0  # lower bound of the slowest active reader's position (lossless)
        self._limit = capacity  # positions below gate + capacity are free to write
        self._odd = np.arange(capacity, dtype=np.int64) * 2 + 1
        self._hint = L.word(L.WAKE_HINT_OFFSET)
        self.evicted: list[dict] = []  # readers evicted so far, for telemetry
        self._closed = False
        self.try_write_bytes = self._bind_try_write_bytes()
        self.heartbeat()

    # -- claiming and publishing ---------------------------------------------------

    def try_claim(self, n: int) -> np.ndarray:
        """Claim up to `n` contiguous slots; return them as a view to fill (maybe empty).

        The view never crosses the end of the array, so it may be shorter than `n`
        (claim again after publishing). Lossless: shorter still when readers lag.
        """
        if self._claimed:
            raise RuntimeError("publish (or abandon) the previous claim before claiming again")
        pos = self._pos
        if self._lossless:
            free = self.capacity - (pos - self._gate)
            if free < n:
                free = self.capacity - (pos - self._refresh_gate())
            n = min(n, free)
        idx = pos & self._mask
        k = min(n, self.capacity - idx)
        if k <= 0:
            return self.records[:0]
        if not self._lossless:
            np.add(self._odd[:k], 2 * pos, out=self._seqs[idx : idx + k])  # odd: being written
        self._claim_pos = pos
        self._claimed = k
        return self.records[idx : idx + k]

    def publish(self, count: int | None = None) -> None:
        """Publish the first `count` claimed slots (all by default); abandon the rest."""
        k = self._claimed if count is None else count
        if self._claimed == 0 and k == 0:
            return
        if not 0 <= k <= self._claimed:
            raise ValueError(f"publish count out of range: count={count}, claimed={self._claimed}")
        pos = self._claim_pos
        idx = pos & self._mask
        if not self._lossless:
            self._seqs[idx : idx + self._claimed] += 1  # even: stable (abandoned slots too)
        self._claimed = 0
        self._pos = pos + k
        self._words[self._W] = pos + k  # 2. cursor, after the payload (x86-64 store order)
        if self._words[self._hint]:
            self._wake.wake_all()

    def abandon(self) -> None:
        """Drop the current claim without publishing anything."""
        self.publish(0)

    # -- convenience ---------------------------------------------------------------

    def try_write(self, record) -> bool:
        """Write one record (numpy structured scalar, 1-element array, or raw bytes).

        False if a lossless ring is full. Raw bytes of the record size take the fast
        path of `try_write_bytes`.
        """
        if isinstance(record, (bytes, bytearray, memoryview)):
            return self.try_write_bytes(record)
        pos = self._pos
        if self._lossless:
            if pos >= self._limit and pos - self._refresh_gate() >= self.capacity:
                return False
        else:
            self._seq_words[pos & self._mask] = 2 * pos + 1
        self.records[pos & self._mask] = record  # 1. payload
        if not self._lossless:
            self._seq_words[pos & self._mask] = 2 * pos + 2
        self._pos = pos + 1
        self._words[self._W] = pos + 1  # 2. cursor, after the payload (x86-64 store order)
        if self._words[self._hint]:
            self._wake.wake_all()
        return True

    def try_write_bytes(self, data) -> bool:
        """Write one record given as bytes-like of the record size: the fastest single write.

        Bound per instance to a closure over the ring's views (`_bind_try_write_bytes`):
        one record per call is where Python's attribute lookups cost the most.
        """
        raise AssertionError("replaced in __init__")

    def _bind_try_write_bytes(self):
        words, W, hint, seqw = self._words, self._W, self._hint, self._seq_words
        mm, base = self._seg.map, self._rec_off  # mmap slicing: the cheapest byte copy
        size, mask, cap = self._size, self._mask, self.capacity
        refresh, wake = self._refresh_gate, self._wake.wake_all
        ring = self

        def try_write_lossless(data) -> bool:
            pos = ring._pos
            if pos >= ring._limit and pos - refresh() >= cap:
                return False
            off = base + (pos & mask) * size
            mm[off : off + size] = data  # 1. payload
            ring._pos = pos + 1
            words[W] = pos + 1  # 2. cursor, after the payload (x86-64 store order)
            if words[hint]:
                wake()
            return True

        def try_write_overwrite(data) -> bool:
            pos = ring._pos
            idx = pos & mask
            seqw[idx] = 2 * pos + 1  # odd: being written
            off = base + idx * size
            mm[off : off + size] = data  # 1. payload
            seqw[idx] = 2 * pos + 2  # even: stable
            ring._pos = pos + 1
            words[W] = pos + 1  # 2. cursor, after the payload (x86-64 store order)
            if words[hint]:
                wake()
            return True

        return try_write_lossless if self._lossless else try_write_overwrite

    def write(self, record, timeout_s: float | None = None, strategy: WaitStrategy | None = None) -> None:
        """Write one record, waiting while a lossless ring is full; RingTimeout after `timeout_s`."""
        if self.try_write(record):
            return
        self._wait_until(lambda: self.try_write(record), timeout_s, strategy)

    def write_batch(self, records: np.ndarray) -> int:
        """Write as many of `records` as fit now (all, for overwrite); return the count."""
        src = records.view(np.dtype((np.void, self.dtype.itemsize)))
        done = 0
        while done < len(src):
            dst = self.try_claim(len(src) - done)
            k = len(dst)
            if k == 0:
                break
            dst.view(src.dtype)[:] = src[done : done + k]  # raw copy: no per-field work
            self.publish()
            done += k
        return done

    def write_all(self, records: np.ndarray, timeout_s: float | None = None,
                  strategy: WaitStrategy | None = None) -> None:
        """Write every record, waiting for lossless readers; RingTimeout after `timeout_s`."""
        done = self.write_batch(records)
        if done == len(records):
            return
        state = {"done": done}

        def attempt() -> bool:
            state["done"] += self.write_batch(records[state["done"]:])
            return state["done"] == len(records)

        self._wait_until(attempt, timeout_s, strategy)

    def _wait_until(self, attempt, timeout_s, strategy) -> None:
        if self._closed:
            raise RingClosed(f"{self.name}: writer is closed")
        strategy = strategy or default_writer_strategy()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            strategy.idle()
            self.heartbeat()
            if attempt():
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise RingTimeout(
                    f"{self.name}: lossless ring full for {timeout_s}s: position={self._pos}, "
                    f"slowest reader at {self._gate}, readers={self.reader_slots()}")

    # -- readers -------------------------------------------------------------------

    def _refresh_gate(self) -> int:
        """Recompute the slowest active reader's position, evicting dead or stale readers.

        Runs under the segment lock, so a reader attaching at the same time is either
        seen here or sees our position after we release the lock.
        """
        now = time.monotonic_ns()
        with self._seg.lock():
            gate = self._pos
            for i in range(self.max_readers):
                if self._words[self._slot_word(i, L.R_STATE)] != L.SLOT_ACTIVE:
                    continue
                rpos = self._words[self._slot_word(i, L.R_POSITION)]
                if self._pos - rpos >= self.capacity and self._should_evict(i, now):
                    continue
                gate = min(gate, rpos)
        self._gate = gate
        self._limit = gate + self.capacity
        return gate

    def _should_evict(self, i: int, now_ns: int) -> bool:
        pid = self._words[self._slot_word(i, L.R_PID)]
        ticks = self._words[self._slot_word(i, L.R_START_TICKS)]
        age = now_ns - self._words[self._slot_word(i, L.R_HEARTBEAT_NS)]
        if procs.is_alive(pid, ticks):
            if self._reader_timeout_ns is None or age < self._reader_timeout_ns:
                return False
            reason = "heartbeat_stale"
        else:
            reason = "pid_dead"
        self._words[self._slot_word(i, L.R_STATE)] = L.SLOT_EVICTED
        self.evicted.append({"slot": i, "pid": pid, "reason": reason,
                             "position": self._words[self._slot_word(i, L.R_POSITION)],
                             "heartbeat_age_ns": age})
        return True

    # -- lifecycle -----------------------------------------------------------------

    @property
    def position(self) -> int:
        """Records published so far."""
        return self._pos

    def heartbeat(self) -> None:
        """Tell readers this writer is alive. Call from the owner's main loop."""
        self._words[self._HB] = time.monotonic_ns()

    def statistics(self) -> dict:
        return {"name": self.name, "policy": self.policy, "capacity": self.capacity,
                "position": self._pos, "readers": self.reader_slots(),
                "evicted": list(self.evicted)}

    def close(self, unlink: bool = True) -> None:
        """Mark the ring closed for readers, unmap it, and (by default) remove its name."""
        if self._closed:
            return
        self._closed = True
        self.try_write_bytes = None  # the closure holds views of the mapping
        self._words[L.H_CLOSED] = 1
        if self._words[self._hint]:
            self._wake.wake_all()
        if unlink:
            self._seg.unlink()
        self._release_views()
        self._seg.close()

    def __enter__(self) -> "RingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
