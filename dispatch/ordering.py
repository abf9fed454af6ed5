"""Per-stream ordering (LM-03): reorder by `seq_provider` in a small buffer; no global order.

Contract with ingest: `seq_provider` counts a stream's records without gaps (n, n+1,
...); a record flagged SNAPSHOT or RESYNCED starts the count afresh. In the common
case every stream of a batch continues where it stopped, and the whole batch passes
in numpy (`order` returns the passing rows). A stream with a gap, a reordering, or
records already held takes the slow path, record by record:

- held in a per-stream buffer until the gap fills, then released in seq order;
- when its oldest held record has waited `lateness_ns` (checked every `flush_ns`), or
  `max_held` records are held, every held record is released in `ingest_ts_ns` order
  and the gap is counted (`order.gap_unresolved`);
- a record at or below the last released seq is late: dropped, counted
  (`late_event.dropped{stage=order}`), its id kept for the DLQ.

A new stream (or one whose source restarted) starts at the lowest seq of its first
batch: there is no earlier record to wait for.
"""

from __future__ import annotations

import numpy as np

from events import HeaderFlag

from .raw import row
from .streams import NO_SEQ, BatchIndex, Streams

RESET_FLAGS = int(HeaderFlag.SNAPSHOT) | int(HeaderFlag.RESYNCED)


class Orderer:
    """The reorder buffers of every stream. One dispatch thread; time comes from callers."""

    def __init__(self, streams: Streams, lateness_ns: int, flush_ns: int, max_held: int):
        self.streams = streams
        self.lateness_ns = lateness_ns
        self.flush_ns = flush_ns
        self.max_held = max_held
        self._held: dict[int, dict[int, tuple[np.ndarray, int]]] = {}  # s -> seq -> (rec, arrival)
        self._next_flush = 0
        self.late: list[tuple[int, int, int]] = []  # (stream, seq, trace_id) since last drain
        self.counts = {"reordered": 0, "gap_unresolved": 0, "late": 0, "duplicate": 0}

    # -- the batch path --------------------------------------------------------------

    def order(self, batch: np.ndarray, ix: BatchIndex, now_ns: int,
              out: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
        """Return the rows of `batch` that pass now, in arrival order (None: all rows).

        Records released from the slow path are appended to `out` as (stream, record).
        """
        st = self.streams
        seq = batch["seq_provider"][ix.order]
        last = st.last_seq[ix.streams]
        first = seq[ix.starts]
        prev = np.empty_like(seq)
        prev[1:] = seq[:-1]
        prev[ix.starts] = np.where(last == NO_SEQ, first - 1, last)
        ok = seq == prev + 1
        if not ok.all():
            ok |= (batch["flags"][ix.order] & RESET_FLAGS) != 0
        bad = np.logical_or.reduceat(~ok, ix.starts) | (st.held[ix.streams] > 0)
        good = ~bad
        st.last_seq[ix.streams[good]] = seq[ix.ends[good] - 1]
        if not bad.any():
            return None
        for g in np.flatnonzero(bad):
            rows = ix.order[ix.starts[g] : ix.ends[g]]
            self._slow(int(ix.streams[g]), batch, rows, now_ns, out)
        passing = np.ones(len(batch), bool)
        passing[ix.order[np.repeat(bad, ix.ends - ix.starts)]] = False
        return np.flatnonzero(passing)

    def _slow(self, s: int, batch: np.ndarray, rows, now_ns: int, out) -> None:
        st = self.streams
        held = self._held.setdefault(s, {})
        last = int(st.last_seq[s])
        if last == NO_SEQ:  # a new stream: its lowest seq in this batch is the baseline
            last = int(batch["seq_provider"][rows].min()) - 1
        for r in rows:
            one = row(batch, r)  # a private 1-record array: held, or handed on
            rec = one[0]
            seq = int(rec["seq_provider"])
            if int(rec["flags"]) & RESET_FLAGS:
                last = self._flush(s, held, last, out, counted=False)
                out.append((s, one))
                last = seq
                continue
            if last == NO_SEQ:
                last = seq - 1
            if seq <= last:
                self.counts["late"] += 1
                self.late.append((s, seq, int(rec["trace_id"])))
                continue
            if seq in held:
                self.counts["duplicate"] += 1
                continue
            if seq == last + 1:
                out.append((s, one))
                last = seq
                while last + 1 in held:  # the gap filled: release what waited behind it
                    last += 1
                    out.append((s, held.pop(last)[0]))
                    self.counts["reordered"] += 1
                continue
            held[seq] = (one, now_ns)
            if len(held) >= self.max_held:
                last = self._flush(s, held, last, out)
        st.last_seq[s] = last
        st.held[s] = len(held)

    def _flush(self, s: int, held: dict, last: int, out, counted: bool = True) -> int:
        """Release every held record of stream `s` in ingest_ts order; return the new last seq."""
        if not held:
            return last
        recs = sorted(held.items(), key=lambda kv: (int(kv[1][0]["ingest_ts_ns"][0]), kv[0]))
        for seq, (one, _) in recs:
            out.append((s, one))
            last = max(last, seq)
        held.clear()
        if counted:
            self.counts["gap_unresolved"] += 1
        return last

    # -- timers ----------------------------------------------------------------------

    def expire(self, now_ns: int, out: list[tuple[int, np.ndarray]]) -> int:
        """Every `flush_ns`: release streams whose oldest held record waited `lateness_ns`."""
        if now_ns < self._next_flush:
            return 0
        self._next_flush = now_ns + self.flush_ns
        released = 0
        st = self.streams
        for s, held in self._held.items():
            if held and now_ns - min(a for _, a in held.values()) >= self.lateness_ns:
                released += len(held)
                st.last_seq[s] = self._flush(s, held, int(st.last_seq[s]), out)
                st.held[s] = 0
        return released

    def reset(self, streams_of: np.ndarray, out: list[tuple[int, np.ndarray]]) -> None:
        """A source restarted: release what its streams hold and forget their sequence."""
        st = self.streams
        for s in streams_of:
            s = int(s)
            held = self._held.get(s)
            if held:
                self._flush(s, held, int(st.last_seq[s]), out, counted=False)
            st.last_seq[s] = NO_SEQ
            st.held[s] = 0

    def depth(self) -> dict[int, int]:
        """Held records per stream (only streams holding some)."""
        return {s: len(h) for s, h in self._held.items() if h}

    def take_late(self) -> list[tuple[int, int, int]]:
        late, self.late = self.late, []
        return late
