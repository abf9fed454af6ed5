"""A venue-neutral order book: price levels as sorted int64 mantissas, per side.

Each side keeps parallel lists sorted by price ascending: `px` (mantissas), `sz`
(mantissas) and, for venues whose checksum needs them (OKX), the strings as
received (`px_text`, `sz_text`). Bids are best at the end, asks at the start, so
the top N of either side is one C-level slice (`px[:-n-1:-1]` / `px[:n]`) and a
level update is one `bisect` plus a list store, insert or delete. Each distinct
price string is converted once (`ingest.decimals.Mantissas`).

One owner: the instrument's sync object. A failed conversion raises DecimalError
(a BadInput) possibly after earlier levels of the same message were applied; the
owner then treats the book as desynced and resyncs it.
"""

from __future__ import annotations

from bisect import bisect_left

from .decimals import Mantissas


class Book:
    """Full depth of one instrument. `keep_text`: also keep the venue's strings."""

    __slots__ = ("bid_px", "bid_sz", "ask_px", "ask_sz", "bid_pt", "bid_st", "ask_pt", "ask_st",
                 "px", "sz", "keep_text", "last_update_id")

    def __init__(self, px: Mantissas, sz: Mantissas, keep_text: bool = False):
        self.px = px
        self.sz = sz
        self.keep_text = keep_text
        self.clear()

    def clear(self) -> None:
        self.bid_px: list[int] = []
        self.bid_sz: list[int] = []
        self.ask_px: list[int] = []
        self.ask_sz: list[int] = []
        self.bid_pt: list[str] = []
        self.bid_st: list[str] = []
        self.ask_pt: list[str] = []
        self.ask_st: list[str] = []
        self.last_update_id = 0

    # -- loading and updating -----------------------------------------------------

    def load(self, bids, asks, last_update_id: int = 0) -> None:
        """Replace the whole book with snapshot levels ([price, size, ...] strings)."""
        self.clear()
        self._load_side(bids, self.bid_px, self.bid_sz, self.bid_pt, self.bid_st)
        self._load_side(asks, self.ask_px, self.ask_sz, self.ask_pt, self.ask_st)
        self.last_update_id = last_update_id

    def _load_side(self, levels, px_l, sz_l, pt_l, st_l) -> None:
        px, sz = self.px, self.sz
        rows = {}
        for level in levels:
            p, q = level[0], level[1]
            s = sz(q)
            if s:
                rows[px(p)] = (s, p, q)  # a repeated price keeps its last size
        for m in sorted(rows):
            s, p, q = rows[m]
            px_l.append(m)
            sz_l.append(s)
            if self.keep_text:
                pt_l.append(p)
                st_l.append(q)

    def apply_bids(self, levels) -> None:
        """Apply [price, size, ...] updates to the bids; size zero removes the level."""
        if self.keep_text:
            _apply_text(levels, self.bid_px, self.bid_sz, self.bid_pt, self.bid_st, self.px, self.sz)
        else:
            _apply(levels, self.bid_px, self.bid_sz, self.px, self.sz)

    def apply_asks(self, levels) -> None:
        """Apply [price, size, ...] updates to the asks; size zero removes the level."""
        if self.keep_text:
            _apply_text(levels, self.ask_px, self.ask_sz, self.ask_pt, self.ask_st, self.px, self.sz)
        else:
            _apply(levels, self.ask_px, self.ask_sz, self.px, self.sz)

    # -- reading ------------------------------------------------------------------

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (a broken book)."""
        return bool(self.bid_px) and bool(self.ask_px) and self.bid_px[-1] >= self.ask_px[0]

    def best(self) -> tuple[int, int, int, int]:
        """(bid_px, bid_sz, ask_px, ask_sz) of the top of book; 0 for an empty side."""
        b = (self.bid_px[-1], self.bid_sz[-1]) if self.bid_px else (0, 0)
        a = (self.ask_px[0], self.ask_sz[0]) if self.ask_px else (0, 0)
        return b[0], b[1], a[0], a[1]

    def top(self, n: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """The best `n` levels per side, best first: (bid_px, bid_sz, ask_px, ask_sz)."""
        cut = -n - 1
        return self.bid_px[:cut:-1], self.bid_sz[:cut:-1], self.ask_px[:n], self.ask_sz[:n]

    def top_text(self, n: int) -> tuple[list[str], list[str], list[str], list[str]]:
        """The venue's strings of the best `n` levels per side, best first (keep_text only)."""
        cut = -n - 1
        return self.bid_pt[:cut:-1], self.bid_st[:cut:-1], self.ask_pt[:n], self.ask_st[:n]

    def depth(self) -> tuple[int, int]:
        return len(self.bid_px), len(self.ask_px)


def _apply(levels, px_l, sz_l, px: Mantissas, sz: Mantissas) -> None:
    pget, sget = px.cache.get, sz.cache.get
    for p, q in levels:   # Binance levels are [price, size] exactly
        m = pget(p)
        if m is None:
            m = px.convert(p)
        s = sget(q)
        if s is None:
            s = sz.convert(q)
        i = bisect_left(px_l, m)
        if i < len(px_l) and px_l[i] == m:
            if s:
                sz_l[i] = s
            else:
                del px_l[i]
                del sz_l[i]
        elif s:
            px_l.insert(i, m)
            sz_l.insert(i, s)


def _apply_text(levels, px_l, sz_l, pt_l, st_l, px: Mantissas, sz: Mantissas) -> None:
    pget, sget = px.cache.get, sz.cache.get
    for level in levels:
        p = level[0]
        q = level[1]
        m = pget(p)
        if m is None:
            m = px.convert(p)
        s = sget(q)
        if s is None:
            s = sz.convert(q)
        i = bisect_left(px_l, m)
        if i < len(px_l) and px_l[i] == m:
            if s:
                sz_l[i] = s
                pt_l[i] = p
                st_l[i] = q
            else:
                del px_l[i]
                del sz_l[i]
                del pt_l[i]
                del st_l[i]
        elif s:
            px_l.insert(i, m)
            sz_l.insert(i, s)
            pt_l.insert(i, p)
            st_l.insert(i, q)
