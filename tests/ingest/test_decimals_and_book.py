"""Decimal conversion and the venue-neutral book."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import DecimalError
from marketdata.book import Book
from marketdata.decimals import Decimals, column, decimals_of

pytestmark = pytest.mark.timeout(60)

decimal_text = st.one_of(
    st.from_regex(r"\A[0-9]{0,20}(\.[0-9]{0,20})?\Z", fullmatch=True),
    st.text(max_size=24),
)


def test_decimals_of_steps():
    assert decimals_of("0.00010000") == 4
    assert decimals_of("1") == 0
    assert decimals_of("0.5") == 1
    assert decimals_of("1e-05") == 5


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(decimal_text, max_size=12), scale=st.integers(0, 18))
def test_a_column_converts_like_its_strings_one_by_one(texts, scale):
    dec = Decimals(scale)
    try:
        expected = [dec(t) for t in texts]
    except DecimalError:
        expected = None
    try:
        got = [int(v) for v in column(dec, texts)]
    except DecimalError:
        got = None
    assert got == expected


def test_decimals_refuse_bad_strings_and_non_strings():
    m = Decimals(8)
    assert m("2683.80000000") == 268380000000 and m("0.5") == 50000000 and m.scale == 8
    for bad in ("", ".", "1e5", "١٢", " 1", "1_0", "0.000000001", None, 3, ["1"], "99999999999999999999"):
        with pytest.raises(DecimalError):
            m(bad)
    with pytest.raises(DecimalError):
        column(m, ["1.00000000", "2\n3.00000000"])
    with pytest.raises(TypeError):
        m("1", "2")


def _book(keep_text=False):
    return Book(8, 8, keep_text)


def test_book_applies_updates_deletes_and_reports_top_best_first():
    b = _book()
    b.load([["100.0", "1"], ["99.5", "2"], ["101", "0"]], [["102", "3"], ["103.25", "4"]], 7)
    assert b.depth() == (2, 2)
    b.apply_bids([["100.5", "5"], ["99.5", "0"]])
    b.apply_asks([["102", "0"], ["101.5", "1.5"]])
    bp, bs, ap, az = b.top(20)
    assert bp == [10050000000, 10000000000] and bs == [500000000, 100000000]
    assert ap == [10150000000, 10325000000] and az == [150000000, 400000000]
    assert b.best() == (10050000000, 500000000, 10150000000, 150000000)
    assert b.top(1) == ([10050000000], [500000000], [10150000000], [150000000])
    assert not b.crossed()
    b.apply_bids([["101.5", "1"]])
    assert b.crossed()


def test_book_removing_an_absent_level_changes_nothing():
    b = _book()
    b.load([["1", "1"]], [["2", "1"]])
    b.apply_bids([["0.5", "0.000"]])
    assert b.depth() == (1, 1)


def test_book_keeps_venue_strings_for_checksums():
    b = _book(keep_text=True)
    b.load([["3366.1", "7", "0", "1"], ["3366", "6", "0", "1"]], [["3366.8", "9", "0", "1"]])
    b.apply_asks([["3368", "8", "0", "1"]])
    b.apply_bids([["3366", "6.0", "0", "2"]])
    assert b.top_text(25) == (["3366.1", "3366"], ["7", "6.0"], ["3366.8", "3368"], ["9", "8"])
    b.apply_bids([["3366.1", "0", "0", "0"]])
    assert b.top_text(25)[0] == ["3366"]
