"""Shared-memory rings of fixed-layout numpy records, between processes.

One writer, many readers (broadcast), each reader with its own cursor. Positions only
grow; slot index = position & (capacity - 1). Two overflow policies: "lossless" (the
writer never overwrites an unread record; dead readers are evicted) and "overwrite"
(the writer never waits; lapped readers count exactly what they lost).

    from shm import Namespace, RingWriter, RingReader
    ns = Namespace("demo")
    w = RingWriter.create(ns, "ticks", np.dtype([("seq", "<i8"), ("px", "<i8")]), 1024)
    r = RingReader.attach(ns, "ticks", w.dtype, start="oldest")
    slots = w.try_claim(2); slots["seq"] = [1, 2]; w.publish()
    batch = r.try_read(); ...; r.release()
    r.close(); w.close(); ns.cleanup()

This package is generic: it imports numpy, orjson and the standard library only.
Layout: `shm.layout`. Errors: `shm.errors`. Wait strategies: `shm.wait`.
"""

from .errors import (LayoutMismatch, NoReaderSlot, ReaderEvicted, RingClosed, RingError,
                     RingTimeout, SegmentExists, SegmentNotFound, UseAfterRelease)
from .reader import RingReader
from .segment import Namespace
from .wait import BackoffSleep, BusySpin, PacedPark, SpinPark, SpinYield, WaitStrategy
from .writer import RingWriter

__all__ = [
    "Namespace", "RingWriter", "RingReader",
    "WaitStrategy", "BusySpin", "SpinYield", "BackoffSleep", "SpinPark", "PacedPark",
    "RingError", "LayoutMismatch", "SegmentNotFound", "SegmentExists", "RingClosed",
    "RingTimeout", "NoReaderSlot", "ReaderEvicted", "UseAfterRelease",
]
