"""What the writer and the readers of a ring share: the mapped segment and its views.

Memory ordering. The publish protocol is "write the records, then store the writer
position" and, on the reader side, "load the position, then read the records". That is
safe without fences on x86-64 only (TSO: stores are not reordered with older stores,
loads not with older loads), and because each position store is one aligned 8-byte
store (a memoryview item assignment of format 'q' compiles to a single `mov`). On a
weakly ordered CPU (ARM64) it is not: `check_memory_order()` refuses to run there.
`tests/shm/test_ordering.py` checks both the platform guard and the store alignment.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time

import numpy as np
import orjson

from . import layout as L
from .errors import LayoutMismatch, RingError
from .segment import Namespace, Segment
from .wait import Wake

STRONG_ORDER_MACHINES = ("x86_64", "AMD64", "i686", "i386")


def check_memory_order() -> None:
    """Refuse to run where stores can be reordered (the publish would need fences)."""
    machine = platform.machine()
    if machine not in STRONG_ORDER_MACHINES and os.environ.get("MELTICA_UNSAFE_WEAK_ORDER") != "1":
        raise RingError(
            f"shm rings rely on x86-64 store ordering; this machine is {machine!r}. "
            "Set MELTICA_UNSAFE_WEAK_ORDER=1 only for single-process testing."
        )


def dtype_descr(dtype: np.dtype) -> bytes:
    """A stable text form of a record dtype (names, formats, offsets, itemsize)."""
    dtype = np.dtype(dtype)
    return orjson.dumps(_describe(dtype))


def _describe(dtype: np.dtype):
    if dtype.fields is None:
        if dtype.subdtype is not None:
            base, shape = dtype.subdtype
            return {"sub": _describe(base), "shape": list(shape)}
        return dtype.str
    return {
        "names": list(dtype.names),
        "formats": [_describe(dtype.fields[n][0]) for n in dtype.names],
        "offsets": [dtype.fields[n][1] for n in dtype.names],
        "itemsize": dtype.itemsize,
    }


def _rebuild(desc) -> np.dtype:
    if isinstance(desc, str):
        return np.dtype(desc)
    if "sub" in desc:
        return np.dtype((_rebuild(desc["sub"]), tuple(desc["shape"])))
    return np.dtype({
        "names": desc["names"],
        "formats": [_rebuild(f) for f in desc["formats"]],
        "offsets": desc["offsets"],
        "itemsize": desc["itemsize"],
    })


def dtype_from_descr(descr: bytes) -> np.dtype:
    return _rebuild(orjson.loads(descr))


def dtype_hash(descr: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(descr, digest_size=8).digest(), "little") >> 1


def resolve_namespace(ns: Namespace | str) -> Namespace:
    return ns if isinstance(ns, Namespace) else Namespace(ns)


class RingBase:
    """Maps a segment and builds the views both ends use. Not for direct use."""

    def _map(self, seg: Segment, dtype: np.dtype, capacity: int, max_readers: int) -> None:
        self._seg = seg
        self.dtype = dtype
        self.capacity = capacity
        self.max_readers = max_readers
        self._mask = capacity - 1
        buf = seg.map
        seqs_off = L.seqs_offset(max_readers)
        rec_off = L.records_offset(max_readers, capacity)
        # int64 words of the fixed header (positions, slots); item stores are single movs.
        self._words = memoryview(buf)[:L.descr_offset(max_readers)].cast("q")
        self._seqs = np.ndarray((capacity,), np.int64, buf, seqs_off)
        self._seq_words = memoryview(buf)[seqs_off:rec_off].cast("q")
        self.records = np.ndarray((capacity,), dtype, buf, rec_off)
        self._raw = self.records.view(np.dtype((np.void, dtype.itemsize)))
        self._size = dtype.itemsize
        self._rec_off = rec_off
        self._rec_bytes = memoryview(buf)[rec_off : rec_off + capacity * dtype.itemsize]
        self._W = L.word(L.WRITER_POSITION_OFFSET)
        self._HB = L.word(L.WRITER_HEARTBEAT_OFFSET)
        base_addr = self._seqs.__array_interface__["data"][0] - seqs_off
        self._wake = Wake(base_addr + L.WRITER_POSITION_OFFSET, self._words,
                          L.word(L.WAKE_HINT_OFFSET))

    def _slot_word(self, i: int, field: int) -> int:
        return L.word(L.reader_slot_offset(i)) + field

    def _header(self, index: int) -> int:
        return self._words[index]

    @property
    def name(self) -> str:
        return os.path.basename(self._seg.path)

    @property
    def policy(self) -> str:
        return L.POLICY_NAMES[self._words[L.H_POLICY]]

    def writer_position(self) -> int:
        return self._words[self._W]

    def reader_slots(self) -> list[dict]:
        """Every reader slot in use: state, pid, position, lost, heartbeat age."""
        out = []
        now = time.monotonic_ns()
        names = {L.SLOT_ACTIVE: "active", L.SLOT_EVICTED: "evicted"}
        for i in range(self.max_readers):
            state = self._words[self._slot_word(i, L.R_STATE)]
            if state == L.SLOT_FREE:
                continue
            out.append({
                "slot": i,
                "state": names.get(state, str(state)),
                "pid": self._words[self._slot_word(i, L.R_PID)],
                "position": self._words[self._slot_word(i, L.R_POSITION)],
                "lost": self._words[self._slot_word(i, L.R_LOST)],
                "heartbeat_age_ns": now - self._words[self._slot_word(i, L.R_HEARTBEAT_NS)],
            })
        return out

    def _release_views(self) -> None:
        """Drop every view of the mapping so that it can be unmapped."""
        self._words.release()
        self._seq_words.release()
        self._rec_bytes.release()
        self._seqs = self.records = self._raw = None  # type: ignore[assignment]
        self._wake = None  # type: ignore[assignment]


def validate_header(seg: Segment, dtype: np.dtype | None) -> tuple[np.dtype, int, int]:
    """Check magic, layout version and dtype; return (dtype, capacity, max_readers)."""
    head = memoryview(seg.map)[: L.HEADER_WORDS * L.WORD].cast("q")
    try:
        magic, version = head[L.H_MAGIC], head[L.H_LAYOUT_VERSION]
        if magic != L.MAGIC:
            raise LayoutMismatch(f"{seg.path}: not a ring segment: magic={magic:#x}, expected {L.MAGIC:#x}")
        if version != L.LAYOUT_VERSION:
            raise LayoutMismatch(
                f"{seg.path}: layout version differs: segment={version}, ours={L.LAYOUT_VERSION}")
        capacity, max_readers = head[L.H_CAPACITY], head[L.H_MAX_READERS]
        d_off = L.descr_offset(max_readers)
        descr = bytes(seg.map[d_off : d_off + head[L.H_DESCR_LEN]])
        theirs = dtype_from_descr(descr)
        if dtype is not None:
            ours = dtype_descr(dtype)
            if dtype_hash(ours) != head[L.H_DTYPE_HASH] or ours != descr:
                raise LayoutMismatch(
                    f"{seg.path}: record dtype differs: segment has {theirs} "
                    f"({theirs.itemsize} bytes), caller expects {np.dtype(dtype)} "
                    f"({np.dtype(dtype).itemsize} bytes)")
        return (np.dtype(dtype) if dtype is not None else theirs), capacity, max_readers
    finally:
        head.release()
