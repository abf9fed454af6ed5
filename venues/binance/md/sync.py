"""Binance diff-depth book sync of one instrument, per Binance's documented procedure
(spot: "How to manage a local order book correctly", as corrected on 2025-11-12;
futures: "How to manage a local order book correctly" of the derivatives docs).

    1. buffer diffs from the stream;  2. fetch a REST snapshot (lastUpdateId = L);
    3. drop buffered diffs with u <= L (futures: u < L, see below);
    4. the first applied diff has U <= L+1 <= u (futures: U <= L+1 and u >= L); a first
       diff with U > L+1 means the snapshot is older than the stream: fetch another
       (`snapshot_behind`, not a gap: spot step 4 "go back to step 3");
    5. then spot: a diff with u < the book's id is ignored, one with U > id + 1 is a gap,
       anything else applies (normally U == previous u + 1; an overlap U <= id is no
       gap, its quantities are absolute); futures: pu == previous u, else a gap.
    A gap drops the book and starts again at 1 (this instrument only).

Futures: update ids are shared by all symbols, so U jumps; Binance's futures procedure
drops only u < L and applies the diff with u == L again (it carries absolute
quantities, so that is idempotent), after which the chain continues by `pu`. The
spot rule would call the next diff (pu == L, U > L+1) a gap; the recordings have
several such cases.

A duplicate or older diff (u <= previous u) after sync is dropped as stale. Until
the first diff has been applied on top of a snapshot, the instrument is not synced
and no book is published. A periodic refresh builds a shadow book from a new
snapshot while the live one keeps publishing, and swaps it in once both have
applied the same diff (a different top of book is reported as a mismatch).
"""

from __future__ import annotations

import logging
from collections import deque

from events import HeaderFlag
from events.errors import BadInput

from marketdata.book import Book

WAITING, LOADED, SYNCED = 0, 1, 2   # no snapshot yet / snapshot, no diff yet / chained
STATE_NAMES = ("waiting", "loaded", "synced")
MAX_BUFFER = 4096
log = logging.getLogger("ingest.binance")


