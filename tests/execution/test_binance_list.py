"""The Binance adapter's open-orders list: GET /api/v3/openOrders replies -> venue events
(a stub REST connection; no network)."""

from __future__ import annotations

import pytest

from events import ExecStatus, PeerGone
from venues.trading import VenueOpenOrdersFailed, VenueOpenOrdersListed
from venues.binance.trading.adapter import BinanceSpotAdapter
from venues.binance.trading.rest import BinanceRefused, NotSent

from .fakes import BTC, Counters, registry

pytestmark = pytest.mark.timeout(10)


def order(symbol="BTCUSDT", cid="m0000000aAbBcCdDeEfFgGhHiIjJkKlLm", status="PARTIALLY_FILLED", **over):
    """One element of an openOrders reply (as the Binance docs show it)."""
    o = {"symbol": symbol, "orderId": 28, "orderListId": -1, "clientOrderId": cid, "price": "30000.00000000",
         "origQty": "0.03000000", "executedQty": "0.01000000", "cummulativeQuoteQty": "300.00000000",
         "status": status, "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "stopPrice": "0.00000000",
         "icebergQty": "0.00000000", "time": 1499827319559, "updateTime": 1499827319559, "isWorking": True,
         "workingTime": 1499827319559, "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE"}
    o.update(over)
    return o


class StubRest:
    def __init__(self, reply=None, error: Exception | None = None):
        self.reply, self.error, self.symbols = reply, error, []

    def open_orders(self, symbol=None):
        self.symbols.append(symbol)
        if self.error is not None:
            raise self.error
        return self.reply


@pytest.fixture
def adapter():
    events = []
    a = BinanceSpotAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "key", "secret", registry(), events.append,
                           telemetry=Counters())  # never started: jobs are run by hand
    a.events = events
    return a


def test_list_open_queues_one_job_for_a_symbol_or_for_all(adapter):
    adapter.list_open(BTC, 4)
    adapter.list_open(None, 5)
    jobs = [q.get_nowait() for q in adapter.workers.queues for _ in range(q.qsize())]
    assert {args for _, args in jobs} == {(4, "BTCUSDT"), (5, None)}
    assert adapter.list_all_from == 14  # 14 x weight 6 > weight 80 of one request for all symbols


def test_a_list_reply_becomes_one_report_per_order_and_other_symbols_are_left_out(adapter):
    rest = StubRest([order(), order(symbol="DOGEUSDT", cid="web_1"), order(cid="m-broken", status="WAT")])
    adapter._list_open(rest, 7, None)
    (ev,) = adapter.events
    assert isinstance(ev, VenueOpenOrdersListed) and ev.request_id == 7
    (r,) = ev.reports  # DOGEUSDT: not ours to trade; "WAT": unreadable, left out (then queried)
    assert r.client_order_ids == ("m0000000aAbBcCdDeEfFgGhHiIjJkKlLm",)
    assert (r.status, r.cum_qty, r.cum_quote, r.venue_order_id) == (ExecStatus.PARTIAL, 1000, 300 * 10**7, 28)
    assert r.source == "open_orders"
    assert rest.symbols == [None]
    assert adapter.tel["exec.reconcile.foreign"] == 1


def test_an_empty_list_is_an_answer(adapter):
    adapter._list_open(StubRest([]), 8, "BTCUSDT")
    assert adapter.events == [VenueOpenOrdersListed((), 8)]


@pytest.mark.parametrize("rest", [
    StubRest(error=PeerGone("GET /api/v3/openOrders: no reply (timeout); outcome unknown")),
    StubRest(error=NotSent("GET /api/v3/openOrders: cannot connect (ConnectionRefusedError); not sent")),
    StubRest(error=BinanceRefused(429, -1003, "Too many requests.", "/api/v3/openOrders")),
    StubRest({"code": 0, "msg": "not a list"}),
])
def test_a_list_request_without_a_usable_answer_is_reported_failed(adapter, rest):
    adapter._list_open(rest, 9, "BTCUSDT")
    (ev,) = adapter.events
    assert isinstance(ev, VenueOpenOrdersFailed) and ev.request_id == 9 and ev.reason
