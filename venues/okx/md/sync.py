"""OKX `books` sync of one instrument: snapshot, updates, seqId chain, CRC32 checksum.

A snapshot (action "snapshot", sent on subscribe) replaces the book; each update
("update") is applied, then checked: `prevSeqId` must equal the last `seqId` (a
repeat of the last message, same seqId, is dropped as a duplicate; a seqId below
the last one, OKX's sequence reset after maintenance, is accepted and its book is
flagged RESYNCED so that per-stream ordering downstream restarts)
(newer feeds; the 2022 recording has no seqId), and the CRC32 of the top 25
levels must equal `checksum` (skipped when the field is absent, or 0 on a feed
with seqId: OKX announced it will send 0). A gap, a checksum mismatch or a crossed
book drops this instrument's book; the adapter resubscribes `books` for it, which
makes OKX send a new snapshot. Updates before that snapshot are dropped.
seq_provider is `seqId`, or, when the feed has no seqId, ts_ms * 1000 + k with k
counting this instrument's books messages within the same millisecond (`seq`): ts
alone repeats, and a repeated seq_provider is a repeated event_id downstream.
"""

from __future__ import annotations

from events import BadInput, HeaderFlag

from marketdata.book import Book
from ..checksum import book_checksum
from ..seq import next_seq

WAITING, SYNCED = 0, 2
_MAX_I64 = (1 << 63) - 1
_RESTARTED = int(HeaderFlag.RESYNCED)
_MAX_MS = _MAX_I64 // 1_000_000
_ERRORS = (BadInput, TypeError, IndexError, KeyError, ValueError, AttributeError)


class BooksSync:
    """The book of one OKX instrument. `owner`: the adapter (publish / synced / restart)."""

    def __init__(self, stream, report, owner):
        self.stream = stream
        self.report = report
        self.owner = owner
        self.book = Book(stream.px_scale, stream.sz_scale, keep_text=True)
        self.state = WAITING
        self.last_seq: int | None = None
        self.seq = 0

    @property
    def synced(self) -> bool:
        return self.state == SYNCED

    def on_snapshot(self, d: dict, recv_ns: int) -> None:
        """{"asks": [[px, sz, "0", n]..], "bids": [..], "ts": "..", "checksum": c, "seqId": s}."""
        seq_id, ts = _seq(d)
        try:
            self.book.load(d["bids"], d["asks"])
        except _ERRORS:
            self.lose("bad_input", "snapshot could not be loaded")
            raise
        self.report.snapshots += 1
        if not self._verify(d):
            return
        self.last_seq = seq_id
        self.seq = seq = seq_id if seq_id is not None else next_seq(ts // 1_000_000, self.seq)
        self.book.last_update_id = seq
        flags = int(HeaderFlag.SNAPSHOT) | (int(HeaderFlag.RESYNCED) if self.stream.resync_reason else 0)
        self.state = SYNCED
        self.owner.synced(self)
        if not self._crossed():
            self._publish(flags, ts, recv_ns)

    def on_update(self, d: dict, recv_ns: int) -> None:
        seq_id, ts = _seq(d)
        if self.state != SYNCED:
            self.report.diffs_dropped_stale += 1
            return
        if self.last_seq is not None and "prevSeqId" in d:
            prev = d["prevSeqId"]
            if prev != self.last_seq and d.get("seqId") == self.last_seq:
                self.report.diffs_dropped_stale += 1   # the last message again: a duplicate
                return
            if prev != self.last_seq:
                detail = f"last seqId={self.last_seq}, next prevSeqId={prev} seqId={d.get('seqId')}"
                self.report.gap(self.stream.symbol, detail)
                self.lose("gap", detail)
                return
        bids, asks = d["bids"], d["asks"]
        try:
            self.book.apply_bids(bids)
            self.book.apply_asks(asks)
        except _ERRORS:
            self.lose("bad_input", f"update seqId={seq_id} ts={ts // 1_000_000} could not be applied")
            raise
        self.report.diffs_applied += 1
        if not self._verify(d):
            return
        flags = 0
        if seq_id is not None:
            if self.last_seq is not None and seq_id < self.last_seq:
                flags = _RESTARTED   # the venue reset its sequence: tell dispatch's ordering
            self.last_seq = seq = seq_id
        else:
            seq = next_seq(ts // 1_000_000, self.seq)
        self.seq = seq
        self.book.last_update_id = seq
        if (bids or asks) and not self._crossed():
            self._publish(flags, ts, recv_ns)

    def _publish(self, flags: int, ts: int, recv_ns: int) -> None:
        try:
            self.owner.publish(self, flags, ts, recv_ns)
        except BadInput:   # a size string in the top N that is not a decimal
            self.lose("bad_input", "a published level could not be converted")
            raise

    def _verify(self, d: dict) -> bool:
        expected = d.get("checksum")
        if expected is None or (expected == 0 and "seqId" in d):
            return True
        if type(expected) is not int:
            raise BadInput(f"checksum must be an integer: {expected!r}")
        ours = book_checksum(self.book)
        if ours == expected:
            self.report.checksum_ok += 1
            return True
        self.report.checksum_mismatch(self.stream.symbol, expected, ours)
        self.lose("checksum", f"venue {expected}, ours {ours}")
        return False

    def _crossed(self) -> bool:
        book = self.book
        if book.crossed():
            bp, _, ap, _ = book.best()
            self.lose("crossed", f"best bid {bp} >= best ask {ap}")
            return True
        return False

    def reset(self) -> None:
        """Forget the book (a reconnect: the new subscription brings a snapshot)."""
        self.book.clear()
        self.state = WAITING
        self.last_seq = None

    def lose(self, reason: str, detail: str = "") -> None:
        self.reset()
        self.owner.restart(self, reason, detail)

    def describe(self) -> dict:
        return {"state": "synced" if self.synced else "waiting", "last_seq": self.last_seq}


def _seq(d: dict) -> tuple[int | None, int]:
    """(seqId or None, event_ts_ns) of one books message."""
    ts = d["ts"]
    if type(ts) is not str or not ts.isdigit() or not ts.isascii():
        raise BadInput(f"ts must be a string of digits: ts={ts!r}")
    ts_ms = int(ts)
    seq = d.get("seqId", 0)
    if ts_ms > _MAX_MS or type(seq) is not int or not 0 <= seq <= _MAX_I64:
        raise BadInput(f"seqId must be an int64 and ts in range: seqId={seq!r} ts={ts!r}")
    return d.get("seqId"), ts_ms * 1_000_000
