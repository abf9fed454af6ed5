"""The engine with a recording venue, a manual clock, and a real store, journal and ring (rig.py)."""

from __future__ import annotations

import numpy as np
import pytest

from events import EVENT, ExecStatus as S
from execution.model import CancelOrder, QueryOrder, SetTradingMode, SubmitOrder
from venues.trading import (
    UserStreamConnected, UserStreamDisconnected, VenueOrderNotFound, VenueOutcomeUnknown,
    VenueRequestRefused)
from shm import RingReader

from .fakes import report
from .rig import Rig, vc

pytestmark = pytest.mark.timeout(30)


def test_a_new_order_is_persisted_before_it_is_sent_and_answered_accepted(rig):
    placed_with_row = []
    rig.venue.place = lambda o: placed_with_row.append(rig.store.get(o.consumer_id, o.client_order_id) is not None)
    reply = rig.limit("o-1")
    assert reply["status"] == "accepted"
    assert reply["order"]["status"] == "PENDING"
    assert placed_with_row == [True]


def test_lifecycle_ack_partial_filled_is_journaled_with_gap_free_exec_seq_and_published(rig):
    reader = RingReader.attach(rig.ctx.namespace, "exec", EVENT, start="oldest")
    rig.limit("o-1", qty="0.03")
    v = vc("o-1")
    rig.engine.on_venue(report(v, S.ACK))
    rig.engine.on_venue(report(v, S.PARTIAL, 1000, 1000 * 3000000, last_qty=1000, last_px=3000000, trade_id=1))
    rig.engine.on_venue(report(v, S.FILLED, 3000, 3000 * 3000000, last_qty=2000, last_px=3000000, trade_id=2))
    rig.engine.flush()  # three steps in one flush
    recs = rig.journal()
    e = recs["exec"]
    assert list(e["exec_seq"]) == [1, 2, 3]
    assert [S(x) for x in e["status"]] == [S.ACK, S.PARTIAL, S.FILLED]
    assert list(e["filled"]) == [0, 1000, 3000]  # each record: the state after its own step
    assert list(e["filled"] + e["remaining"]) == [3000, 3000, 3000]
    assert list(e["last_qty"]) == [0, 1000, 2000]
    assert set(recs["consumer_id"]) == {1}  # the first consumer execution meets
    ring = np.array(reader.try_read(10))
    reader.release()
    assert list(ring["exec"]["exec_seq"]) == [1, 2, 3]
    reader.close()
    assert rig.engine.query(QueryOrder("c1", "o-1"))["order"]["status"] == "FILLED"


def test_duplicate_and_out_of_order_venue_reports_are_applied_once(rig):
    rig.limit("o-1", qty="0.03")
    v = vc("o-1")
    fill1 = report(v, S.PARTIAL, 1000, 1000 * 3000000, last_qty=1000, last_px=3000000, trade_id=1)
    for ev in (report(v, S.ACK), fill1, fill1, report(v, S.ACK), report(v, S.ACK, source="rest")):
        rig.engine.on_venue(ev)
    rig.engine.flush()
    assert [S(x) for x in rig.journal()["exec"]["status"]] == [S.ACK, S.PARTIAL]


def test_same_client_order_id_is_a_duplicate_for_one_consumer_and_not_across_consumers(rig):
    assert rig.limit("o-1")["status"] == "accepted"
    dup = rig.limit("o-1", qty="0.02")
    assert dup["status"] == "duplicate" and dup["order"]["qty"] == "0.01"
    assert rig.limit("o-1", consumer="c2")["status"] == "accepted"
    assert rig.venue.count("place") == 2
    assert vc("o-1", "c1") != vc("o-1", "c2")


def test_a_duplicate_across_an_engine_restart_never_reaches_the_venue(rig):
    rig.limit("o-1")
    rig.engine.on_venue(report(vc("o-1"), S.ACK))
    rig.engine.flush()
    rig.restart()
    assert rig.engine.open  # reloaded
    reply = rig.limit("o-1")
    assert reply["status"] == "duplicate" and reply["order"]["status"] == "ACK"
    assert rig.venue.count("place") == 0


def test_a_terminal_order_stays_a_duplicate_after_restart(rig):
    rig.limit("o-1")
    rig.engine.on_venue(report(vc("o-1"), S.CANCELLED))
    rig.engine.flush()
    rig.restart()
    assert rig.limit("o-1")["order"]["status"] == "CANCELLED"
    assert rig.venue.calls == [("query", c) for _, c in rig.venue.calls]  # nothing placed


