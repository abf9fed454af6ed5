"""Reconciliation by listing the venue's open orders: the engine with a recording venue
and a manual clock (rig.py). The recording venue lists all symbols in one request from 3
symbols with open orders on."""

from __future__ import annotations

import pytest

from events import ExecStatus as S
from execution.model import QueryOrder
from venues.trading import (
    UserStreamConnected, UserStreamDisconnected, VenueOpenOrdersFailed, VenueOpenOrdersListed,
    VenueOrderNotFound, VenueOutcomeUnknown)

from .fakes import report
from .rig import vc

pytestmark = pytest.mark.timeout(30)

BTC_QTY, ETH_QTY = 1000, 1000          # "0.01" BTC at sz_scale 5, "0.1" ETH at sz_scale 4
BTC_PX, ETH_PX = 3_000_000, 200_000    # "30000", "2000" at px_scale 2


def open_acked(rig, btc=(), eth=(), ethbtc=()):
    """Submit limit orders and acknowledge them (all open, ACK)."""
    for c in btc:
        assert rig.limit(c)["status"] == "accepted"
    for c in eth:
        assert rig.limit(c, qty="0.1", price="2000", symbol="ETH-USDT")["status"] == "accepted"
    for c in ethbtc:
        assert rig.limit(c, qty="0.1", price="0.05", symbol="ETH-BTC")["status"] == "accepted"
    for c in (*btc, *eth, *ethbtc):
        rig.engine.on_venue(report(vc(c), S.ACK))
    rig.engine.flush()


def acks(*coids):
    return [report(vc(c), S.ACK, source="open_orders") for c in coids]


def listed(rig, scope: str, reports, request_id: int | None = None) -> None:
    rid = rig.venue.last_list(scope) if request_id is None else request_id
    rig.engine.on_venue(VenueOpenOrdersListed(tuple(reports), rid))


def queried(rig) -> list[str]:
    return sorted(c for a, c in rig.venue.calls if a == "query")


def ms(rig, n: int) -> None:
    rig.clock.now += n * 1_000_000


def reports_of(rig, coid: str):
    e = rig.journal()["exec"]
    return e[e["client_order_id"] == coid.encode()]


def test_a_restart_with_many_open_orders_lists_once_per_symbol_and_queries_only_the_missing(rig):
    btc, eth = [f"b-{i}" for i in range(30)], [f"e-{i}" for i in range(20)]
    open_acked(rig, btc, eth)
    seq = rig.pub.last_seq
    rig.restart()
    assert sorted(s for s, _ in rig.venue.lists) == ["BTC-USDT", "ETH-USDT"]
    assert rig.venue.count("query") == 0
    # while we were down: b-0..b-2 left the book, e-0 was partly filled
    listed(rig, "BTC-USDT", acks(*btc[3:]))
    part = report(vc("e-0"), S.PARTIAL, 400, 400 * ETH_PX, source="open_orders")
    listed(rig, "ETH-USDT", [part, *acks(*eth[1:])])
    assert queried(rig) == sorted(vc(c) for c in btc[:3])
    assert rig.tel["exec.reconcile.lists"] == 2 and rig.tel["exec.reconcile.queries"] == 3
    rig.engine.on_venue(report(vc("b-0"), S.FILLED, BTC_QTY, BTC_QTY * BTC_PX, source="query"))
    rig.engine.on_venue(report(vc("b-1"), S.CANCELLED, source="query"))
    rig.engine.on_venue(report(vc("b-2"), S.EXPIRED, source="query"))
    rig.engine.flush()
    e = rig.journal()["exec"]
    new = e[e["exec_seq"] > seq]
    assert sorted((r["client_order_id"].decode(), S(r["status"]).name) for r in new) == [
        ("b-0", "FILLED"), ("b-1", "CANCELLED"), ("b-2", "EXPIRED"), ("e-0", "PARTIAL")]
    assert list(new["filled"] + new["remaining"]) == [1000] * 4
    (p,) = new[new["client_order_id"] == b"e-0"]
    assert (p["filled"], p["last_qty"], p["last_px"]) == (400, 400, ETH_PX)
    rig.clock.advance(30)
    rig.engine.tick()  # the stream is up and every answer came: nothing more to ask
    assert rig.venue.count("query") == 3 and rig.venue.count("list") == 2
    assert len(rig.engine.open) == 47


def test_an_order_filled_while_execution_was_down_is_reported_filled_exactly_once(rig):
    open_acked(rig, ["f-1", "o-2"])
    rig.restart()
    first = rig.venue.last_list("BTC-USDT")
    # the user stream drops and comes back before the first answer: listed again
    rig.engine.on_venue(UserStreamDisconnected("gone"))
    rig.engine.on_venue(UserStreamConnected())
    second = rig.venue.last_list("BTC-USDT")
    assert second != first
    listed(rig, "BTC-USDT", acks("o-2"), first)  # replaced: its reports count, it infers nothing
    assert rig.venue.count("query") == 0
    listed(rig, "BTC-USDT", acks("o-2"), second)
    assert queried(rig) == [vc("f-1")]
    fill = dict(cum_qty=BTC_QTY, cum_quote=BTC_QTY * BTC_PX)
    rig.engine.on_venue(report(vc("f-1"), S.FILLED, **fill, source="query"))
    rig.engine.on_venue(report(vc("f-1"), S.FILLED, **fill, source="stream"))  # the stream's late copy
    listed(rig, "BTC-USDT", acks("f-1", "o-2"), first)  # a list older than the fill: out of order
    rig.engine.flush()
    rig.engine.on_venue(UserStreamConnected())  # one more round: f-1 is closed, not asked about
    listed(rig, "BTC-USDT", acks("o-2"))
    rig.engine.flush()
    mine = reports_of(rig, "f-1")
    assert [S(x).name for x in mine["status"]] == ["ACK", "FILLED"]
    assert (mine["filled"][-1], mine["remaining"][-1], mine["last_qty"][-1]) == (BTC_QTY, 0, BTC_QTY)
    assert int(mine["last_px"][-1]) == BTC_PX
    assert rig.venue.count("query") == 1
    assert rig.engine.query(QueryOrder("c1", "f-1"))["order"]["status"] == "FILLED"


