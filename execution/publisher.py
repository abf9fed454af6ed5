"""The exec channel's writer: journal first (durable), then the lossless `exec` ring.

Every report is appended to the journal (journal.py) before it is published on the
ring, so a reader that sees exec_seq N on the ring can read 1..N from the journal.
The ring is lossless (a reader that has not released a record is never overwritten),
but execution never blocks on a slow consumer: when the ring is full, the backlog
stays in the journal and `pump()` publishes it as readers release slots. A reader
that is dead (pid gone) or silent for `reader_timeout_s` is evicted by the ring and
catches up from the journal when it re-attaches.

A restarted execution process creates a new ring (positions restart at 0, readers
see `writer_state() == "replaced"`); positions are not exec_seqs, the payload's
`exec_seq` is. Call only from execution's main thread.
"""

from __future__ import annotations

import os

import numpy as np

from channels.names import EXEC_RING, journal_path
from events import EVENT
from core.run import RunContext
from shm import RingWriter

from .journal import Journal


class ExecPublisher:
    """Journal + ring: `append(records)` (durable), then `pump()` publishes what is journaled."""

    def __init__(self, ctx: RunContext, *, capacity: int = 1024, sync: bool = True,
                 reader_timeout_s: float = 10.0):
        path = journal_path(ctx.run_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(path, sync=sync)
        stale = ctx.namespace.path(EXEC_RING)
        if os.path.exists(stale):  # left by a killed execution process: we hold the run's lock
            os.unlink(stale)
        self.ring = RingWriter.create(ctx.namespace, EXEC_RING, EVENT, capacity, policy="lossless",
                                      reader_timeout_ns=int(reader_timeout_s * 1e9))
        self.published_seq = self.journal.last_seq  # older reports: readers take them from the journal
        self.backlog_max = 0
        self._last: np.ndarray | None = None

    @property
    def last_seq(self) -> int:
        return self.journal.last_seq

    def append(self, records: np.ndarray) -> None:
        """Append `records` (exec_seq last_seq+1..) to the journal; publish with `pump()`."""
        self.journal.append(records)
        self._last = records

    def pump(self, max_n: int = 4096) -> int:
        """Publish journaled records not yet on the ring, as far as it has room; return how many."""
        backlog = self.journal.last_seq - self.published_seq
        if backlog <= 0:
            return 0
        self.backlog_max = max(self.backlog_max, backlog)
        last = self._last
        if last is not None and backlog == len(last):  # the fast path: no backlog before it
            recs = last
        else:
            recs = self.journal.read(self.published_seq + 1, min(backlog, max_n))
        done = self.ring.write_batch(recs)
        self.published_seq += done
        if self.published_seq == self.journal.last_seq:
            self._last = None
        elif done:
            self._last = None  # partly published: the rest comes from the journal
        return done

    @property
    def backlog(self) -> int:
        return self.journal.last_seq - self.published_seq

    def heartbeat(self) -> None:
        self.ring.heartbeat()

    def close(self) -> None:
        self.ring.close()
        self.journal.close()
