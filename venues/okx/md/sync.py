"""OKX `books` sync of one instrument, per OKX's documented procedure (../PROTOCOL.md).

    1. buffer the channel's updates;
    2. take a snapshot from GET /api/v5/market/books?instId=..&sz=400 (its seqId: S);
    3. refetch while S < the prevSeqId of the first buffered update (the snapshot is behind);
    4. drop buffered updates with seqId <= S;
    5. the first kept update has prevSeqId <= S < seqId;
    6. then each update's prevSeqId == the previous seqId.

OKX's exceptions (order book channel): a keep-alive (no levels, prevSeqId == seqId ==
the last seqId) changes nothing; after maintenance seqId may go down: an update with
seqId < prevSeqId (its prevSeqId still the last seqId) is accepted, and its book is
flagged RESYNCED so that per-stream ordering downstream restarts. A reset seen while
waiting for a snapshot makes the snapshot asked before it useless: it is fetched again.

Anything else is a gap: this instrument's book is dropped and the adapter asks for a
new REST snapshot of it alone (never a resubscribe: OKX caps subscribe requests per
connection). So are a crossed book, bad input and a checksum that does not match.

`checksum`: 0 since 2026-06-23 ("not provided", never a mismatch); a non-zero one (the
2022 recording) is still verified. A WS snapshot (action "snapshot", prevSeqId -1),
which some connections still sent in August 2026, is the stream's own position: it
replaces the book and syncs at once; what was buffered before it is older and dropped.
Nothing depends on it. Feeds without seqId (2022) cannot be chained: their updates
apply once a WS snapshot took, with seq_provider ts_ms * 1000 + k (`seq`).

A periodic refresh builds a shadow book from a REST snapshot while the live one keeps
publishing, and swaps it in once both stand at the same seqId (a different top of book
is reported as a refresh mismatch).
"""

from __future__ import annotations

from collections import deque

from events import BadInput, HeaderFlag

from marketdata.book import Book
from ..checksum import book_checksum
from ..seq import next_seq

WAITING, LOADED, SYNCED = 0, 1, 2   # no book / REST snapshot, no update yet / chained
STATE_NAMES = ("waiting", "loaded", "synced")
MAX_BUFFER = 4096
_MAX_I64 = (1 << 63) - 1
_MAX_MS = _MAX_I64 // 1_000_000
_SNAPSHOT = int(HeaderFlag.SNAPSHOT)
_RESYNCED = int(HeaderFlag.RESYNCED)
_ERRORS = (BadInput, TypeError, IndexError, KeyError, ValueError, AttributeError)