def test_trading_switch_off_refuses_new_orders_but_allows_cancel(rig):
    rig.limit("o-1")
    rig.engine.set_trading_mode(SetTradingMode("c1", False))
    reply = rig.limit("o-2")
    assert reply["status"] == "rejected" and reply["code"] == "trading_disabled"
    assert rig.engine.cancel(CancelOrder("c1", "o-1"))["status"] == "accepted"
    assert rig.venue.count("place") == 1
    rig.restart()  # the switch survives a restart
    assert rig.limit("o-3")["code"] == "trading_disabled"


def test_a_consumer_is_looked_up_in_the_store_once_and_its_switch_still_follows_the_mode(rig, monkeypatch):
    asked = []
    real = rig.store.consumer
    monkeypatch.setattr(rig.store, "consumer", lambda name, **kw: asked.append(name) or real(name, **kw))
    assert rig.limit("o-1")["status"] == "accepted" and rig.limit("o-2")["status"] == "accepted"
    assert rig.limit("o-x", consumer="c2")["status"] == "accepted"
    assert asked == ["c1", "c2"]
    rig.engine.set_trading_mode(SetTradingMode("c1", False))
    assert rig.limit("o-3")["code"] == "trading_disabled" and rig.limit("o-y", consumer="c2")["status"] == "accepted"
    rig.engine.set_trading_mode(SetTradingMode("c1", True))
    assert rig.limit("o-4")["status"] == "accepted"


@pytest.mark.parametrize("fields, fragment", [
    (dict(qty=0.01), "decimal string"),
    (dict(qty="-1"), "positive"),
    (dict(qty="0.000001"), "exact decimal"),
    (dict(price="30000.001"), "exact decimal"),
    (dict(price="1", qty="0.001"), "minimum"),
    (dict(tif="DAY"), "tif"),
    (dict(side="hold"), "side"),
])
def test_bad_fields_are_rejected_with_a_reason_and_never_sent(rig, fields, fragment):
    reply = rig.limit("o-1", **fields)
    assert reply["status"] == "rejected" and fragment in reply["reason"]
    assert rig.venue.calls == []


def test_unknown_symbol_and_missing_fields_are_rejected(rig):
    e = rig.engine
    assert "unknown instrument" in e.submit(SubmitOrder("c1", "a", "DOGE-EUR", "buy", "limit", "GTC", "1", "1"))["reason"]
    assert "needs a price" in e.submit(SubmitOrder("c1", "b", "BTC-USDT", "buy", "limit", "GTC", "1", None))["reason"]
    assert "no price" in e.submit(SubmitOrder("c1", "c", "BTC-USDT", "buy", "market", None, "1", "1"))["reason"]
    assert "client_order_id" in e.submit(SubmitOrder("c1", "x" * 41, "BTC-USDT", "buy", "market", None, "1", None))["reason"]
    assert rig.venue.calls == []


def test_a_rejected_request_does_not_consume_the_client_order_id(rig):
    assert rig.limit("o-1", qty="-1")["status"] == "rejected"
    assert rig.limit("o-1")["status"] == "accepted"


def test_pre_trade_limits_each_reject_with_their_name(run_ctx):
    r = Rig(run_ctx, limits={"default": {"max_notional": "1000", "max_open_orders": 2, "max_orders_per_s": 3}})
    try:
        assert r.limit("big", qty="0.1", price="30000")["code"] == "max_notional"
        assert r.limit("a", qty="0.001")["status"] == "accepted"
        assert r.limit("b", qty="0.001")["status"] == "accepted"
        assert r.limit("c", qty="0.001")["code"] == "max_open_orders"
        r.engine.on_venue(report(vc("a"), S.CANCELLED))
        r.engine.on_venue(report(vc("b"), S.CANCELLED))
        r.engine.flush()
        assert r.limit("d", qty="0.001")["status"] == "accepted"
        r.engine.on_venue(report(vc("d"), S.CANCELLED))
        r.engine.flush()
        assert r.limit("e", qty="0.001")["code"] == "max_orders_per_s"
        r.clock.advance(1.0)
        assert r.limit("e", qty="0.001")["status"] == "accepted"
        m = r.engine.submit(SubmitOrder("c1", "m", "BTC-USDT", "buy", "market", None, "0.001", None))
        assert m["code"] == "max_notional" and "ref_price" in m["reason"]
    finally:
        r.close()


