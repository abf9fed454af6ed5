"""Errors of the ring library, by cause.

    RingError
    ├── LayoutMismatch     attach found another layout, version or record dtype
    ├── SegmentNotFound    no segment of that name (never created, or cleaned up)
    ├── SegmentExists      create found a segment of that name already there
    ├── RingClosed         the writer closed the ring, or this end was closed
    ├── RingTimeout        a blocking write or read ran out of time
    ├── NoReaderSlot       every reader slot of the ring is taken
    ├── ReaderEvicted      the writer evicted this reader (dead pid or stale heartbeat)
    └── UseAfterRelease    a released slot was used (debug mode only)

The ring library is generic and imports nothing else of ours, so these do not derive
from the product's `MelticaError`; callers wrap them where a cause must cross layers.
"""


class RingError(Exception):
    """Root of every error raised by `shm`."""


class LayoutMismatch(RingError):
    """The segment's magic, layout version or record dtype differs from the caller's."""


class SegmentNotFound(RingError):
    """No shared-memory segment of that name exists."""


class SegmentExists(RingError):
    """A segment of that name exists already (a live writer, or a leftover: sweep it)."""


class RingClosed(RingError):
    """The ring was closed: by its writer (seen by readers) or by this end."""


class RingTimeout(RingError):
    """A blocking call did not complete within its timeout."""


class NoReaderSlot(RingError):
    """Every reader slot is taken by a live reader."""


class ReaderEvicted(RingError):
    """The writer evicted this reader: its pid looked dead or its heartbeat was stale."""


class UseAfterRelease(RingError):
    """A record of a released batch was read (debug mode poisons released batches)."""
