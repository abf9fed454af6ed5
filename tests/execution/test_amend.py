"""Amend through the engine with a recording venue (rig.py): accepted, refused, unknown then
queried, fills and cancels while it is in flight, and a cancel-replace that moves the order
to a new venue order. BTC-USDT in the rig: px_scale 2, sz_scale 5 ("0.03" = 3000)."""

from __future__ import annotations

import pytest

from events import ExecStatus as S
from execution.ids import venue_client_order_id
from execution.model import AmendOrder, CancelOrder, QueryOrder, SetTradingMode
from venues.trading import Pending, VenueOrderNotFound, VenueOutcomeUnknown, VenueRequestRefused

from .fakes import report
from .rig import vc

pytestmark = pytest.mark.timeout(30)

PX = 3_000_000            # 30000.00
FILL_PX = 3_000_000


def acked(rig, coid="o-1", qty="0.03"):
    rig.limit(coid, qty=qty)
    rig.engine.on_venue(report(vc(coid), S.ACK))
    rig.engine.flush()
    return vc(coid)


def amend(rig, coid="o-1", qty=None, price=None):
    return rig.engine.amend(AmendOrder("c1", coid, qty, price))


def state(rig, coid="o-1"):
    return rig.engine.query(QueryOrder("c1", coid))["order"]


def last(rig):
    return rig.journal()["exec"][-1]


def test_an_accepted_amend_is_pending_replace_on_ack_and_its_report_carries_the_new_qty(rig):
    v = acked(rig)
    r = amend(rig, qty="0.02")
    assert r["status"] == "accepted"
    assert rig.venue.amends == [(v, 2000, PX)]
    assert (state(rig)["status"], state(rig)["pending"]) == ("ACK", "replace")  # the wire keeps ACK
    seq = rig.pub.last_seq
    rig.engine.on_venue(report(v, S.ACK, price=PX, qty=2000, amended=True, source="amend"))
    rig.engine.flush()
    assert rig.pub.last_seq == seq + 1
    e = last(rig)
    assert (S(e["status"]), int(e["qty"]), int(e["remaining"]), int(e["price"])) == (S.ACK, 2000, 2000, PX)
    assert e["reason"] == b"amended" and int(e["reject_code"]) == 0
    o = state(rig)
    assert (o["qty"], o["pending"]) == ("0.02", None)
    rig.engine.on_venue(report(v, S.ACK, price=PX, qty=2000, amended=True))  # the stream's copy
    rig.engine.flush()
    assert rig.pub.last_seq == seq + 1


def test_a_refused_amend_goes_back_and_reports_the_venue_code_to_the_consumer(rig):
    v = acked(rig)
    amend(rig, qty="0.02")
    rig.engine.on_venue(VenueRequestRefused(v, "amend", -2038, "Order amend is not supported for this symbol."))
    rig.engine.flush()
    e = last(rig)
    assert (S(e["status"]), int(e["qty"]), int(e["reject_code"])) == (S.ACK, 3000, -2038)
    assert e["reason"].startswith(b"amend refused: -2038")
    assert state(rig)["pending"] is None
    rig.clock.advance(0.5)
    rig.engine.tick()
    assert rig.venue.calls[-1] == ("query", v)  # what the venue has is what counts
    assert amend(rig, qty="0.01")["status"] == "accepted"  # the order takes another amend


