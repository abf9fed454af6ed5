"""Binance spot account payloads -> venue events: the docs examples (shared/data and the
rest-api.md example), the adapter's user-stream routing, and `query_account` against the
simulator over real HTTP."""

from __future__ import annotations

import threading

import orjson
import pytest

from events import BadInput
from venues.binance.trading import parse
from venues.binance.trading.adapter import BinanceSpotAdapter
from venues.binance.trading.rest import BinanceRefused
from venues.binance.trading.userstream import split_frame
from venues.trading import Balance, VenueAccountFailed, VenueAccountReported

from .fakes import registry

pytestmark = pytest.mark.timeout(30)

DOCS = "exec_reports/binance_spot_user_data_stream_docs_examples.json"
# rest-api.md "Account information (USER_DATA)", the documented reply (trimmed of nothing)
ACCOUNT_DOC = {
    "makerCommission": 15, "takerCommission": 15, "buyerCommission": 0, "sellerCommission": 0,
    "commissionRates": {"maker": "0.00150000", "taker": "0.00150000", "buyer": "0.00000000",
                        "seller": "0.00000000"},
    "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
    "requireSelfTradePrevention": False, "preventSor": False, "updateTime": 123456789, "accountType": "SPOT",
    "balances": [{"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
                 {"asset": "LTC", "free": "4763368.68006011", "locked": "0.00000000"}],
    "permissions": ["SPOT"], "uid": 354937868}


def _doc_events(shared_data) -> dict[str, dict]:
    out = {}
    for frame in orjson.loads((shared_data / DOCS).read_bytes()):
        kind, ev = split_frame(orjson.dumps(frame))
        assert kind == "event"
        out[ev["e"]] = ev
    return out


def test_the_docs_account_update_parses_into_a_partial_report_at_8_decimals(shared_data):
    ev = parse.account_position(_doc_events(shared_data)["outboundAccountPosition"])
    assert ev == VenueAccountReported((Balance("ETH", 10000 * 10**8, 0, 8),), (), full=False,
                                      event_ts_ns=1564034571073 * 1_000_000, source="stream")


def test_the_docs_balance_update_is_a_delta_checked_and_handed_back(shared_data):
    assert parse.balance_update(_doc_events(shared_data)["balanceUpdate"]) == ("BTC", "100.00000000")
    with pytest.raises(BadInput):
        parse.balance_update({"e": "balanceUpdate", "a": "BTC", "d": "1e5"})


def test_the_docs_account_reply_parses_into_a_full_snapshot():
    ev = parse.account_snapshot(ACCOUNT_DOC)
    assert ev.full and ev.source == "rest" and ev.event_ts_ns == 123456789 * 1_000_000
    assert ev.balances == (Balance("BTC", 472384689208129, 0, 8), Balance("LTC", 476336868006011, 0, 8))
    assert ev.positions == ()


@pytest.mark.parametrize("bad", [
    {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "ETH", "f": "1.123456789", "l": "0"}]},
    {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "", "f": "1", "l": "0"}]},
    {"e": "outboundAccountPosition", "E": 1, "u": 1},
])
def test_a_malformed_account_update_is_bad_input(bad):
    with pytest.raises((BadInput, KeyError)):
        parse.account_position(bad)


class Telemetry:
    def __init__(self):
        self.counts: dict[str, int] = {}

    def inc(self, name, n=1, **labels):
        self.counts[name] = self.counts.get(name, 0) + n


def _adapter(out, rest_url="http://127.0.0.1:9", dlq=None):
    return BinanceSpotAdapter(rest_url, "ws://127.0.0.1:9", "meltica-sim-key", "meltica-sim-secret", registry(),
                              out.append, telemetry=Telemetry(), dlq=dlq)


def test_the_user_stream_routes_account_events_and_a_balance_update_asks_for_the_account(shared_data):
    out: list = []
    a = _adapter(out)  # never started: jobs stay queued
    docs = _doc_events(shared_data)
    a._on_event(docs["outboundAccountPosition"], b"")
    assert out == [parse.account_position(docs["outboundAccountPosition"])]
    a._on_event(docs["balanceUpdate"], b"")
    (fn, args), = [q.get_nowait() for q in a.workers.queues if q.qsize()]
    assert fn == a._query_account and args == ()


def test_an_unreadable_account_reply_is_a_failure_and_a_dlq_record():
    class Rest:
        def __init__(self, reply=None, error=None):
            self.reply, self.error = reply, error

        def account(self):
            if self.error:
                raise self.error
            return self.reply

    class Dlq:
        def __init__(self):
            self.records = []

        def put(self, reason, **kw):
            self.records.append(reason)

    out, dlq = [], Dlq()
    a = _adapter(out, dlq=dlq)
    a._query_account(Rest(reply={"balances": [{"asset": "BTC", "free": "x", "locked": "0"}]}))
    a._query_account(Rest(error=BinanceRefused(401, -2015, "Invalid API-key, IP, or permissions for action.",
                                               "/api/v3/account")))
    assert [type(e) for e in out] == [VenueAccountFailed, VenueAccountFailed]
    assert "unreadable reply" in out[0].reason and out[1].reason.startswith("refused: -2015")
    assert dlq.records == ["bad_account_reply"]


def test_query_account_against_the_simulator_reports_every_funded_asset(sim):
    out: list = []
    answered = threading.Event()
    a = BinanceSpotAdapter(sim.endpoints["binance-spot"]["rest"], "ws://127.0.0.1:9", "meltica-sim-key",
                           "meltica-sim-secret", registry(), lambda ev: (out.append(ev), answered.set()))
    a.workers.start()  # the REST workers only: no user stream
    try:
        a.query_account()
        assert answered.wait(10)
    finally:
        a.workers.stop()
        a.workers.join(5)
    (ev,) = out
    assert isinstance(ev, VenueAccountReported) and ev.full and ev.source == "rest"
    assert {b.asset for b in ev.balances} == {"BTC", "ETH", "USDT"}
    assert all(b.free == 10**9 * 10**8 and b.locked == 0 and b.scale == 8 for b in ev.balances)