class DepthSync:
    """The book of one Binance instrument and its position in the diff chain.

    `owner` (the adapter) is told `publish(sync, flags, event_ns, recv_ns)` after
    each applied diff, `synced(sync)` when the chain is established and
    `restart(sync, reason, detail)` when the book was dropped; a shadow sync has
    no owner and tells nobody. `report` counts what happens (ingest.report).
    """

    def __init__(self, stream, futures: bool, report, owner=None):
        self.stream = stream
        self.futures = futures
        self.report = report
        self.owner = owner
        self.book = Book(stream.px_scale, stream.sz_scale)
        self.state = WAITING
        self.last_u = 0
        self.buffer: deque = deque(maxlen=MAX_BUFFER)
        self.pending_flags = int(HeaderFlag.SNAPSHOT)
        self.shadow: DepthSync | None = None

    @property
    def synced(self) -> bool:
        return self.state == SYNCED

    # -- diffs ---------------------------------------------------------------------

    def on_diff(self, d: dict, recv_ns: int) -> None:
        """One depthUpdate payload ("data" of the combined stream)."""
        U = d["U"]
        u = d["u"]
        if type(U) is not int or type(u) is not int or U > u:
            raise BadInput(f"depthUpdate ids must be integers with U <= u: U={U!r} u={u!r}")
        shadow = self.shadow
        if shadow is not None:
            shadow.on_diff(d, recv_ns)
        state = self.state
        if state == SYNCED:
            last = self.last_u
            if u <= last:
                self.report.diffs_dropped_stale += 1
                return
            if (d["pu"] != last) if self.futures else (U > last + 1):
                self._gap(d, U, u)
                return
            self._apply(d, u, recv_ns)
        elif state == LOADED:
            self._first(d, U, u, recv_ns)
        else:
            self.buffer.append(d)
            self.report.diffs_buffered += 1
        if shadow is not None and shadow.state == SYNCED and self.state == SYNCED:
            self._swap_in_shadow()

    def _first(self, d: dict, U: int, u: int, recv_ns: int) -> None:
        L = self.last_u
        if (u < L) if self.futures else (u <= L):
            self.report.diffs_dropped_stale += 1
            return
        if U <= L + 1:
            self._apply(d, u, recv_ns)
            return
        # The snapshot is older than the stream: its successor diffs are gone.
        self.book.clear()
        self.state = WAITING
        self.buffer.clear()
        self.buffer.append(d)
        self.restart("snapshot_behind", f"snapshot L={L}, first diff U={U} u={u}")

    def _apply(self, d: dict, u: int, recv_ns: int) -> None:
        book = self.book
        try:
            book.apply_bids(d["b"])
            book.apply_asks(d["a"])
        except (BadInput, TypeError, IndexError, KeyError, ValueError, AttributeError):
            self.lose("bad_input", f"diff u={u} could not be applied")
            raise
        self.last_u = u
        book.last_update_id = u
        self.report.diffs_applied += 1
        if book.crossed():
            bp, _, ap, _ = book.best()
            self.lose("crossed", f"best bid {bp} >= best ask {ap} at u={u}")
            return
        owner = self.owner
        if self.state != SYNCED:
            self.state = SYNCED
            if owner is not None:
                owner.synced(self)
        if owner is not None:
            E = d.get("E", 0)
            owner.publish(self, self.pending_flags, E * 1_000_000 if type(E) is int else 0, recv_ns)
            self.pending_flags = 0

    def _gap(self, d: dict, U: int, u: int) -> None:
        chain = f"pu={d.get('pu')}" if self.futures else f"U={U}"
        detail = f"previous u={self.last_u}, next {chain} u={u}"
        self.report.gap(self.stream.symbol, detail)
        self.lose("gap", detail)
        self.buffer.append(d)  # the diff after the gap is good data for the next sync

    # -- snapshots -----------------------------------------------------------------

    def on_snapshot(self, payload: dict, recv_ns: int) -> None:
        """A REST depth response: {"lastUpdateId": L, "bids": [[p, q]..], "asks": [..]}."""
        L = payload["lastUpdateId"]
        if type(L) is not int:
            raise BadInput(f"lastUpdateId must be an integer: {L!r}")
        bids, asks = payload["bids"], payload["asks"]
        log.debug("%s: snapshot lastUpdateId=%d (state %s, last u %d, %d buffered)", self.stream.symbol,
                  L, STATE_NAMES[self.state], self.last_u, len(self.buffer))
        if self.state == SYNCED and self.owner is not None:
            # A refresh: build a shadow from the snapshot; the live book keeps publishing.
            shadow = self.shadow or DepthSync(self.stream, self.futures, _Quiet())
            self.shadow = None
            shadow.on_snapshot(payload, recv_ns)
            if shadow.state != WAITING:  # WAITING: snapshot behind the stream; try next time
                self.shadow = shadow
                if shadow.state == SYNCED and shadow.last_u == self.last_u:
                    self._swap_in_shadow()
            return
        try:
            self.book.load(bids, asks, L)
        except (BadInput, TypeError, IndexError, KeyError, ValueError):
            self.book.clear()
            self.state = WAITING
            raise
        self.report.snapshots += 1
        self.last_u = L
        self.state = LOADED
        self.pending_flags = int(HeaderFlag.SNAPSHOT) | (
            int(HeaderFlag.RESYNCED) if self.stream.resync_reason else 0)
        buffered = list(self.buffer)
        self.buffer.clear()
        for d in buffered:
            if self.state == WAITING:      # a gap inside the buffer: keep the rest for later
                self.buffer.append(d)
                continue
            try:
                self.on_diff(d, recv_ns)
            except (BadInput, TypeError, IndexError, KeyError, ValueError, AttributeError) as exc:
                self.report.bad_frame(d, "bad_input", exc)  # the sync was dropped and restarted

    def start_refresh(self) -> None:
        """Begin a periodic refresh: a shadow buffers diffs until its snapshot arrives."""
        if self.state == SYNCED:
            self.shadow = DepthSync(self.stream, self.futures, _Quiet())

    def _swap_in_shadow(self) -> None:
        shadow, self.shadow = self.shadow, None
        d = self.stream.depth
        if shadow.book.top(d) != self.book.top(d):
            self.report.refresh_mismatch(self.stream.symbol)
        self.book = shadow.book

    # -- losing sync ---------------------------------------------------------------

    def lose(self, reason: str, detail: str = "") -> None:
        """Drop the book and resync this instrument (a gap, a crossed book, bad input...)."""
        self.book.clear()
        self.state = WAITING
        self.shadow = None
        self.buffer.clear()
        self.restart(reason, detail)

    def restart(self, reason: str, detail: str = "") -> None:
        if self.owner is not None:  # a shadow has none: the live sync decides
            self.owner.restart(self, reason, detail)

    def describe(self) -> dict:
        return {"state": STATE_NAMES[self.state], "last_update_id": self.last_u,
                "buffered": len(self.buffer), "refreshing": self.shadow is not None}


class _Quiet:
    """The report of a shadow sync: its counts are its own, it tells nobody."""

    diffs_applied = diffs_dropped_stale = diffs_buffered = snapshots = 0

    def gap(self, symbol, detail):
        pass

    def refresh_mismatch(self, symbol):
        pass

    def bad_frame(self, raw, reason, exc=None):
        pass