class BooksSync:
    """The book of one OKX instrument and its place in the seqId chain.

    `owner` (the adapter) is told `publish(sync, flags, event_ns, recv_ns)` after each
    applied message, `synced(sync)` when the chain is established and
    `restart(sync, reason, detail)` when the book was dropped (it then fetches a REST
    snapshot); a shadow sync has no owner and tells nobody. One owner thread.
    """

    def __init__(self, stream, report, owner=None):
        self.stream = stream
        self.report = report
        self.owner = owner
        self.book = Book(stream.px_scale, stream.sz_scale, keep_text=True)
        self.state = WAITING
        self.last_seq: int | None = None   # seqId the book stands at
        self.seq = 0                       # seq_provider of the last book published
        self.buffer: deque = deque(maxlen=MAX_BUFFER)   # (update, recv_ns) while waiting
        self.pending_flags = _SNAPSHOT
        self.reset_seen = False            # a seqId reset while a snapshot was asked for
        self.loaded_ns = 0                 # recv_ns of the REST snapshot now LOADED
        self.loads = 0                     # REST snapshots loaded (a shadow: 0 or 1)
        self.shadow: BooksSync | None = None

    @property
    def synced(self) -> bool:
        return self.state == SYNCED

    # -- updates ---------------------------------------------------------------------

    def on_update(self, d: dict, recv_ns: int) -> None:
        """One books "update": {"asks": [[px, sz, "0", n]..], "bids": [..], "ts": "..",
        "checksum": 0, "prevSeqId": p, "seqId": s}."""
        seq_id, prev, ts = _ids(d)
        shadow = self.shadow
        if shadow is not None:
            shadow._step(d, seq_id, prev, ts, recv_ns)
            if shadow.state == WAITING and shadow.loads:   # behind, reset or a gap: next refresh
                self.shadow = shadow = None
        self._step(d, seq_id, prev, ts, recv_ns)
        if shadow is not None and shadow.state == SYNCED and self.state == SYNCED and \
                shadow.last_seq == self.last_seq:
            self._swap_in_shadow()

    def _step(self, d: dict, seq_id, prev, ts: int, recv_ns: int) -> None:
        state = self.state
        if state == SYNCED:
            self._next(d, seq_id, prev, ts, recv_ns)
        elif state == LOADED:
            self._first(d, seq_id, prev, ts, recv_ns)
        elif seq_id is not None and prev is not None and seq_id < prev:
            # OKX reset its sequence (maintenance): what was buffered, and a snapshot
            # asked before, belong to the old sequence
            self.buffer.clear()
            self.buffer.append((d, recv_ns))
            self.reset_seen = True
        else:
            self.buffer.append((d, recv_ns))
            self.report.diffs_buffered += 1

    def _next(self, d: dict, seq_id, prev, ts: int, recv_ns: int) -> None:
        last = self.last_seq
        if seq_id is not None and prev is not None and last is not None and prev != last:
            if prev < seq_id <= last:          # a message we already applied, again
                self.report.diffs_dropped_stale += 1
                return
            detail = f"last seqId={last}, next prevSeqId={prev} seqId={seq_id}"
            self.report.gap(self.stream.symbol, detail)
            self.lose("gap", detail)
            self.buffer.append((d, recv_ns))   # the update after the gap is good data
            return
        flags = _RESYNCED if seq_id is not None and last is not None and seq_id < last else 0
        self._apply(d, seq_id, ts, recv_ns, flags)

    def _first(self, d: dict, seq_id, prev, ts: int, recv_ns: int) -> None:
        """The first update on top of a REST snapshot (state LOADED, last_seq = S)."""
        S = self.last_seq
        if seq_id is None or prev is None:
            raise BadInput("a books update without seqId/prevSeqId cannot follow a REST snapshot")
        if seq_id < prev:       # a seqId reset (maintenance)
            if prev == S:       # it chains onto the snapshot: the new sequence starts here
                self._apply(d, seq_id, ts, recv_ns, _RESYNCED)
            else:               # S and the new ids do not compare: ask again, after the reset
                self._behind(d, recv_ns, "seq_reset", f"snapshot seqId={S}, then a reset "
                                                      f"prevSeqId={prev} seqId={seq_id}")
        elif seq_id < S:
            self.report.diffs_dropped_stale += 1
        elif seq_id == S:       # the stream stands where the snapshot does (a keep-alive, or
            self._synced(ts, recv_ns)   # the update the snapshot already holds): synced as is
        elif prev <= S:
            self._apply(d, seq_id, ts, recv_ns, 0)
        else:
            self._behind(d, recv_ns, "snapshot_behind", f"snapshot seqId={S}, first update "
                                                        f"prevSeqId={prev} seqId={seq_id}")

    def _behind(self, d: dict, recv_ns: int, reason: str, detail: str) -> None:
        """The snapshot does not reach the stream: fetch another, keep this update."""
        self.book.clear()
        self.state = WAITING
        self.loaded_ns = 0
        self.buffer.clear()
        self.buffer.append((d, recv_ns))
        self.restart(reason, detail)

    def _apply(self, d: dict, seq_id, ts: int, recv_ns: int, flags: int) -> None:
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
        if seq_id is not None:
            self.last_seq = seq_id
            self.seq = seq_id
        else:
            self.seq = next_seq(ts // 1_000_000, self.seq)
        self.book.last_update_id = self.seq
        if self.state != SYNCED:
            self._synced(ts, recv_ns, flags)
        elif (bids or asks) and not self._crossed():
            self._publish(flags, ts, recv_ns)

    def _synced(self, ts: int, recv_ns: int, flags: int = 0) -> None:
        self.state = SYNCED
        self.loaded_ns = 0
        if self.owner is not None:
            self.owner.synced(self)
        if not self._crossed():
            self._publish(self.pending_flags | flags, ts, recv_ns)
            self.pending_flags = 0

    # -- snapshots -------------------------------------------------------------------

    def on_rest_snapshot(self, d: dict, recv_ns: int) -> None:
        """data[0] of GET /api/v5/market/books: {"asks": [..], "bids": [..], "ts": "..", "seqId": S}."""
        S, _, ts = _ids(d)
        if S is None:
            raise BadInput("REST books snapshot without seqId")
        if self.reset_seen:
            self.reset_seen = False
            self.restart("seq_reset", f"snapshot seqId={S} was asked before the venue reset its sequence")
            return
        if self.state == SYNCED and self.owner is not None:
            # A refresh: a shadow catches up from the snapshot; the live book keeps publishing.
            shadow = self.shadow or BooksSync(self.stream, _Quiet())
            self.shadow = None
            shadow.on_rest_snapshot(d, recv_ns)
            if shadow.state == LOADED and shadow.last_seq == self.last_seq:
                self.shadow = shadow
                self._swap_in_shadow()
            elif shadow.state != WAITING:
                self.shadow = shadow
            return
        try:
            self.book.load(d["bids"], d["asks"])
        except _ERRORS:
            self.book.clear()
            self.state = WAITING
            raise
        self.report.snapshots += 1
        self.loads += 1
        self.last_seq = self.seq = S
        self.book.last_update_id = S
        self.state = LOADED
        self.loaded_ns = recv_ns
        self.pending_flags = _SNAPSHOT | (_RESYNCED if self.stream.resync_reason else 0)
        buffered = list(self.buffer)
        self.buffer.clear()
        if buffered and _is_reset(buffered[0][0]) and buffered[0][0]["seqId"] <= S:
            # a reset seen before this snapshot was asked for: the snapshot holds it
            buffered.pop(0)
            self.report.diffs_dropped_stale += 1
        for u, u_ns in buffered:
            if self.state == WAITING:      # behind, or a gap inside the buffer: keep the rest
                self.buffer.append((u, u_ns))
                continue
            try:
                seq_id, prev, u_ts = _ids(u)
                self._step(u, seq_id, prev, u_ts, u_ns)
            except _ERRORS as exc:
                self.report.bad_frame(u, "bad_input", exc)

    def on_ws_snapshot(self, d: dict, recv_ns: int) -> None:
        """A books "snapshot" pushed on subscribe (some connections still send one)."""
        seq_id, _, ts = _ids(d)
        self.shadow = None
        self.buffer.clear()        # everything before it in the stream is older
        self.reset_seen = False
        try:
            self.book.load(d["bids"], d["asks"])
        except _ERRORS:
            self.lose("bad_input", "snapshot could not be loaded")
            raise
        self.report.snapshots += 1
        if not self._verify(d):
            return
        self.last_seq = seq_id
        self.seq = seq_id if seq_id is not None else next_seq(ts // 1_000_000, self.seq)
        self.book.last_update_id = self.seq
        self.pending_flags = _SNAPSHOT | (_RESYNCED if self.stream.resync_reason else 0)
        self._synced(ts, recv_ns)

    def start_refresh(self) -> None:
        """Begin a periodic refresh: a shadow buffers updates until its snapshot arrives."""
        if self.state == SYNCED:
            self.shadow = BooksSync(self.stream, _Quiet())

    def _swap_in_shadow(self) -> None:
        shadow, self.shadow = self.shadow, None
        d = self.stream.depth
        if shadow.book.top(d) != self.book.top(d):
            self.report.refresh_mismatch(self.stream.symbol)
        self.book = shadow.book
        self.book.last_update_id = self.seq

    # -- checks ----------------------------------------------------------------------

    def _publish(self, flags: int, ts: int, recv_ns: int) -> None:
        if self.owner is None:
            return
        try:
            self.owner.publish(self, flags, ts, recv_ns)
        except BadInput:   # a size string in the top N that is not a decimal
            self.lose("bad_input", "a published level could not be converted")
            raise

    def _verify(self, d: dict) -> bool:
        """The CRC32 of the top 25 levels against a non-zero `checksum` (0: not provided)."""
        expected = d.get("checksum")
        if expected is None or expected == 0:
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

    # -- losing sync -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget the book and what was buffered."""
        self.book.clear()
        self.state = WAITING
        self.last_seq = None
        self.loaded_ns = 0
        self.shadow = None
        self.buffer.clear()

    def lose(self, reason: str, detail: str = "") -> None:
        """Drop the book and resync this instrument from a REST snapshot."""
        self.reset()
        self.restart(reason, detail)

    def restart(self, reason: str, detail: str = "") -> None:
        if self.owner is not None:   # a shadow has none: the live sync decides
            self.owner.restart(self, reason, detail)

    def describe(self) -> dict:
        return {"state": STATE_NAMES[self.state], "last_seq": self.last_seq,
                "buffered": len(self.buffer), "refreshing": self.shadow is not None}


def _ids(d: dict) -> tuple[int | None, int | None, int]:
    """(seqId or None, prevSeqId or None, event_ts_ns) of one books message."""
    ts = d["ts"]
    if type(ts) is not str or not ts.isdigit() or not ts.isascii() or int(ts) > _MAX_MS:
        raise BadInput(f"ts must be a string of digits: ts={ts!r}")
    seq, prev = d.get("seqId"), d.get("prevSeqId")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= _MAX_I64):
        raise BadInput(f"seqId must be an int64 >= 0: seqId={seq!r}")
    if prev is not None and (type(prev) is not int or not -1 <= prev <= _MAX_I64):
        raise BadInput(f"prevSeqId must be an int64 >= -1: prevSeqId={prev!r}")
    return seq, prev, int(ts) * 1_000_000


def _is_reset(d: dict) -> bool:
    """An update where OKX restarted its sequence: seqId below prevSeqId."""
    seq, prev = d.get("seqId"), d.get("prevSeqId")
    return type(seq) is int and type(prev) is int and seq < prev


class _Quiet:
    """The report of a shadow sync: its counts are its own, it tells nobody."""

    diffs_applied = diffs_dropped_stale = diffs_buffered = snapshots = checksum_ok = 0

    def gap(self, symbol, detail):
        pass

    def checksum_mismatch(self, symbol, expected, computed):
        pass

    def refresh_mismatch(self, symbol):
        pass

    def bad_frame(self, raw, reason, exc=None):
        pass