def test_an_unknown_amend_outcome_is_queried_and_the_query_showing_it_done_completes_it(rig):
    v = acked(rig)
    amend(rig, price="29999")
    rig.engine.on_venue(VenueOutcomeUnknown(v, "amend", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.clock.advance(0.2)
    rig.engine.tick()
    assert rig.venue.calls[-1] == ("query", v)
    rig.engine.on_venue(report(v, S.ACK, price=2_999_900, qty=3000, source="query"))
    rig.engine.flush()
    e = last(rig)
    assert (int(e["price"]), e["reason"]) == (2_999_900, b"amended")
    assert state(rig)["pending"] is None and rig.venue.count("amend") == 1  # never re-sent


def test_an_unknown_amend_the_venue_never_took_is_not_applied_once_the_recv_window_passed(rig):
    v = acked(rig)
    amend(rig, qty="0.02")
    rig.engine.on_venue(VenueOutcomeUnknown(v, "amend", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.clock.advance(0.2)
    rig.engine.tick()
    seq = rig.pub.last_seq
    rig.engine.on_venue(report(v, S.ACK, price=PX, qty=3000, source="query"))  # unchanged: too early to say
    rig.engine.flush()
    assert rig.pub.last_seq == seq and state(rig)["pending"] == "replace"
    rig.clock.advance(8)
    rig.engine.tick()
    rig.engine.on_venue(report(v, S.ACK, price=PX, qty=3000, source="query"))
    rig.engine.flush()
    e = last(rig)
    assert int(e["qty"]) == 3000 and e["reason"].startswith(b"amend not applied")
    assert state(rig)["pending"] is None


def test_a_fill_while_pending_replace_applies_and_the_amend_keeps_remaining_as_qty_minus_filled(rig):
    v = acked(rig)
    amend(rig, qty="0.02")
    rig.engine.on_venue(report(v, S.PARTIAL, 500, 500 * FILL_PX, last_qty=500, last_px=FILL_PX, trade_id=1))
    rig.engine.flush()
    e = last(rig)
    assert (S(e["status"]), int(e["filled"]), int(e["qty"])) == (S.PARTIAL, 500, 3000)
    assert state(rig)["pending"] == "replace"
    rig.engine.on_venue(report(v, S.PARTIAL, 500, 500 * FILL_PX, price=PX, qty=2000, amended=True))
    rig.engine.flush()
    e = last(rig)
    assert (S(e["status"]), int(e["qty"]), int(e["filled"]), int(e["remaining"])) == (S.PARTIAL, 2000, 500, 1500)


def test_a_cancel_while_pending_replace_is_sent_and_outlives_the_refused_amend(rig):
    v = acked(rig)
    amend(rig, qty="0.02")
    assert rig.engine.cancel(CancelOrder("c1", "o-1"))["status"] == "accepted"
    assert rig.venue.calls[-1] == ("cancel", v) and state(rig)["pending"] == "cancel"
    rig.engine.on_venue(VenueRequestRefused(v, "amend", -2038, "Unknown order sent."))
    rig.engine.flush()
    assert state(rig)["pending"] == "cancel"
    rig.engine.on_venue(report(v, S.CANCELLED))
    rig.engine.flush()
    assert S(last(rig)["status"]) is S.CANCELLED and state(rig)["pending"] is None


def test_a_refused_cancel_returns_the_order_to_its_previous_state(rig):
    v = acked(rig)
    rig.engine.cancel(CancelOrder("c1", "o-1"))
    assert state(rig)["pending"] == "cancel"
    rig.engine.on_venue(VenueRequestRefused(v, "cancel", -2011, "Unknown order sent."))
    rig.engine.flush()
    assert (state(rig)["status"], state(rig)["pending"]) == ("ACK", None)


def test_an_amend_of_a_filled_order_is_refused_and_never_sent(rig):
    v = acked(rig)
    rig.engine.on_venue(report(v, S.FILLED, 3000, 3000 * FILL_PX, last_qty=3000, last_px=FILL_PX, trade_id=1))
    rig.engine.flush()
    r = amend(rig, qty="0.02")
    assert (r["status"], r["code"]) == ("rejected", "order_closed")
    assert rig.venue.count("amend") == 0


@pytest.mark.parametrize("kw, code, fragment", [
    ({"qty": "0.03", "price": "30000"}, "validation", "changes nothing"),
    ({"qty": "0.000001"}, "validation", "qty is not an exact decimal"),
    ({"price": "30000.001"}, "validation", "price is not an exact decimal"),
    ({}, "validation", "needs a new qty or a new price"),
    ({"qty": 0.02}, "validation", "decimal string"),
])
def test_bad_amends_are_rejected_with_a_reason_and_never_sent(rig, kw, code, fragment):
    acked(rig)
    r = amend(rig, **kw)
    assert (r["status"], r["code"]) == ("rejected", code) and fragment in r["reason"]
    assert rig.venue.count("amend") == 0


def test_an_amend_must_leave_more_than_the_filled_quantity(rig):
    v = acked(rig)
    rig.engine.on_venue(report(v, S.PARTIAL, 1000, 1000 * FILL_PX, last_qty=1000, last_px=FILL_PX, trade_id=1))
    rig.engine.flush()
    r = amend(rig, qty="0.01")
    assert r["code"] == "validation" and "above the filled" in r["reason"]


def test_an_amend_before_the_ack_or_while_another_is_in_flight_is_busy(rig):
    rig.limit("o-1", qty="0.03")
    assert amend(rig, qty="0.02")["code"] == "order_busy"  # PENDING: nothing to amend at the venue yet
    rig.engine.on_venue(report(vc("o-1"), S.ACK))
    assert amend(rig, qty="0.02")["status"] == "accepted"
    assert amend(rig, qty="0.01")["code"] == "order_busy"
    assert rig.venue.count("amend") == 1


def test_an_amend_obeys_the_trading_switch_and_the_notional_limit(run_ctx):
    from .rig import Rig
    rig = Rig(run_ctx, limits={"default": {"max_notional": "1000"}})
    try:
        acked(rig)  # 0.03 x 30000 = 900
        r = amend(rig, qty="0.04")
        assert (r["status"], r["code"]) == ("rejected", "max_notional")
        rig.engine.set_trading_mode(SetTradingMode("c1", False))
        assert amend(rig, qty="0.02")["code"] == "trading_disabled"
        assert rig.venue.count("amend") == 0
    finally:
        rig.close()


def test_a_cancel_replace_moves_the_order_to_its_new_venue_order_and_adds_its_fills(rig):
    v = acked(rig)
    rig.engine.on_venue(report(v, S.PARTIAL, 1000, 1000 * FILL_PX, last_qty=1000, last_px=FILL_PX, trade_id=1))
    rig.engine.flush()
    amend(rig, price="29990")
    new = venue_client_order_id(1, "o-1", amend=1)
    assert new != v and len(new) == len(v)
    seq = rig.pub.last_seq
    # the cancel leg (old venue order) is held while the amend is in flight
    rig.engine.on_venue(report(v, S.CANCELLED, 1000, 1000 * FILL_PX, source="amend"))
    rig.engine.flush()
    assert rig.pub.last_seq == seq and state(rig)["status"] == "PARTIAL"
    # the new venue order carries the remainder: 2000 at 29990
    rig.engine.on_venue(report(new, S.ACK, venue_order_id=8, price=2_999_000, qty=2000, source="amend"))
    rig.engine.flush()
    e = last(rig)
    assert (S(e["status"]), int(e["price"]), int(e["qty"]), int(e["filled"]), int(e["remaining"])) == \
        (S.PARTIAL, 2_999_000, 3000, 1000, 2000)
    assert e["reason"] == b"amended" and int(e["venue_order_id"]) == 8
    assert state(rig)["venue_client_order_id"] == new
    # the new venue order's cumulative figures add to the fills before it
    rig.engine.on_venue(report(new, S.FILLED, 2000, 2000 * 2_999_000, last_qty=2000, last_px=2_999_000,
                               trade_id=2, venue_order_id=8))
    rig.engine.on_venue(report(v, S.CANCELLED, 1000, 1000 * FILL_PX))  # a late copy of the old one: dropped
    rig.engine.flush()
    e = last(rig)
    assert (S(e["status"]), int(e["filled"]), int(e["last_qty"])) == (S.FILLED, 3000, 2000)
    assert int(e["cum_quote"]) == 1000 * FILL_PX + 2000 * 2_999_000
    assert rig.tel["exec.venue.superseded_report"] == 1


def test_after_a_restart_the_store_finds_the_order_by_its_new_venue_order(rig):
    v = acked(rig)
    amend(rig, price="29990")
    new = venue_client_order_id(1, "o-1", amend=1)
    rig.restart()  # the amend in flight was committed before it left
    rig.engine.on_venue(report(new, S.ACK, venue_order_id=8, price=2_999_000, qty=3000, source="stream"))
    rig.engine.flush()
    o = state(rig)
    assert (o["price"], o["venue_client_order_id"], o["pending"]) == ("29990", new, None)
    rig.restart()
    rig.engine.on_venue(report(new, S.CANCELLED, venue_order_id=8))
    rig.engine.flush()
    assert state(rig)["status"] == "CANCELLED"
    assert rig.store.by_venue_coid(new) is not None and rig.store.by_venue_coid(v) is None


def test_a_cancel_sent_during_a_cancel_replace_is_sent_again_to_the_new_venue_order(rig):
    v = acked(rig)
    amend(rig, price="29990")
    rig.engine.cancel(CancelOrder("c1", "o-1"))
    new = venue_client_order_id(1, "o-1", amend=1)
    rig.engine.on_venue(report(v, S.CANCELLED, source="amend"))  # the cancel leg; our cancel then misses
    rig.engine.on_venue(report(new, S.ACK, venue_order_id=8, price=2_999_000, qty=3000, source="amend"))
    rig.engine.flush()
    assert rig.venue.calls[-1] == ("cancel", new) and state(rig)["pending"] == "cancel"


def test_an_unknown_cancel_replace_finds_the_new_venue_order_by_query(rig):
    v = acked(rig)
    amend(rig, price="29990")
    new = venue_client_order_id(1, "o-1", amend=1)
    rig.engine.on_venue(VenueOutcomeUnknown(v, "amend", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.clock.advance(0.2)
    rig.engine.tick()
    rig.engine.on_venue(report(v, S.CANCELLED, source="query"))  # the old one is cancelled: a cancel-replace
    rig.clock.advance(0.5)
    rig.engine.tick()
    assert rig.venue.calls[-1] == ("query", new)
    rig.engine.on_venue(report(new, S.ACK, venue_order_id=8, price=2_999_000, qty=3000, source="query"))
    rig.engine.flush()
    assert (state(rig)["status"], state(rig)["price"], state(rig)["pending"]) == ("ACK", "29990", None)


def test_an_unknown_cancel_replace_that_never_placed_ends_the_order_cancelled(rig):
    v = acked(rig)
    amend(rig, price="29990")
    new = venue_client_order_id(1, "o-1", amend=1)
    rig.engine.on_venue(VenueOutcomeUnknown(v, "amend", "timeout", sent_ms=rig.clock.now // 1_000_000))
    rig.engine.on_venue(report(v, S.CANCELLED, source="query"))
    rig.clock.advance(8)
    rig.engine.on_venue(VenueOrderNotFound(new))
    rig.engine.flush()
    assert last(rig)["reason"].startswith(b"amend not applied")
    rig.clock.advance(1)
    rig.engine.tick()
    rig.engine.on_venue(report(v, S.CANCELLED, source="query"))
    rig.engine.flush()
    assert state(rig)["status"] == "CANCELLED"


def test_pending_is_persisted_and_survives_a_restart(rig):
    acked(rig)
    rig.engine.cancel(CancelOrder("c1", "o-1"))
    rig.engine.flush()
    rig.restart()
    assert rig.store.get(1, "o-1").pending is Pending.CANCEL


def test_an_amend_on_a_venue_whose_adapter_cannot_amend_is_refused_and_changes_nothing(rig):
    acked(rig)
    rig.venue.amend = None  # an adapter without amend (yet)
    r = amend(rig, qty="0.02")
    assert (r["status"], r["code"]) == ("rejected", "not_supported")
    assert state(rig)["pending"] is None and rig.store.get(1, "o-1").amends == 0


def test_reports_made_before_an_amend_are_journaled_before_its_state_is_committed(rig):
    v = acked(rig)
    rig.engine.on_venue(report(v, S.PARTIAL, 500, 500 * FILL_PX, last_qty=500, last_px=FILL_PX, trade_id=1))
    seq = rig.pub.last_seq
    amend(rig, qty="0.02")  # no flush in between: the amend's commit must not run ahead of the journal
    assert rig.pub.last_seq == seq + 1 and rig.store.applied_seq() == seq + 1
    assert rig.store.get(1, "o-1").filled == 500


def test_a_cancel_refused_because_a_cancel_replace_took_its_venue_order_goes_to_the_new_one(rig):
    v = acked(rig)
    amend(rig, price="29990")
    rig.engine.cancel(CancelOrder("c1", "o-1"))
    new = venue_client_order_id(1, "o-1", 1)
    rig.engine.on_venue(report(v, S.CANCELLED, source="amend"))           # the cancel leg
    rig.engine.on_venue(VenueRequestRefused(v, "cancel", -2011, "Unknown order sent."))  # ours missed it
    assert state(rig)["pending"] == "cancel"
    rig.engine.on_venue(report(new, S.ACK, venue_order_id=8, price=2_999_000, qty=3000, source="amend"))
    rig.engine.flush()
    assert rig.venue.calls[-1] == ("cancel", new)
    rig.engine.on_venue(report(new, S.CANCELLED, venue_order_id=8))
    rig.engine.flush()
    assert state(rig)["status"] == "CANCELLED"


def test_a_cancel_sent_while_an_amend_is_refused_is_sent_again(rig):
    v = acked(rig)
    amend(rig, qty="0.02")
    rig.engine.cancel(CancelOrder("c1", "o-1"))
    rig.engine.on_venue(VenueRequestRefused(v, "cancel", -2011, "Unknown order sent."))
    rig.engine.on_venue(VenueRequestRefused(v, "amend", -2038, "Unknown order sent."))
    rig.engine.flush()
    assert [c for c in rig.venue.calls if c[0] == "cancel"] == [("cancel", v), ("cancel", v)]
    assert state(rig)["pending"] == "cancel"
