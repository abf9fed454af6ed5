"""A venue-neutral order book: price levels as sorted int64 mantissas, per side.

Each side keeps parallel lists sorted by a key ascending, with the BEST level at
the END: bids keyed by price, asks keyed by minus the price. Most inserts and
deletes happen near the top of book (measured on the 24 h ETHUSDT recording: more
than half within 100 levels of the best), so list inserts and deletes move few
pointers, and the top N of either side is one C-level slice (`key[:-n-1:-1]`).
The lists: `*_key` (mantissas; minus the price for asks), `*_sz` (size mantissas)
and, for venues whose checksum needs the strings as received (OKX, `keep_text`),
`*_pt` / `*_st`. A text book loads a snapshot's sizes as None and converts them
when they first reach the published top N (a 400-level snapshot converts 20 sizes
per side, not 400). A level update is one `bisect` plus a list store, insert or
delete. Each distinct price and size string is converted once
(`ingest.decimals.Mantissas`).

One owner: the instrument's sync object. A failed conversion raises DecimalError
(a BadInput) possibly after earlier levels of the same message were applied, or,
for a text book's size, when `top()` converts it; the owner then treats the book
as desynced and resyncs it.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import neg as _neg

from events.errors import DecimalError

from .decimals import Mantissas


class Book:
    """Full depth of one instrument. `keep_text`: also keep the venue's strings."""

    __slots__ = ("bid_key", "bid_sz", "ask_key", "ask_sz", "bid_pt", "bid_st", "ask_pt", "ask_st",
                 "px", "sz", "keep_text", "last_update_id")

    def __init__(self, px: Mantissas, sz: Mantissas, keep_text: bool = False):
        self.px = px
        self.sz = sz
        self.keep_text = keep_text
        self.clear()

    def clear(self) -> None:
        self.bid_key: list[int] = []
        self.bid_sz: list[int] = []
        self.ask_key: list[int] = []
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
        self._load_side(bids, 1, self.bid_key, self.bid_sz, self.bid_pt, self.bid_st)
        self._load_side(asks, -1, self.ask_key, self.ask_sz, self.ask_pt, self.ask_st)
        self.last_update_id = last_update_id

    def _load_side(self, levels, sign, key_l, sz_l, pt_l, st_l) -> None:
        px, sz = self.px, self.sz
        pget, sget = px.cache.get, sz.cache.get
        rows = {}
        if self.keep_text:
            for level in levels:
                p = level[0]
                q = level[1]
                if q[:1] in _NONZERO_LEAD or not _is_zero(q):
                    m = pget(p)
                    if m is None:
                        m = px.convert(p)
                    rows[sign * m] = (p, q)  # a repeated price keeps its last size
            keys = sorted(rows)
            key_l.extend(keys)
            sz_l.extend([None] * len(keys))      # converted when they reach the top (top())
            pt_l.extend([rows[k][0] for k in keys])
            st_l.extend([rows[k][1] for k in keys])
            return
        for level in levels:
            p = level[0]
            q = level[1]
            s = sget(q)
            if s is None:
                s = sz.convert(q)
            if s:
                m = pget(p)
                if m is None:
                    m = px.convert(p)
                rows[sign * m] = s
        keys = sorted(rows)
        key_l.extend(keys)
        sz_l.extend([rows[k] for k in keys])

    def apply_bids(self, levels) -> None:
        """Apply [price, size, ...] updates to the bids; size zero removes the level."""
        if self.keep_text:
            _apply_text(levels, False, self.bid_key, self.bid_sz, self.bid_pt, self.bid_st,
                        self.px, self.sz)
        else:
            _apply(levels, False, self.bid_key, self.bid_sz, self.px, self.sz)

    def apply_asks(self, levels) -> None:
        """Apply [price, size, ...] updates to the asks; size zero removes the level."""
        if self.keep_text:
            _apply_text(levels, True, self.ask_key, self.ask_sz, self.ask_pt, self.ask_st,
                        self.px, self.sz)
        else:
            _apply(levels, True, self.ask_key, self.ask_sz, self.px, self.sz)

    # -- reading ------------------------------------------------------------------

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (a broken book)."""
        return bool(self.bid_key) and bool(self.ask_key) and self.bid_key[-1] >= -self.ask_key[-1]

    def best(self) -> tuple[int, int, int, int]:
        """(bid_px, bid_sz, ask_px, ask_sz) of the top of book; 0 for an empty side."""
        bp, bs, ap, az = self.top(1)
        return (bp[0] if bp else 0, bs[0] if bs else 0, ap[0] if ap else 0, az[0] if az else 0)

    def top(self, n: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """The best `n` levels per side, best first: (bid_px, bid_sz, ask_px, ask_sz).

        A text book converts snapshot sizes reaching the top here: DecimalError for a bad one.
        """
        cut = -n - 1
        bs = self.bid_sz[:cut:-1]
        az = self.ask_sz[:cut:-1]
        if self.keep_text and not (all(bs) and all(az)):   # None: a snapshot size not converted yet
            bs = self._sizes(self.bid_sz, self.bid_st, n)
            az = self._sizes(self.ask_sz, self.ask_st, n)
        return self.bid_key[:cut:-1], bs, list(map(_neg, self.ask_key[:cut:-1])), az

    def _sizes(self, sz_l, st_l, n):
        conv = self.sz
        last = len(sz_l) - 1
        for j in range(min(n, len(sz_l))):
            if sz_l[last - j] is None:
                sz_l[last - j] = conv(st_l[last - j])
        return sz_l[:-n - 1:-1]

    def top_text(self, n: int) -> tuple[list[str], list[str], list[str], list[str]]:
        """The venue's strings of the best `n` levels per side, best first (keep_text only)."""
        cut = -n - 1
        return self.bid_pt[:cut:-1], self.bid_st[:cut:-1], self.ask_pt[:cut:-1], self.ask_st[:cut:-1]

    def depth(self) -> tuple[int, int]:
        return len(self.bid_key), len(self.ask_key)


