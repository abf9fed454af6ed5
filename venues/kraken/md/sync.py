"""Kraken WS v1 book sync of one pair: snapshot, updates, truncation, CRC32 checksum.

A snapshot ({"as": [...], "bs": [...]}) replaces the book; an update ({"a": [...]}
and / or {"b": [...]}, the last dict carrying "c") is applied, the book is cut to
the subscribed depth (Kraken stops updating levels pushed past it), and the CRC32
of the top 10 levels must equal "c". A mismatch or a crossed book drops this pair's
book; the adapter unsubscribes and subscribes its `book` again, which makes Kraken
send a new snapshot. Levels are [price, volume, timestamp(, "r")]. v1 books carry
no sequence number: seq_provider is the newest level timestamp in microseconds,
made strictly increasing per pair.
"""

from __future__ import annotations

from events import BadInput, HeaderFlag

from marketdata.book import Book
from ..checksum import book_checksum

WAITING, SYNCED = 0, 2
_ERRORS = (BadInput, TypeError, IndexError, KeyError, ValueError, AttributeError)


def micros(ts) -> int:
    """'1618678133.365913' -> 1618678133365913 (exact, no float)."""
    if type(ts) is not str:
        raise BadInput(f"timestamp must be a string: {ts!r}")
    whole, _, frac = ts.partition(".")
    if not (whole.isascii() and whole.isdigit()) or len(whole) > 12 or \
            (frac and not (frac.isascii() and frac.isdigit())):
        raise BadInput(f"not a Kraken timestamp: {ts!r}")
    return int(whole) * 1_000_000 + int((frac[:6]).ljust(6, "0") or "0")


class KrakenBookSync:
    """The book of one Kraken pair. `owner`: the adapter (publish / synced / restart)."""

    def __init__(self, stream, report, owner, depth: int):
        self.stream = stream
        self.report = report
        self.owner = owner
        self.depth = depth
        self.book = Book(stream.px_scale, stream.sz_scale, keep_text=True)
        self.state = WAITING
        self.seq = 0

    @property
    def synced(self) -> bool:
        return self.state == SYNCED

    def _next_seq(self, levels_lists) -> int:
        newest = max((micros(level[2]) for levels in levels_lists for level in levels), default=0)
        self.seq = newest if newest > self.seq else self.seq + 1
        return self.seq

    def on_snapshot(self, d: dict, recv_ns: int) -> None:
        bids, asks = d["bs"], d["as"]
        try:
            self.book.load(bids, asks)
            self._truncate()
        except _ERRORS:
            self.lose("bad_input", "snapshot could not be loaded")
            raise
        self.report.snapshots += 1
        seq = self._next_seq((bids, asks))
        self.book.last_update_id = seq
        flags = int(HeaderFlag.SNAPSHOT) | (int(HeaderFlag.RESYNCED) if self.stream.resync_reason else 0)
        self.state = SYNCED
        self.owner.synced(self)
        if not self._crossed():
            self._publish(flags, seq * 1000, recv_ns)

    def on_update(self, parts: list, recv_ns: int) -> None:
        """`parts`: the dicts between the channel id and the channel name."""
        if self.state != SYNCED:
            self.report.diffs_dropped_stale += 1
            return
        asks, bids, expected = [], [], None
        for part in parts:
            if "a" in part:
                asks = part["a"]
            if "b" in part:
                bids = part["b"]
            if "c" in part:
                expected = part["c"]
        try:
            self.book.apply_asks(asks)
            self.book.apply_bids(bids)
            self._truncate()
        except _ERRORS:
            self.lose("bad_input", "update could not be applied")
            raise
        self.report.diffs_applied += 1
        if expected is not None:
            if type(expected) is not str or not (expected.isascii() and expected.isdigit()):
                self.lose("bad_input", f"checksum is not a decimal string: {expected!r}")
                raise BadInput(f"checksum must be a string of digits: {expected!r}")
            ours = book_checksum(self.book)
            if ours != int(expected):
                self.report.checksum_mismatch(self.stream.symbol, int(expected), ours)
                self.lose("checksum", f"venue {expected}, ours {ours}")
                return
            self.report.checksum_ok += 1
        seq = self._next_seq((asks, bids))
        self.book.last_update_id = seq
        if not self._crossed():
            self._publish(0, seq * 1000, recv_ns)

    def _truncate(self) -> None:
        self.book.truncate(self.depth)

    def _crossed(self) -> bool:
        if self.book.crossed():
            self.lose("crossed", "best bid >= best ask")
            return True
        return False

    def _publish(self, flags: int, event_ns: int, recv_ns: int) -> None:
        try:
            self.owner.publish(self, flags, event_ns, recv_ns)
        except BadInput:
            self.lose("bad_input", "a published level could not be converted")
            raise

    def reset(self) -> None:
        self.book.clear()
        self.state = WAITING

    def lose(self, reason: str, detail: str = "") -> None:
        self.reset()
        self.owner.restart(self, reason, detail)

    def describe(self) -> dict:
        return {"state": "synced" if self.synced else "waiting", "seq": self.seq}
