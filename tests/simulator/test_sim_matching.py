"""Matching engine: price-time priority, partial fills, IOC/FOK, market orders, cancels."""

from __future__ import annotations

import random

import pytest

from simulator.book import ASK, BID
from simulator.instruments import Instrument
from simulator.market import BookDriver
from simulator.matching import MatchingEngine, Order, OrderStateError

pytestmark = pytest.mark.timeout(30)
INST = Instrument("TST-USDT", "TST", "USDT", 2, 2, 10_000)   # prices and sizes in cents


class Harness:
    """An engine over an empty book that records every event."""

    def __init__(self):
        self.driver = BookDriver(INST, random.Random(0), INST.start_price, depth=0)
        self.events = []
        self.published = []
        self.engine = MatchingEngine({INST.canonical: self.driver}, self.events.append,
                                     lambda inst, trades: self.published.append(trades), lambda: 1)
        self.book = self.driver.book

    def order(self, side, qty, price=0, tif="GTC", otype="LIMIT", cid=None):
        oid = self.engine.new_order_id()
        o = Order(oid, cid or f"c{oid}", INST, side, otype, "GTC" if otype == "MARKET" else tif,
                  qty, price, 1)
        self.engine.submit(o)
        return o

    def rest(self, side, qty, price):
        return self.order(side, qty, price)

    def xs(self, order):
        return [e.x for e in self.events if e.order is order]


@pytest.fixture
def h():
    return Harness()


def test_limit_order_that_does_not_cross_rests_and_shows_in_the_book(h):
    o = h.rest(BID, 500, 9_990)
    assert (o.status, o.in_book, h.xs(o)) == ("NEW", True, ["NEW"])
    assert h.book.total[BID][9_990] == 500
    assert h.published == [[]]


def test_price_then_time_priority_among_resting_orders(h):
    a = h.rest(ASK, 100, 10_010)
    b = h.rest(ASK, 100, 10_010)
    c = h.rest(ASK, 100, 10_005)
    taker = h.order(BID, 250, 10_010)
    fills = [(e.order, e.last_qty, e.last_price) for e in h.events if e.x == "TRADE" and e.maker]
    assert fills == [(c, 100, 10_005), (a, 100, 10_010), (b, 50, 10_010)]
    assert (taker.status, a.status, b.status, c.status) == ("FILLED", "FILLED", "PARTIALLY_FILLED", "FILLED")
    assert b.leaves == 50 and h.book.total[ASK][10_010] == 50
    assert taker.quote == 100 * 10_005 + 150 * 10_010


def test_synthetic_liquidity_trades_before_user_orders_at_one_price(h):
    user = h.rest(ASK, 100, 10_010)
    h.book.set_synth(ASK, 10_010, 70)
    h.order(BID, 120, 10_010)
    assert user.executed == 50 and user.status == "PARTIALLY_FILLED"


def test_gtc_partial_fill_rests_the_remainder(h):
    h.book.set_synth(ASK, 10_010, 30)
    o = h.order(BID, 100, 10_020)
    assert h.xs(o) == ["NEW", "TRADE"]
    assert (o.status, o.executed, o.leaves, o.in_book) == ("PARTIALLY_FILLED", 30, 70, True)
    assert h.book.total[BID][10_020] == 70 and h.book.best(ASK) is None


def test_ioc_remainder_expires(h):
    h.book.set_synth(ASK, 10_010, 30)
    o = h.order(BID, 100, 10_020, tif="IOC")
    assert h.xs(o) == ["NEW", "TRADE", "EXPIRED"]
    assert (o.status, o.executed, o.in_book) == ("EXPIRED", 30, False)
    assert h.book.best(BID) is None


def test_fok_is_all_or_nothing(h):
    h.book.set_synth(ASK, 10_010, 30)
    h.book.set_synth(ASK, 10_030, 30)
    short = h.order(BID, 100, 10_030, tif="FOK")
    assert h.xs(short) == ["NEW", "EXPIRED"] and short.executed == 0
    assert h.book.total[ASK] == {10_010: 30, 10_030: 30}
    beyond_limit = h.order(BID, 60, 10_020, tif="FOK")
    assert beyond_limit.status == "EXPIRED" and beyond_limit.executed == 0
    whole = h.order(BID, 60, 10_030, tif="FOK")
    assert h.xs(whole) == ["NEW", "TRADE", "TRADE"] and whole.status == "FILLED"