def test_a_venue_refusal_rejects_the_order_with_the_venue_code(rig):
    rig.limit("o-1")
    rig.engine.on_venue(VenueRequestRefused(vc("o-1"), "place", -2010, "Account has insufficient balance"))
    rig.engine.flush()
    e = rig.journal()["exec"]
    assert S(e["status"][0]) is S.REJECTED and int(e["reject_code"][0]) == -2010
    assert b"insufficient balance" in e["reason"][0]


def test_an_unknown_outcome_is_resolved_by_query_never_by_resending(rig):
    rig.limit("o-1")
    v = vc("o-1")
    rig.engine.on_venue(VenueOutcomeUnknown(v, "place", "timeout", sent_ms=rig.clock.now // 1_000_000))
    assert rig.engine.tick() == 0
    rig.clock.advance(0.2)
    rig.engine.tick()
    assert rig.venue.calls == [("place", v), ("query", v)]
    rig.engine.on_venue(report(v, S.ACK, source="query"))
    rig.engine.flush()
    assert rig.engine.query(QueryOrder("c1", "o-1"))["order"]["status"] == "ACK"
    assert rig.venue.count("place") == 1


def test_not_found_is_final_only_after_the_recv_window_and_then_rejects(rig):
    rig.limit("o-1")
    v = vc("o-1")
    rig.engine.on_venue(VenueOutcomeUnknown(v, "place", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.engine.on_venue(VenueOrderNotFound(v))
    rig.engine.flush()
    assert rig.pub.last_seq == 0  # too early to tell: the request may still arrive
    rig.clock.advance(8.0)
    rig.engine.tick()
    assert rig.venue.calls[-1] == ("query", v)
    rig.engine.on_venue(VenueOrderNotFound(v))
    rig.engine.flush()
    e = rig.journal()["exec"]
    assert S(e["status"][-1]) is S.REJECTED and b"not received" in e["reason"][-1]
    assert rig.venue.count("place") == 1


def test_a_duplicate_order_refusal_is_resolved_by_query_not_rejected(rig):
    rig.limit("o-1")
    rig.engine.on_venue(VenueRequestRefused(vc("o-1"), "place", -2010, "Duplicate order sent.", duplicate=True))
    rig.engine.flush()
    assert rig.pub.last_seq == 0
    rig.clock.advance(0.5)
    rig.engine.tick()
    assert rig.venue.calls[-1] == ("query", vc("o-1"))


def test_a_refusal_the_adapter_did_not_flag_duplicate_rejects_whatever_its_text(rig):
    rig.limit("o-1")  # the engine reads the adapter's flag, never the venue's message
    rig.engine.on_venue(VenueRequestRefused(vc("o-1"), "place", -2010, "Duplicate order sent."))
    rig.engine.flush()
    e = rig.journal()["exec"]
    assert S(e["status"][-1]) is S.REJECTED and e["reject_code"][-1] == -2010


def test_a_cancel_report_naming_the_cancel_id_first_finds_the_order_by_its_original_id(rig):
    rig.limit("o-1")
    rep = report(vc("o-1"), S.CANCELLED)
    rep.client_order_ids = ("some-cancel-id", vc("o-1"))
    rig.engine.on_venue(rep)
    rig.engine.flush()
    assert S(rig.journal()["exec"]["status"][0]) is S.CANCELLED


def test_stream_reconnect_and_polling_while_down_list_the_open_orders(rig):
    rig.limit("o-1")
    rig.limit("o-2")
    rig.engine.on_venue(UserStreamConnected())
    assert rig.venue.lists == [("BTC-USDT", 1)] and rig.venue.count("query") == 0
    rig.engine.on_venue(UserStreamDisconnected("gone"))
    rig.clock.advance(2)
    rig.engine.tick()  # polls while the stream is down
    assert rig.venue.count("list") == 1  # still out: a poll does not pile lists up
    rig.clock.advance(8)
    rig.engine.tick()  # no answer within 4 x the longest backoff: listed again
    assert rig.venue.count("list") == 2 and rig.venue.count("query") == 0


def test_recovery_applies_journaled_reports_the_store_missed(rig):
    rig.limit("o-1")
    rig.engine.on_venue(report(vc("o-1"), S.ACK))
    # crash between the journal append and the store commit: journal only
    rig.engine.store.save = lambda *a, **k: None
    rig.engine.flush()
    rig.restart()
    assert rig.engine.query(QueryOrder("c1", "o-1"))["order"]["status"] == "ACK"
    assert rig.store.applied_seq() == 1
    rig.engine.on_venue(report(vc("o-1"), S.ACK))  # the same report again after reconciliation
    rig.engine.flush()
    assert rig.pub.last_seq == 1
