"""The synthetic market: deterministic by seed, coherent across venues, well formed."""

from __future__ import annotations

import pytest

from simulator.book import ASK, BID, Book
from simulator.instruments import default_instruments, fmt, parse
from simulator.market import Market

pytestmark = pytest.mark.timeout(30)
VENUES = ["binance-spot", "binance-usdm", "okx"]


def _record(market: Market, steps: int) -> list:
    out = []
    for _ in range(steps):
        for venue, name, trades in market.step():
            changes = market.driver(venue, name).book.flush()
            out.append((venue, name, changes, [(t.trade_id, t.price, t.qty, t.taker_side) for t in trades]))
    return out


def test_same_seed_gives_the_same_market_and_another_seed_does_not():
    insts = default_instruments(3)
    a = _record(Market(insts, VENUES, seed=42), 300)
    b = _record(Market(insts, VENUES, seed=42), 300)
    c = _record(Market(insts, VENUES, seed=43), 300)
    assert a == b
    assert a != c


def test_an_instrument_does_not_depend_on_which_others_are_listed():
    btc_alone = Market(default_instruments(1), ["okx"], seed=5)
    btc_with_others = Market(default_instruments(4), ["okx"], seed=5)
    for _ in range(200):
        btc_alone.step()
        btc_with_others.step()
    assert btc_alone.driver("okx", "BTC-USDT").book.total == btc_with_others.driver("okx", "BTC-USDT").book.total


def test_venues_share_one_mid_within_a_few_ticks():
    market = Market(default_instruments(2), VENUES, seed=9)
    for _ in range(2000):
        market.step()
        for name, walk in market.walks.items():
            inst = walk.inst
            for venue in VENUES:
                book = market.driver(venue, name).book
                mid2 = book.best(BID) + book.best(ASK)
                assert abs(mid2 - 2 * walk.mid) <= 16 * inst.tick


def test_books_never_cross_and_stay_on_tick_and_lot_grid():
    market = Market(default_instruments(4), ["binance-spot"], seed=3)
    for _ in range(3000):
        market.step()
        for (venue, name), drv in market.drivers.items():
            book, inst = drv.book, drv.inst
            assert book.best(BID) < book.best(ASK)
            assert 100 <= book.depth(BID) <= 400 and 100 <= book.depth(ASK) <= 400
    for drv in market.drivers.values():
        for side in (BID, ASK):
            for price, qty in drv.book.total[side].items():
                assert price % drv.inst.tick == 0 and qty % drv.inst.lot == 0 and qty > 0


def test_book_consumes_synthetic_first_then_user_orders_in_time_order():
    class Order:
        def __init__(self, leaves):
            self.leaves = leaves

    book = Book()
    book.set_synth(ASK, 100, 5)
    first, second = Order(3), Order(4)
    book.add_order(ASK, 100, first)
    book.add_order(ASK, 100, second)
    assert book.total[ASK][100] == 12
    fills = book.consume(ASK, 100, 9)
    assert fills == [(None, 5), (first, 3), (second, 1)]
    assert (first.leaves, second.leaves, book.total[ASK][100]) == (0, 3, 3)
    assert book.flush() == [(ASK, 100, 0, 3)]


def test_decimal_strings_round_trip_exactly():
    assert fmt(6_500_000, 2) == "65000" and fmt(6_500_010, 2) == "65000.1"
    assert fmt(6_500_010, 2, 8) == "65000.10000000"
    assert fmt(5, 5) == "0.00005" and fmt(0, 3, 3) == "0.000"
    assert parse("65000.10000000", 2) == 6_500_010 and parse("3", 4) == 30_000
    for bad in ("", "1.", ".5", "-1", "1e3", "0.001", "1,5", " 1"):
        with pytest.raises(ValueError):
            parse(bad, 2)
