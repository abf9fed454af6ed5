"""The current state of every stream: its newest record, for consumers that start late.

A BOOK carries the full top N and a TICKER the best bid / ask, so the newest record of
such a stream is all a consumer needs to start from (`STATEFUL`). Without it, a
consumer that subscribes to a quiet instrument sees no book until the book next
changes. So the core keeps the newest routed record of every stream here (`keep`,
after ordering: the records every subscriber got) and, when a subscription makes a
consumer receive a stream it did not receive before, gives it that stream's record
first, flagged REPLAYED (`DispatchCore.subscribe`). A restarted dispatch fills it from
the ingest rings (`dispatch.seed`); an ingest restart empties that provider's rows
(its next books are built afresh, from a snapshot).

Rows of 96 words indexed by stream (768 bytes a stream), like `fanout.Latest`. Every
stream's newest record is kept (trades too: filtering by kind would cost more than the
copies); only STATEFUL streams are ever handed out.
"""

from __future__ import annotations

import numpy as np

from events import EVENT, RECORD_BYTES, HeaderFlag, Kind
from events.codec import WORDS, words

STATEFUL = np.zeros(256, bool)  # by kind: the newest record of the stream is its state
STATEFUL[int(Kind.BOOK)] = STATEFUL[int(Kind.TICKER)] = True
REPLAYED = int(HeaderFlag.REPLAYED)


class CurrentState:
    """The newest routed record of every stream. One dispatch thread."""

    def __init__(self, streams: int = 256):
        self.words = np.zeros((streams, WORDS), np.uint64)
        self.held = np.zeros(streams, bool)          # a record is kept for the stream
        self._last = np.full(streams, -1, np.int64)  # scratch of `keep`, -1 between calls
        self._bytes = memoryview(self.words).cast("B")  # `words` as bytes, for `keep_rows`

    def _fit(self, n: int) -> None:
        if n <= len(self.held):
            return
        m = max(n, 2 * len(self.held))
        grown = np.zeros((m, WORDS), np.uint64)
        grown[: len(self.words)] = self.words
        self.words = grown
        self._bytes = memoryview(grown).cast("B")
        self.held = np.concatenate([self.held, np.zeros(m - len(self.held), bool)])
        self._last = np.concatenate([self._last, np.full(m - len(self._last), -1, np.int64)])

    def keep(self, recs: np.ndarray, sidx: np.ndarray) -> None:
        """Keep the newest row of each stream of `recs` (`sidx`: stream of every row,
        rows in arrival order)."""
        n = len(sidx)
        if n == 0:
            return
        top = int(sidx.max()) + 1
        self._fit(top)
        if n == 1:
            s = int(sidx[0])
            self.words[s] = words(recs)[0]
            self.held[s] = True
            return
        last = self._last
        np.maximum.at(last, sidx, np.arange(n))  # the newest row of each stream, defined
        touched = np.flatnonzero(last[:top] >= 0)
        self.put(recs, touched, last[touched])
        last[touched] = -1

    def put(self, recs: np.ndarray, streams: np.ndarray, rows: np.ndarray) -> None:
        """Keep row rows[j] of `recs` as the newest of distinct stream streams[j]."""
        self._fit(int(streams.max()) + 1)
        self.words[streams] = words(recs)[rows]
        self.held[streams] = True

    def keep_rows(self, recs: np.ndarray, sidx: list[int]) -> None:
        """`keep` for a tiny batch (`sidx` a list): row by row, the newest written last.

        Through the records' bytes (`tobytes`, ~0.2 us a record): a numpy view of this
        union dtype costs more (~1.5 us) than the copy.
        """
        top = max(sidx)
        if top >= len(self.held):
            self._fit(top + 1)
        raw, mine, held, size = recs.tobytes(), self._bytes, self.held, RECORD_BYTES
        for r, s in enumerate(sidx):
            mine[s * size : (s + 1) * size] = raw[r * size : (r + 1) * size]
            held[s] = True

    def forget(self, streams: np.ndarray) -> None:
        """Drop what is kept for `streams` (their source restarted)."""
        streams = streams[streams < len(self.held)]
        self.held[streams] = False

    def starting(self, streams: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Of `streams` (of kinds `kinds`), those with a state to hand out."""
        self._fit(int(streams.max()) + 1 if len(streams) else 0)
        return streams[self.held[streams] & STATEFUL[kinds]]

    def records(self, streams: np.ndarray) -> np.ndarray:
        """Private copies of the records kept for `streams`, flagged REPLAYED."""
        out = np.empty(len(streams), EVENT)
        words(out)[:] = self.words[streams]
        out["flags"] |= REPLAYED
        return out
