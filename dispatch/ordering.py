"""Per-stream ordering (LM-03): reorder by `seq_provider` in a small buffer; no global order.

A stream's sequence is either gap-free (n, n+1, ...: synthetic feeds, trade ids) or
sparse (venue update ids and timestamps: Binance depth `u`, OKX `seqId`, tickers `ts`),
and ingest passes the venue's own numbers. So each stream has a mode:

- GAPLESS: a record that skips ahead is held until the gap fills (then released in
  seq order), or until its oldest held record has waited `lateness_ns` (checked every
  `flush_ns`) or `max_held` records are held: then everything held is released in
  `ingest_ts_ns` order and the gap is counted (`order.gap_unresolved`).
- SPARSE (monotonic): a record above the last released seq passes at once (a batch's
  records are sorted by seq first); one at or below it is late.
- PROBE, every new stream (mode "auto"): treated as GAPLESS for its first
  `probe_records` records; a gap that does not resolve in that time marks the stream
  SPARSE (its numbers skip), otherwise it becomes GAPLESS. So a sparse stream pays the
  lateness once, at its start, unless ingest declared it: a new stream whose first
  record is flagged SPARSE_SEQ (books and tickers of every venue) is SPARSE at once.
  `order_mode` "gapless" or "monotonic" fixes the mode.

When a source's ring lapped dispatch (records lost unread), its streams stop waiting
for the gaps that loss left (`skip_gaps`). In every mode a record at or below the last
released seq is late: dropped, counted
(`late_event.dropped{stage=order}`), kept for the DLQ; a record flagged SNAPSHOT or
RESYNCED restarts the sequence; a new stream (or one whose source restarted) starts
at the lowest seq of its first batch. In the common case every stream of a batch
continues in order and the whole batch passes in numpy; other streams take the slow
path, record by record.
"""

from __future__ import annotations

import numpy as np

from events import HeaderFlag
from events.codec import row

from .streams import NO_SEQ, BatchIndex, Streams

RESET_FLAGS = int(HeaderFlag.SNAPSHOT) | int(HeaderFlag.RESYNCED)
SPARSE_SEQ = int(HeaderFlag.SPARSE_SEQ)
PROBE, GAPLESS, SPARSE = 0, 1, 2
MODES = {"auto": PROBE, "gapless": GAPLESS, "monotonic": SPARSE}


