"""The compiled book (marketdata._book) against a plain model: a dict of price -> size per side."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import DecimalError, to_mantissa
from events.codec import offset
from events.records import BOOK_DEPTH, EVENT
from marketdata.book import Book, parse

pytestmark = pytest.mark.timeout(120)

decimal_text = st.one_of(
    st.from_regex(r"\A[0-9]{0,20}(\.[0-9]{0,20})?\Z", fullmatch=True),
    st.text(max_size=24),
)


@settings(max_examples=600, deadline=None)
@given(text=decimal_text, scale=st.integers(0, 18))
def test_parse_agrees_with_events_to_mantissa_on_unsigned_input(text, scale):
    try:
        expected = to_mantissa(text, scale)
    except (DecimalError, ValueError):
        expected = None
    if text[:1] in ("-", "+"):
        expected = None  # venues send unsigned prices and sizes: refused
    try:
        got = parse(text, scale)
    except DecimalError:
        got = None
    assert got == expected


def test_parse_refuses_what_is_not_an_unsigned_decimal():
    assert parse("2683.80000000", 8) == 268380000000
    assert parse("5.", 2) == 500 and parse(".5", 2) == 50 and parse("0.500", 1) == 5
    assert parse("9223372036854775807", 0) == 2**63 - 1
    for bad in ("", ".", "1e5", "١٢", " 1", "1_0", "1.2.3", "-1", "0.000000001", None, 3, b"1", ["1"]):
        with pytest.raises(DecimalError):
            parse(bad, 8)
    for big in ("9223372036854775808", "99999999999999999999", "92233720368.54775808"):
        with pytest.raises(DecimalError):
            parse(big, 8 if "." in big else 0)
    with pytest.raises(DecimalError):
        Book(19, 2)


# -- the model ----------------------------------------------------------------------

SCALE = 2
prices = st.integers(1, 60).map(lambda c: f"{c // 100}.{c % 100:02d}")   # few prices: collisions
sizes = st.one_of(st.just("0"), st.just("0.00"), st.integers(1, 500).map(lambda c: f"{c / 100:.2f}"))
levels = st.lists(st.tuples(prices, sizes).map(list), max_size=12)


class Model:
    def __init__(self, keep_text: bool):
        self.keep_text = keep_text
        self.bids: dict[int, tuple[int, str, str]] = {}
        self.asks: dict[int, tuple[int, str, str]] = {}

    def load(self, bids, asks):
        self.bids, self.asks = {}, {}
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for p, q in rows:
                if parse(q, SCALE):
                    side[parse(p, SCALE)] = (parse(q, SCALE), p, q)

    def apply(self, side, rows):
        for p, q in rows:
            m, s = parse(p, SCALE), parse(q, SCALE)
            if s:
                side[m] = (s, p, q)
            else:
                side.pop(m, None)

    def top(self, n):
        b = sorted(self.bids.items(), reverse=True)[:n]
        a = sorted(self.asks.items())[:n]
        return ([p for p, _ in b], [v[0] for _, v in b], [p for p, _ in a], [v[0] for _, v in a])

    def top_text(self, n):
        b = sorted(self.bids.items(), reverse=True)[:n]
        a = sorted(self.asks.items())[:n]
        return ([v[1] for _, v in b], [v[2] for _, v in b], [v[1] for _, v in a], [v[2] for _, v in a])


ops = st.lists(st.one_of(
    st.tuples(st.just("load"), levels, levels),
    st.tuples(st.just("bids"), levels),
    st.tuples(st.just("asks"), levels),
    st.tuples(st.just("truncate"), st.integers(0, 30)),
), max_size=25)


@settings(max_examples=300, deadline=None)
@given(ops=ops, keep_text=st.booleans(), n=st.integers(0, 25))
def test_book_matches_the_model(ops, keep_text, n):
    book, model = Book(SCALE, SCALE, keep_text), Model(keep_text)
    for op in ops:
        if op[0] == "load":
            book.load(op[1], op[2], 5)
            model.load(op[1], op[2])
        elif op[0] == "bids":
            book.apply_bids(op[1])
            model.apply(model.bids, op[1])
        elif op[0] == "asks":
            book.apply_asks(op[1])
            model.apply(model.asks, op[1])
        else:
            book.truncate(op[1])
            for side, best in ((model.bids, True), (model.asks, False)):
                keep = sorted(side, reverse=best)[:op[1]]
                for k in set(side) - set(keep):
                    del side[k]
        top = model.top(n)
        assert book.top(n) == top
        assert book.depth() == (len(model.bids), len(model.asks))
        full = model.top(1)
        assert book.best() == tuple(col[0] if col else 0 for col in full)
        assert book.crossed() == bool(full[0] and full[2] and full[0][0] >= full[2][0])
        if keep_text:
            assert book.top_text(n) == model.top_text(n)
        # the record columns, as the publisher writes them
        buf = bytearray(8 + 4 * BOOK_DEPTH * 8)
        nb, na = book.write_top(buf, 8, min(n, BOOK_DEPTH), BOOK_DEPTH)
        cols = np.frombuffer(bytes(buf[8:]), "<i8").reshape(4, BOOK_DEPTH)
        k = min(n, BOOK_DEPTH)
        assert (nb, na) == (len(top[0][:k]), len(top[2][:k]))
        for col, want in zip(cols, model.top(k)):
            assert list(col) == want + [0] * (BOOK_DEPTH - len(want))


def test_snapshot_with_a_repeated_price_keeps_its_last_size_and_skips_zeros():
    b = Book(2, 2, keep_text=True)
    b.load([["1.00", "1"], ["2.00", "0"], ["1.00", "3"], ["0.50", "2"]], [["3", "1"], ["3.00", "2"]], 9)
    assert b.top(5) == ([100, 50], [300, 200], [300], [200])
    assert b.top_text(5) == (["1.00", "0.50"], ["3", "2"], ["3.00"], ["2"])
    assert b.last_update_id == 9
    b.clear()
    assert b.depth() == (0, 0) and b.last_update_id == 0


def test_bad_levels_raise_and_a_bad_snapshot_leaves_the_book_empty():
    b = Book(2, 2)
    b.load([["1", "1"]], [["2", "1"]])
    for bad in ([["1"]], [1], ["1.00"], [[None, "1"]], [["1", "x"]], [["1", "0.001"]], 5, None):
        with pytest.raises((DecimalError, TypeError)):
            b.apply_bids(bad)
    assert b.top(5) == ([100], [100], [200], [100])
    with pytest.raises(DecimalError):
        b.load([["1", "1"]], [["2", "1"], ["3", "-1"]], 4)
    assert b.depth() == (0, 0) and b.last_update_id == 0
    b.apply_asks((("2", "1", "extra"),))             # tuples and extra fields are fine
    assert b.best() == (0, 0, 200, 100)
    with pytest.raises(ValueError):
        b.top_text(1)                                 # no strings kept
    with pytest.raises(ValueError):
        b.write_top(bytearray(100), 0, 1, BOOK_DEPTH)  # does not fit


def test_text_book_holds_its_strings_exactly_while_they_are_levels():
    p, q = "".join(["12.", "34"]), "".join(["5.", "00"])   # fresh objects, not interned
    before = sys.getrefcount(p), sys.getrefcount(q)
    b = Book(2, 2, keep_text=True)
    b.load([[p, q]], [])
    b.apply_bids([[p, q]])
    assert (sys.getrefcount(p), sys.getrefcount(q)) == (before[0] + 1, before[1] + 1)
    b.apply_bids([[p, "0"]])
    assert (sys.getrefcount(p), sys.getrefcount(q)) == before
    b.load([[p, q]], [[p, q]])
    b.truncate(0)
    assert (sys.getrefcount(p), sys.getrefcount(q)) == before
    b.load([[p, q]], [[p, q]])
    del b
    assert (sys.getrefcount(p), sys.getrefcount(q)) == before


def test_a_deep_book_stays_sorted_under_many_updates():
    rng = np.random.default_rng(7)
    b, model = Book(2, 2), Model(False)
    for _ in range(2000):
        rows = [[f"{int(c) // 100}.{int(c) % 100:02d}", f"{int(s)}"] for c, s in
                zip(rng.integers(1, 5000, 8), rng.integers(0, 3, 8))]
        b.apply_bids(rows)
        model.apply(model.bids, rows)
    assert b.top(BOOK_DEPTH) == model.top(BOOK_DEPTH)
    assert b.depth()[0] == len(model.bids) > 1000


def test_write_top_matches_the_event_layout():
    b = Book(2, 4)
    b.load([["10.00", "1.5"], ["9.99", "2"]], [["10.01", "0.0001"]], 42)
    rec = np.zeros(1, EVENT)
    off = offset("book.bid_px")
    assert b.write_top(memoryview(rec.view(np.uint8)), off, 20, BOOK_DEPTH) == (2, 1)
    book = rec["book"][0]
    assert list(book["bid_px"][:3]) == [1000, 999, 0] and list(book["bid_sz"][:2]) == [15000, 20000]
    assert list(book["ask_px"][:2]) == [1001, 0] and book["ask_sz"][0] == 1