def _apply(levels, neg, key_l, sz_l, px: Mantissas, sz: Mantissas) -> None:
    pget, sget = px.cache.get, sz.cache.get
    n = len(key_l)        # kept by hand: cheaper than len() per level
    for p, q in levels:   # Binance levels are [price, size] exactly
        m = pget(p)
        if m is None:
            m = px.convert(p)
        if neg:
            m = -m
        s = sget(q)
        if s is None:
            s = sz.convert(q)
        i = bisect_left(key_l, m)
        if i < n and key_l[i] == m:
            if s:
                sz_l[i] = s
            else:
                del key_l[i]
                del sz_l[i]
                n -= 1
        elif s:
            key_l.insert(i, m)
            sz_l.insert(i, s)
            n += 1


_NONZERO_LEAD = frozenset("123456789")  # a size string starting so is not zero


def _is_zero(q) -> bool:
    """A size string that removes its level ("0", "0.000"); anything else must be a size.

    Snapshot sizes of text books stay unconverted: a non-string is refused here, a
    bad string when it reaches the top N (Book.top)."""
    if q == "0":
        return True
    if type(q) is not str or not q or q == ".":
        raise DecimalError(f"not a size string: {q!r}")
    return not q.strip("0.")


def _apply_text(levels, neg, key_l, sz_l, pt_l, st_l, px: Mantissas, sz: Mantissas) -> None:
    pget, sget = px.cache.get, sz.cache.get
    n = len(key_l)
    for level in levels:
        p = level[0]
        q = level[1]
        m = pget(p)
        if m is None:
            m = px.convert(p)
        if neg:
            m = -m
        s = sget(q)
        if s is None:
            s = sz.convert(q)
        i = bisect_left(key_l, m)
        if i < n and key_l[i] == m:
            if s:
                sz_l[i] = s
                pt_l[i] = p
                st_l[i] = q
            else:
                del key_l[i]
                del sz_l[i]
                del pt_l[i]
                del st_l[i]
                n -= 1
        elif s:
            key_l.insert(i, m)
            sz_l.insert(i, s)
            pt_l.insert(i, p)
            st_l.insert(i, q)
            n += 1