class Orderer:
    """The reorder buffers of every stream. One dispatch thread; time comes from callers."""

    def __init__(self, streams: Streams, lateness_ns: int, flush_ns: int, max_held: int,
                 mode: str = "auto", probe_records: int = 64):
        if mode not in MODES:
            raise ValueError(f"order mode must be one of {sorted(MODES)}: mode={mode!r}")
        self.streams = streams
        self.lateness_ns = lateness_ns
        self.flush_ns = flush_ns
        self.max_held = max_held
        self.initial_mode = MODES[mode]
        self.probe_records = probe_records
        self._held: dict[int, dict[int, tuple[np.ndarray, int]]] = {}  # s -> seq -> (rec, arrival)
        self._next_flush = 0
        self.late: list[tuple[int, int, int]] = []  # (stream, seq, trace_id) since last drain
        self.sparse: list[int] = []                 # streams found sparse since last drain
        self.counts = {"reordered": 0, "gap_unresolved": 0, "late": 0, "duplicate": 0,
                       "sparse_streams": 0, "lapped": 0}

    # -- the batch path --------------------------------------------------------------

    def order(self, batch: np.ndarray, ix: BatchIndex,
              now_ns: int) -> tuple[np.ndarray | None, list[tuple[int, np.ndarray]]]:
        """Return the rows of `batch` that pass now, in arrival order (None: all rows), and
        the records the slow path releases, as (stream, 1-record array), in order.
        """
        st = self.streams
        groups = ix.streams
        counts = ix.ends - ix.starts
        if self.initial_mode != PROBE:
            st.mode[groups[st.seen[groups] == 0]] = self.initial_mode
        seq = batch["seq_provider"][ix.order]
        last = st.last_seq[groups]
        new = last == NO_SEQ
        if self.initial_mode == PROBE and new.any():   # declared sparse by ingest: no probe
            first = ix.order[ix.starts]
            declared = new & (st.seen[groups] == 0) & ((batch["flags"][first] & SPARSE_SEQ) != 0)
            st.mode[groups[declared]] = SPARSE
        prev = np.empty_like(seq)
        prev[1:] = seq[:-1]
        prev[ix.starts] = np.where(new, seq[ix.starts] - 1, last)
        sparse = st.mode[groups] == SPARSE
        if sparse.any():
            ok = np.where(np.repeat(sparse, counts), seq > prev, seq == prev + 1)
        else:
            ok = seq == prev + 1
        if not ok.all():
            ok |= (batch["flags"][ix.order] & RESET_FLAGS) != 0
        bad = np.logical_or.reduceat(~ok, ix.starts) | (st.held[groups] > 0)
        good = ~bad
        st.last_seq[groups[good]] = seq[ix.ends[good] - 1]
        st.seen[groups] += counts
        passing = None
        out: list[tuple[int, np.ndarray]] = []
        if bad.any():
            for g in np.flatnonzero(bad):
                rows = ix.order[ix.starts[g] : ix.ends[g]]
                s = int(groups[g])
                if st.mode[s] == SPARSE:
                    self._slow_sparse(s, batch, rows, out)
                else:
                    self._slow(s, batch, rows, now_ns, out)
            keep = np.ones(len(batch), bool)
            keep[ix.order[np.repeat(bad, counts)]] = False
            passing = np.flatnonzero(keep)
        probing = groups[(st.mode[groups] == PROBE) & (st.seen[groups] >= self.probe_records)]
        st.mode[probing[st.held[probing] == 0]] = GAPLESS  # probed without a lasting gap
        return passing, out

    def _baseline(self, s: int, batch: np.ndarray, rows) -> int:
        last = int(self.streams.last_seq[s])
        if last == NO_SEQ:  # a new stream: its lowest seq in this batch is the baseline
            last = int(batch["seq_provider"][rows].min()) - 1
        return last

    def _late(self, s: int, seq: int, rec) -> None:
        self.counts["late"] += 1
        self.late.append((s, seq, int(rec["trace_id"])))

    def _slow_sparse(self, s: int, batch: np.ndarray, rows, out) -> None:
        last = self._baseline(s, batch, rows)
        seqs = batch["seq_provider"][rows]
        for r in np.asarray(rows)[np.argsort(seqs, kind="stable")]:
            one = row(batch, r)
            rec = one[0]
            seq = int(rec["seq_provider"])
            if seq > last or int(rec["flags"]) & RESET_FLAGS:
                out.append((s, one))
                last = seq
            else:
                self._late(s, seq, rec)
        self.streams.last_seq[s] = last

    def _slow(self, s: int, batch: np.ndarray, rows, now_ns: int, out) -> None:
        st = self.streams
        held = self._held.setdefault(s, {})
        last = self._baseline(s, batch, rows)
        for r in rows:
            one = row(batch, r)  # a private 1-record array: held, or handed on
            rec = one[0]
            seq = int(rec["seq_provider"])
            if int(rec["flags"]) & RESET_FLAGS:
                last = self._flush(s, held, last, out, counted=False)
                out.append((s, one))
                last = seq
                continue
            if seq <= last:
                self._late(s, seq, rec)
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
            if self.streams.mode[s] == PROBE:  # its numbers skip: stop waiting for gaps
                self.streams.mode[s] = SPARSE
                self.counts["sparse_streams"] += 1
                self.sparse.append(s)
        return last

    # -- timers ----------------------------------------------------------------------

    def expire(self, now_ns: int) -> list[tuple[int, np.ndarray]]:
        """Every `flush_ns`: release streams whose oldest held record waited `lateness_ns`.

        Return the released records as (stream, 1-record array), in order.
        """
        out: list[tuple[int, np.ndarray]] = []
        if now_ns < self._next_flush:
            return out
        self._next_flush = now_ns + self.flush_ns
        st = self.streams
        for s, held in self._held.items():
            if held and now_ns - min(a for _, a in held.values()) >= self.lateness_ns:
                st.last_seq[s] = self._flush(s, held, int(st.last_seq[s]), out)
                st.held[s] = 0
        return out

    def skip_gaps(self, streams_of: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Records of these streams were lost before dispatch read them (its ring lapped).

        A gap they leave never fills: release what waits behind one at once (ingest_ts
        order) and take each stream's next record as its baseline. Mode and probe
        state stay: a loss is no evidence of a sparse sequence. Without this, a dispatch
        that falls behind would hold every stream for the lateness, record by record.
        """
        self.counts["lapped"] += 1
        return self._restart(streams_of)

    def reset(self, streams_of: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """A source restarted: release what its streams hold, forget sequence and mode."""
        out = self._restart(streams_of)
        st = self.streams
        for s in streams_of:
            st.seen[int(s)] = 0
            st.mode[int(s)] = PROBE
        return out

    def _restart(self, streams_of: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Release what these streams hold (uncounted; returned as (stream, record)) and
        take each one's next record as its baseline."""
        out: list[tuple[int, np.ndarray]] = []
        st = self.streams
        for s in streams_of:
            s = int(s)
            held = self._held.get(s)
            if held:
                self._flush(s, held, int(st.last_seq[s]), out, counted=False)
            st.last_seq[s] = NO_SEQ
            st.held[s] = 0
        return out

    def next_expiry_ns(self) -> int | None:
        """When `expire` next has something to check (None: nothing is held)."""
        return self._next_flush if any(self._held.values()) else None

    def depth(self) -> dict[int, int]:
        """Held records per stream (only streams holding some)."""
        return {s: len(h) for s, h in self._held.items() if h}

    def take_late(self) -> list[tuple[int, int, int]]:
        late, self.late = self.late, []
        return late
