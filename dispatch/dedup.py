"""De-duplication by `event_id` (and `merge_id`) in bounded memory.

A direct-mapped table of 2**bits recent ids: slot = id & mask. A record is a duplicate
when its slot holds its id (seen before) or an earlier row of the same batch has its
id. Memory is fixed (8 bytes per slot); an id is forgotten when a newer id takes its
slot, so a duplicate arriving after ~2**bits other events may pass — the ordering
stage then drops it as late. Ids are never 0 (events.event_id), so 0 marks a free slot.
"""

from __future__ import annotations

import numpy as np


class Deduper:
    """Recently seen event ids. One dispatch thread."""

    def __init__(self, bits: int = 20):
        self.mask = np.uint64((1 << bits) - 1)
        self.table = np.zeros(1 << bits, np.uint64)
        self._first = np.zeros(1 << bits, np.int32)  # scratch: first row of a slot in a batch
        self.dropped = 0

    def fresh(self, ids: np.ndarray) -> np.ndarray | None:
        """Mark `ids` seen; return the mask of rows to keep (None: keep all)."""
        n = len(ids)
        slot = (ids & self.mask).astype(np.intp)
        dup = self.table[slot] == ids
        if n > 1:
            rows = np.arange(n, dtype=np.int32)
            self._first[slot[::-1]] = rows[::-1]  # the last store wins: the first row per slot
            first = self._first[slot]
            dup |= (first != rows) & (ids[first] == ids)
        self.table[slot] = ids
        k = int(np.count_nonzero(dup))
        if k == 0:
            return None
        self.dropped += k
        return ~dup

    def seen(self, eid: int) -> bool:
        """Check one id and mark it seen (for merged events)."""
        slot = int(np.uint64(eid) & self.mask)
        if int(self.table[slot]) == eid:
            self.dropped += 1
            return True
        self.table[slot] = eid
        return False
