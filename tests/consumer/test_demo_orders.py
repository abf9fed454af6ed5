"""The demo's market-data loop sends orders without waiting, and acts on their answers later."""

from __future__ import annotations

import numpy as np
import pytest

from events import EVENT
from core.telemetry import Telemetry
from events import Provider
from strategies.demo import _trade, order_venues
from strategies.trader import Trader

pytestmark = pytest.mark.timeout(10)
NONE = np.zeros(0, EVENT)


class FakeOrders:
    """Records the demo's calls; `answers` is what the next `poll_replies` hands out."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.answers: list[dict] = []
        self.consumer_id = 1

    def poll_replies(self):
        out, self.answers = self.answers, []
        return out

    def poll_reports(self, max_n):
        return NONE

    def submit_limit_nowait(self, coid, *args, **kw):
        self.calls.append(("new_order", coid))

    def cancel_nowait(self, coid):
        self.calls.append(("cancel", coid))

    def query_nowait(self, coid):
        self.calls.append(("query", coid))

    def hello_nowait(self):
        self.calls.append(("hello", None))

    def answer(self, cmd, coid, status, late=False, **more):
        self.answers.append({"cmd": cmd, "client_order_id": coid, "status": status, "late": late,
                             "ok": status in ("accepted", "duplicate", "ok"), **more})


@pytest.fixture
def setup():
    trader = Trader("BTC-USDT", "0.001", interval_ns=10**18, max_age_ns=10, prefix="t")
    trader.best_bid = "100"
    tel = Telemetry("strategy.test", None)
    try:
        yield {int(trader.provider): trader}, FakeOrders(), tel
    finally:
        tel.close()


def counters(tel) -> dict:
    return tel.snapshot()["counters"]


def test_an_order_is_sent_without_waiting_and_counted_once_at_its_answer(setup):
    traders, orders, tel = setup
    trader = traders[1]
    _trade(traders, orders, NONE, tel)
    assert orders.calls == [("new_order", "t-1")]
    assert counters(tel) == {"strategy.orders.sent": 1}
    orders.answer("new_order", "t-1", "accepted")
    _trade(traders, orders, NONE, tel)
    assert counters(tel)["strategy.orders.submitted{status=accepted}"] == 1
    assert "t-1" in trader.open


def test_an_order_without_an_answer_is_queried_and_forgotten_if_execution_never_got_it(setup):
    traders, orders, tel = setup
    trader = traders[1]
    _trade(traders, orders, NONE, tel)
    orders.answer("new_order", "t-1", "unknown", code="no_answer")
    _trade(traders, orders, NONE, tel)
    assert ("query", "t-1") in orders.calls and "t-1" in trader.open
    assert counters(tel)["strategy.orders.submitted{status=unknown}"] == 1
    orders.answer("query", "t-1", "rejected", code="unknown_order")
    _trade(traders, orders, NONE, tel)
    assert "t-1" not in trader.open


def test_a_rejected_order_is_forgotten_and_a_late_answer_is_not_counted_as_another_order(setup):
    traders, orders, tel = setup
    trader = traders[1]
    _trade(traders, orders, NONE, tel)
    orders.answer("new_order", "t-1", "unknown", code="no_answer")
    orders.answer("new_order", "t-1", "rejected", late=True, code="validation")
    _trade(traders, orders, NONE, tel)
    c = counters(tel)
    assert c["strategy.orders.submitted{status=unknown}"] == 1
    assert "strategy.orders.submitted{status=rejected}" not in c
    assert c["strategy.orders.late_answer{cmd=new_order,status=rejected}"] == 1
    assert "t-1" not in trader.open


def test_a_cancel_without_an_answer_is_sent_again(setup):
    traders, orders, tel = setup
    trader = traders[1]
    _trade(traders, orders, NONE, tel)  # places t-1, which is old at once (max_age 10 ns)
    _trade(traders, orders, NONE, tel)
    assert orders.calls[-1] == ("cancel", "t-1")
    _trade(traders, orders, NONE, tel)
    assert orders.calls.count(("cancel", "t-1")) == 1, "one cancel in flight at a time"
    orders.answer("cancel", "t-1", "unknown", code="no_answer")
    _trade(traders, orders, NONE, tel)
    assert orders.calls.count(("cancel", "t-1")) == 2


def test_hello_is_asked_again_until_execution_answers(setup):
    traders, orders, tel = setup
    trader = traders[1]
    orders.answer("hello", None, "suppressed", code="execution_unreachable")
    _trade(traders, orders, NONE, tel)
    assert ("hello", None) in orders.calls


def test_one_trader_per_venue_each_ordering_there_and_reading_its_own_reports():
    traders = {}
    for venue, symbol in order_venues("binance-spot,binance-usdm,okx:ETH-USDT", "BTC-USDT"):
        p = Provider.from_slug(venue)
        traders[int(p)] = Trader(symbol, "0.001", provider=p, interval_ns=10**18, prefix=f"t{int(p)}")
        traders[int(p)].best_bid = "100"
    orders = FakeOrders()
    sent = []
    orders.submit_limit_nowait = lambda coid, symbol, *a, venue=None, **kw: sent.append((coid, symbol, venue))
    tel = Telemetry("strategy.test", None)
    try:
        _trade(traders, orders, NONE, tel)
    finally:
        tel.close()
    usdm, okx = int(Provider.BINANCE_USDM), int(Provider.OKX)
    assert sent == [("t1-1", "BTC-USDT", "binance-spot"), (f"t{usdm}-1", "BTC-USDT-PERP", "binance-usdm"),
                    (f"t{okx}-1", "ETH-USDT", "okx")]
