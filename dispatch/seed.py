"""A restarted dispatch's starting state: the newest book and ticker still in an ingest ring.

Dispatch reads the ingest rings it finds at start from their newest record: what was
published before it started is stale as a sequence of events (old trades, superseded
books). But a BOOK or TICKER record is its stream's full state, and for a quiet
instrument the newest one, published long ago, is still the current one. So on its
first scan dispatch also reads each live ring back, with a second reader, from the
oldest record still there up to where the first reader starts (`until`), and keeps
the newest BOOK and TICKER of every stream; the core takes them as the streams' first
records (flagged REPLAYED), so they reach subscribers and are kept as the streams'
current state (`dispatch.state`). No trade and no older book is replayed, and the
first reader goes on from `until`: every record is delivered once, and each stream's
sequence goes on from its seed.

Bounded: at most the ring's capacity is read (16k records, 12 MiB, a few ms), once
per ring. The writer does not wait: the overwrite reader returns no torn or rewritten
record (per-slot seqlock) and skips what the writer lapped meanwhile. A record kept
from before a lap may have been superseded by one that was lost, so a lap drops what
was kept so far (a stream is better started by its next record than by a stale book);
records from `until` on are the first reader's and are ignored.
"""

from __future__ import annotations

import numpy as np

from events import EVENT, concat
from shm import Namespace, RingReader

from .state import STATEFUL
from .streams import batch_keys


def newest_state(ns: Namespace, name: str, until: int, batch: int = 4096) -> np.ndarray:
    """The newest STATEFUL record of each stream of ring `name` published before position
    `until`, as a private EVENT array in ring order (empty if none)."""
    reader = RingReader.attach(ns, name, EVENT, start="oldest", batch_capacity=batch)
    parts: list[np.ndarray] = []  # per batch read, its newest records by stream, ring order
    try:
        while reader.position < until:
            lost, at = reader.lost, reader.position
            b = reader.try_read(min(batch, until - at))
            k = len(b)
            if reader.lost != lost:  # lapped: a stream's newer record may be among the lost
                parts.clear()
            if k == 0:
                reader.release()
                if reader.position == at:  # nothing up to `until` after all (replaced)
                    break
                continue
            end = reader.position if reader.policy == "overwrite" else reader.position + k
            take = max(0, min(k, until - (end - k)))  # end - k: where b[0] was (past any lap)
            rows = np.flatnonzero(STATEFUL[b["kind"][:take]])
            if len(rows):
                parts.append(b[np.sort(_newest_rows(b, rows))])  # a copy: b is the reader's
            reader.release()
    finally:
        reader.close()
    if not parts:
        return np.zeros(0, EVENT)
    found = concat(parts)
    return found[np.sort(_newest_rows(found, np.arange(len(found))))]


def _newest_rows(recs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of `rows` of `recs` (ascending), the last row of each stream."""
    keys = batch_keys(recs[rows])
    _, first_rev = np.unique(keys[::-1], return_index=True)
    return rows[len(rows) - 1 - first_rev]
