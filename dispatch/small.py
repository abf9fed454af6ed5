"""The scalar fast path: a tiny batch whose every record simply passes on.

`admit` opens the pipeline's small route (`dispatch.pipeline`): in place of its
dedup, index and order stages, for a batch where they have nothing to decide.

At 10k events/s dispatch wakes to one or two records, and the vector path costs about
twenty numpy calls (~45 us) whatever the batch size. `admit` reads the headers once as
Python ints and checks, record by record, that de-dup and ordering have nothing to
decide: the stream is known and in sequence (GAPLESS/PROBE: seq == last + 1; SPARSE:
seq > last) and holds nothing, and the event id is neither remembered nor repeated in
the batch (a SNAPSHOT/RESYNCED flag changes nothing for such a record). Only if every
record passes does it commit, making exactly the state changes the vector path would
make (de-dup table, last seq, records seen, PROBE -> GAPLESS); otherwise it changes
nothing and the batch takes the vector route. So every decision lives in one place (`dedup`,
`ordering`); `tests/dispatch/test_small.py` replays random batches through both paths
and compares rings and state.

Header words are read through an int64 view of the records; where each field sits in
them comes from `events.codec.word`, never hand-numbered.
"""

from __future__ import annotations

import numpy as np

from events.codec import WORDS, word

from .dedup import Deduper
from .ordering import GAPLESS, PROBE, SPARSE, Orderer
from .streams import NO_SEQ, Streams

LIMIT = 16  # records: ~1.5 us each here plus ~1 us per consumer, vs ~45 us for the vector path
_U64 = (1 << 64) - 1


_KIND, _PROV, _INST = (word(n) for n in ("kind", "provider", "instrument"))
_SEQ, _EID = word("seq_provider")[0], word("event_id")[0]
HEADER_WORDS = 1 + max(w for w, _, _ in (_KIND, _PROV, _INST, (_SEQ, 0, 0), (_EID, 0, 0)))


class SmallBatches:
    """Admit tiny in-order batches without numpy per stage. One dispatch thread."""

    def __init__(self, streams: Streams, dedup: Deduper, orderer: Orderer, limit: int = LIMIT):
        self.streams = streams
        self.dedup = dedup
        self.orderer = orderer
        self.limit = limit  # batches of at most this many records are tried (0: never)
        self.admitted = 0   # batches that took this path (the rest: vector path)

    def admit(self, batch: np.ndarray) -> list[int] | None:
        """The stream index of every row if all pass as they are (state committed); else None."""
        if not batch.flags.c_contiguous:
            return None
        st, table = self.streams, self.dedup.table
        find, last_seq, mode = st.find, st.last_seq, st.mode
        dmask = int(self.dedup.mask)
        (kw, ks, km), (pw, ps, pm), (iw, is_, im) = _KIND, _PROV, _INST
        # a copy of the bytes (~0.2 us a record) costs less than a view of this union dtype
        heads = np.frombuffer(batch.tobytes(), np.int64).reshape(len(batch), WORDS)
        heads = heads[:, :HEADER_WORDS].tolist()
        sidx: list[int] = []
        ids: list[int] = []
        last: dict[int, int] = {}     # stream -> last seq, as of the rows checked so far
        sparse: dict[int, bool] = {}
        for h in heads:
            s = find(((h[pw] >> ps) & pm) << 48 | ((h[kw] >> ks) & km) << 32 | ((h[iw] >> is_) & im))
            if s is None:
                return None
            eid = h[_EID] & _U64
            if table.item(eid & dmask) == eid or eid in ids:
                return None
            seq = h[_SEQ]
            prev = last.get(s)
            if prev is None:
                prev = last_seq.item(s)
                if prev == NO_SEQ or st.held.item(s) or not st.seen.item(s):
                    return None
                sparse[s] = mode.item(s) == SPARSE
            if not (seq > prev if sparse[s] else seq == prev + 1):
                return None
            last[s] = seq
            ids.append(eid)
            sidx.append(s)
        for eid in ids:
            table[eid & dmask] = eid
        probe, seen = self.orderer.probe_records, st.seen
        for s, seq in last.items():
            last_seq[s] = seq
            seen[s] += sidx.count(s) if len(last) > 1 else len(sidx)
            if mode.item(s) == PROBE and seen.item(s) >= probe:
                mode[s] = GAPLESS  # probed without a lasting gap (held is 0)
        self.admitted += 1
        return sidx