def test_an_order_closed_in_the_same_batch_as_a_list_answer_is_not_queried_again(rig):
    open_acked(rig, ["o-1", "o-2"])
    rig.restart()
    listed(rig, "BTC-USDT", acks("o-2"))
    assert queried(rig) == [vc("o-1")]
    rig.engine.on_venue(UserStreamConnected())  # a second round, before the query's answer...
    rig.engine.on_venue(report(vc("o-1"), S.CANCELLED, source="query"))  # ...which comes first
    listed(rig, "BTC-USDT", acks("o-2"))  # in the same batch: o-1 is closed, not flushed yet
    rig.engine.flush()
    assert rig.venue.count("query") == 1
    assert [S(x).name for x in reports_of(rig, "o-1")["status"]] == ["ACK", "CANCELLED"]


def test_a_failed_list_request_is_retried_with_backoff_and_queries_nothing_meanwhile(rig):
    open_acked(rig, ["o-1", "o-2"])
    rig.restart()
    rig.engine.on_venue(VenueOpenOrdersFailed(rig.venue.last_list("BTC-USDT"), "GET /api/v3/openOrders: timeout"))
    ms(rig, 99)
    assert rig.engine.tick() == 0
    ms(rig, 1)
    assert rig.engine.tick() == 1  # retried after 100 ms
    assert rig.venue.count("list") == 2
    rig.engine.on_venue(VenueOpenOrdersFailed(rig.venue.last_list("BTC-USDT"), "HTTP 503"))
    ms(rig, 199)
    rig.engine.tick()
    assert rig.venue.count("list") == 2
    ms(rig, 1)
    rig.engine.tick()  # the backoff doubled: 200 ms
    assert rig.venue.count("list") == 3
    rig.engine.on_venue(VenueOpenOrdersFailed(999, "an answer to no current request"))  # ignored
    listed(rig, "BTC-USDT", acks("o-1", "o-2"))
    rig.clock.advance(30)
    rig.engine.tick()
    assert rig.venue.count("list") == 3 and rig.venue.count("query") == 0
    assert rig.tel["exec.reconcile.list_failed"] == 3 and rig.tel["exec.reconcile.list_retries"] == 2


def test_polling_while_the_user_stream_is_down_lists_each_interval_and_never_piles_up(rig):
    coids = [f"o-{i}" for i in range(10)]
    open_acked(rig, coids)
    rig.engine.on_venue(UserStreamDisconnected("gone"))
    for n in range(1, 4):
        rig.engine.tick()
        assert rig.venue.count("list") == n
        listed(rig, "BTC-USDT", acks(*coids))
        ms(rig, 1000)
    assert rig.venue.count("query") == 0
    rig.engine.tick()  # a fourth list whose answer is slow...
    ms(rig, 1000)
    rig.engine.tick()  # ...is not joined by a fifth
    assert rig.venue.count("list") == 4
    slow = rig.venue.last_list("BTC-USDT")
    rig.engine.on_venue(UserStreamConnected())  # back: listed at once (a list may predate what it missed)
    assert rig.venue.count("list") == 5
    listed(rig, "BTC-USDT", acks(*coids[1:]), slow)
    assert rig.venue.count("query") == 0  # the replaced list infers nothing
    listed(rig, "BTC-USDT", acks(*coids[1:]))
    assert queried(rig) == [vc("o-0")]
    assert rig.tel["exec.reconcile.lists"] == 5 and rig.tel["exec.reconcile.queries"] == 1


def test_from_list_all_from_symbols_one_request_lists_them_all_and_foreign_orders_are_ignored(rig):
    open_acked(rig, ["b-1"], ["e-1"], ["x-1"])
    rig.restart()
    assert rig.venue.lists == [("*", rig.venue.last_list("*"))]
    foreign = report("web_b8eD1pQ7mZ", S.ACK, source="open_orders")  # another client of the account
    listed(rig, "*", [*acks("b-1", "e-1"), foreign])
    assert queried(rig) == [vc("x-1")]
    assert rig.tel["exec.reconcile.foreign"] == 1 and rig.tel["exec.venue.unknown_order"] == 0


def test_an_order_of_unknown_outcome_missing_from_the_list_is_queried_never_resent(rig):
    rig.limit("p-1")
    v = vc("p-1")
    rig.engine.on_venue(VenueOutcomeUnknown(v, "place", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.engine.flush()
    rig.restart()
    listed(rig, "BTC-USDT", [])
    assert rig.venue.calls == [("list", "BTC-USDT"), ("query", v)]
    rig.engine.on_venue(VenueOrderNotFound(v))  # within the recvWindow: it may still arrive
    rig.engine.flush()
    assert rig.engine.open and rig.pub.last_seq == 0
    rig.clock.advance(8)
    rig.engine.tick()
    rig.engine.on_venue(VenueOrderNotFound(v))
    rig.engine.flush()
    (r,) = reports_of(rig, "p-1")
    assert S(r["status"]) is S.REJECTED and b"not received" in r["reason"]
    assert rig.venue.count("place") == 0
