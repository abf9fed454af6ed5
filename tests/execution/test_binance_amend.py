"""The Binance spot adapter's amend: which endpoint it picks and with what, and how the
replies (the docs' own examples, rest-api.md) become venue events. A stub REST connection;
no network. BTC-USDT in fakes: px_scale 2, sz_scale 5."""

from __future__ import annotations

import pytest

from events import ExecStatus, OrderType, PeerGone, Side, TimeInForce
from venues.binance.trading import parse
from venues.binance.trading.adapter import BinanceSpotAdapter
from venues.binance.trading.rest import BinanceRefused, NotSent
from venues.trading import Order, VenueOutcomeUnknown, VenueRequestRefused

from .fakes import BTC, registry

pytestmark = pytest.mark.timeout(10)

VCOID = "m00000003abcdefghijklmnopqrstuvwx"
NEW = "m00000003zyxwvutsrqponmlkjihgfedc"


class StubRest:
    """Answers the adapter's amend calls with `answer` (a dict, or an exception to raise)."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def _reply(self, name, args):
        self.calls.append((name, args))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def amend_keep_priority(self, symbol, orig, new_qty):
        return self._reply("keepPriority", {"symbol": symbol, "origClientOrderId": orig, "newQty": new_qty})

    def cancel_replace(self, **params):
        return self._reply("cancelReplace", params)


def order(**over) -> Order:
    o = Order(3, "c-1", VCOID, BTC, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 3_000_000, 3000,
              status=ExecStatus.PARTIAL, filled=1000, cum_quote=1000 * 3_000_000, amends=1, amend_coid=NEW)
    for k, v in over.items():
        setattr(o, k, v)
    return o


def run(o, qty, price, answer):
    out = []
    a = BinanceSpotAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "key", "secret", registry(), out.append)
    a.amend(o, qty, price)  # never started: the queued job is run by hand
    (fn, args), = [q.get_nowait() for q in a.workers.queues if q.qsize()]
    rest = StubRest(answer)
    fn(rest, *args)
    return rest.calls, out


def test_a_quantity_decrease_at_the_same_price_is_amended_in_place_keeping_the_id():
    calls, _ = run(order(), 2000, 3_000_000, {})
    assert calls == [("keepPriority", {"symbol": "BTCUSDT", "origClientOrderId": VCOID, "newQty": "0.02"})]


def test_after_a_cancel_replace_new_qty_is_the_venue_orders_own():
    calls, _ = run(order(base_filled=500), 2000, 3_000_000, {})
    assert calls[0][1]["newQty"] == "0.015"  # 0.02 total, 0.005 filled in the venue order replaced


@pytest.mark.parametrize("qty, price", [(3000, 2_999_000), (4000, 3_000_000), (2000, 3_001_000)])
def test_anything_else_is_a_cancel_replace_of_the_remainder_under_the_derived_id(qty, price):
    calls, _ = run(order(), qty, price, {})
    [(name, p)] = calls
    assert name == "cancelReplace"
    assert p == {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "cancelReplaceMode": "STOP_ON_FAILURE",
                 "timeInForce": "GTC", "quantity": f"{(qty - 1000) / 10**5:.5f}".rstrip("0"),
                 "price": f"{price / 100:.2f}".rstrip("0").rstrip("."), "cancelOrigClientOrderId": VCOID,
                 "newClientOrderId": NEW, "newOrderRespType": "FULL"}


def test_the_keep_priority_reply_of_the_docs_is_an_amended_report():
    reg = registry()
    resp = {"transactTime": 1741926410255, "executionId": 75,
            "amendedOrder": {"symbol": "BTCUSDT", "orderId": 33, "orderListId": -1,
                             "origClientOrderId": "5xrgbMyg6z36NzBn2pbT8H", "clientOrderId": "PFaq6hIHxqFENGfdtn4J6Q",
                             "price": "6.00000000", "qty": "5.00000000", "executedQty": "0.00000000",
                             "preventedQty": "0.00000000", "quoteOrderQty": "0.00000000",
                             "cumulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
                             "type": "LIMIT", "side": "SELL", "workingTime": 1741926410242,
                             "selfTradePreventionMode": "NONE"}}
    r = parse.amend_response(resp, reg)
    assert r.client_order_ids == ("PFaq6hIHxqFENGfdtn4J6Q", "5xrgbMyg6z36NzBn2pbT8H")
    assert (r.status, r.venue_order_id, r.qty, r.price, r.amended, r.source) == \
        (ExecStatus.ACK, 33, 500_000, 600, True, "amend")
    _, out = run(order(), 2000, 3_000_000, resp)
    assert len(out) == 1 and out[0].amended


def test_the_cancel_replace_reply_of_the_docs_is_the_old_orders_end_then_the_new_order():
    resp = {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
            "cancelResponse": {"symbol": "BTCUSDT", "origClientOrderId": "DnLo3vTAQcjha43lAZhZ0y", "orderId": 9,
                               "orderListId": -1, "clientOrderId": "osxN3JXAtJvKvCqGeMWMVR",
                               "transactTime": 1684804350068, "price": "0.01000000", "origQty": "0.000100",
                               "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
                               "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC",
                               "type": "LIMIT", "side": "SELL", "selfTradePreventionMode": "NONE"},
            "newOrderResponse": {"symbol": "BTCUSDT", "orderId": 10, "orderListId": -1,
                                 "clientOrderId": "wOceeeOzNORyLiQfw7jd8S", "transactTime": 1652928801803,
                                 "price": "0.02000000", "origQty": "0.040000", "executedQty": "0.00000000",
                                 "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000",
                                 "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
                                 "workingTime": 1669277163808, "fills": [], "selfTradePreventionMode": "NONE"}}
    old, new = parse.cancel_replace_response(resp, registry())
    assert ("DnLo3vTAQcjha43lAZhZ0y" in old.client_order_ids, old.status, old.venue_order_id) == \
        (True, ExecStatus.CANCELLED, 9)
    assert (new.client_order_ids, new.status, new.venue_order_id, new.qty, new.price) == \
        (("wOceeeOzNORyLiQfw7jd8S",), ExecStatus.ACK, 10, 4000, 2)
    assert {old.source, new.source} == {"amend"}
    _, out = run(order(), 3000, 2_999_000, resp)
    assert [r.status for r in out] == [ExecStatus.CANCELLED, ExecStatus.ACK]


@pytest.mark.parametrize("error, event, code", [
    (BinanceRefused(409, -2021, "Order cancel-replace partially failed.", "/api/v3/order/cancelReplace"),
     VenueRequestRefused, -2021),
    (BinanceRefused(400, -2022, "Order cancel-replace failed.", "/api/v3/order/cancelReplace"),
     VenueRequestRefused, -2022),
    (NotSent("cannot connect"), VenueRequestRefused, 0),
    (PeerGone("timeout"), VenueOutcomeUnknown, None),
])
def test_cancel_replace_failures_are_amend_refusals_or_unknown_outcomes(error, event, code):
    _, out = run(order(), 3000, 2_999_000, error)
    [ev] = out
    assert isinstance(ev, event) and ev.action == "amend" and ev.client_order_id == VCOID
    if code is not None:
        assert ev.code == code
    else:
        assert ev.sent_ms > 0


def test_a_replaced_execution_report_carries_the_new_figures_and_the_flag():
    ev = {"e": "executionReport", "E": 1, "s": "BTCUSDT", "c": VCOID, "S": "BUY", "o": "LIMIT", "f": "GTC",
          "q": "0.02000000", "p": "30000.00000000", "C": "", "x": "REPLACED", "X": "PARTIALLY_FILLED",
          "r": "NONE", "i": 7, "l": "0", "z": "0.01000000", "L": "0", "n": "0", "N": None, "t": -1, "I": 9,
          "Z": "300.00000000"}
    r = parse.execution_report(ev, registry())
    assert (r.amended, r.qty, r.price, r.status, r.cum_qty) == (True, 2000, 3_000_000, ExecStatus.PARTIAL, 1000)
    assert not parse.execution_report({**ev, "x": "TRADE"}, registry()).amended