def test_market_order_walks_the_book_and_expires_what_is_left(h):
    h.book.set_synth(BID, 9_990, 40)
    h.book.set_synth(BID, 9_980, 40)
    o = h.order(ASK, 100, otype="MARKET")
    assert [(e.last_qty, e.last_price) for e in h.events if e.order is o and e.x == "TRADE"] == [
        (40, 9_990), (40, 9_980)]
    assert (o.status, o.executed, h.xs(o)[-1]) == ("EXPIRED", 80, "EXPIRED")
    assert h.book.best(BID) is None


def test_cancel_takes_the_order_out_and_only_once(h):
    o = h.rest(BID, 100, 9_990)
    h.engine.cancel(o, "cancel-1")
    assert h.xs(o) == ["NEW", "CANCELED"] and o.status == "CANCELED"
    assert h.events[-1].cancel_client_id == "cancel-1"
    assert 9_990 not in h.book.total[BID]
    with pytest.raises(OrderStateError):
        h.engine.cancel(o, "cancel-2")


def test_synthetic_taker_fills_a_resting_user_order_over_time(h):
    o = h.rest(BID, 100, 9_990)
    h.engine.apply_trades(h.driver.take(BID, None, 40, None))
    assert (o.status, o.executed) == ("PARTIALLY_FILLED", 40)
    h.engine.apply_trades(h.driver.take(BID, None, 100, None))
    assert (o.status, o.executed, o.in_book) == ("FILLED", 100, False)
    maker_events = [e for e in h.events if e.order is o and e.x == "TRADE"]
    assert all(e.maker for e in maker_events) and len({e.trade_id for e in maker_events}) == 2


def test_market_moving_through_a_resting_bid_fills_it(h):
    h.book.set_synth(ASK, 10_020, 50)
    o = h.rest(BID, 100, 10_000)
    h.driver.fair = 10_000
    trades = h.driver.step(9_980)          # the mid drops through the bid
    h.engine.apply_trades(trades)
    assert o.status == "FILLED" and any(t.maker is o for t in trades)


def test_self_trade_reports_both_sides(h):
    maker = h.rest(ASK, 100, 10_010)
    taker = h.order(BID, 100, 10_010)
    trade_events = [e for e in h.events if e.x == "TRADE"]
    assert [(e.order, e.maker) for e in trade_events] == [(taker, False), (maker, True)]
    assert trade_events[0].trade_id == trade_events[1].trade_id


def test_amend_quantity_down_keeps_the_place_in_the_queue(h):
    a = h.rest(ASK, 100, 10_010)
    b = h.rest(ASK, 100, 10_010)
    h.engine.amend(a, 60, 10_010)
    assert h.xs(a) == ["NEW", "REPLACED"] and (a.qty, a.leaves, a.status) == (60, 60, "NEW")
    assert h.book.total[ASK][10_010] == 160
    h.order(BID, 60, 10_010)
    assert (a.status, b.status) == ("FILLED", "NEW")


def test_amend_quantity_up_or_price_change_goes_to_the_back(h):
    a = h.rest(ASK, 100, 10_010)
    b = h.rest(ASK, 100, 10_010)
    h.engine.amend(a, 120, 10_010)
    h.order(BID, 100, 10_010)
    assert (a.status, b.status, a.leaves) == ("NEW", "FILLED", 120)
    h.engine.amend(a, 120, 10_020)
    assert 10_010 not in h.book.total[ASK] and h.book.total[ASK][10_020] == 120


def test_amend_to_a_crossing_price_trades_at_once(h):
    bid = h.rest(BID, 50, 10_000)
    ask = h.rest(ASK, 80, 10_010)
    h.engine.amend(ask, 80, 10_000)
    assert h.xs(ask) == ["NEW", "REPLACED", "TRADE"]
    assert (bid.status, ask.status, ask.executed, ask.leaves) == ("FILLED", "PARTIALLY_FILLED", 50, 30)
    assert h.book.total[ASK][10_000] == 30 and h.book.best(BID) is None


def test_amend_of_a_partly_filled_order_keeps_its_fills(h):
    a = h.rest(ASK, 100, 10_010)
    h.order(BID, 40, 10_010)
    h.engine.amend(a, 70, 10_010)
    assert (a.executed, a.leaves, a.qty, a.status) == (40, 30, 70, "PARTIALLY_FILLED")
    assert h.book.total[ASK][10_010] == 30
