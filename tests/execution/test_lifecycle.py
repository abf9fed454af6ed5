"""The transition table and the idempotent apply of venue reports."""

import pytest

from events import Desync, ExecStatus as S
from execution import lifecycle
from execution.lifecycle import TRANSITIONS, State, back, request, state_of, step
from venues.trading import Pending

pytestmark = pytest.mark.timeout(10)


def test_terminal_states_allow_no_transition():
    for s in (S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED):
        assert TRANSITIONS[s] == frozenset()
        assert step(s, 0, 0, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0) is None


def test_every_state_has_a_row_and_rejected_only_comes_from_pending():
    assert set(TRANSITIONS) == set(State)
    assert {int(s) for s in S} < {int(t) for t in State}  # ExecStatus values are States
    assert [s for s in State if lifecycle.allowed(s, S.REJECTED)] == [State.PENDING, State.PENDING_CANCEL]


def test_ack_then_partial_then_filled_keeps_filled_plus_remaining_equal_to_qty():
    s1 = step(S.PENDING, 0, 0, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0)
    assert (s1.status, s1.filled, s1.last_qty) == (S.ACK, 0, 0)
    s2 = step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=4, venue_cum_quote=400, last_qty=4,
              last_px=100, trade_id=1)
    assert (s2.status, s2.filled, s2.last_qty, s2.last_px, s2.trade_id) == (S.PARTIAL, 4, 4, 100, 1)
    s3 = step(S.PARTIAL, 4, 400, 10, venue_status=S.FILLED, cum_qty=10, venue_cum_quote=1060, last_qty=6,
              last_px=110, trade_id=2)
    assert (s3.status, s3.filled, s3.cum_quote, s3.last_qty) == (S.FILLED, 10, 1060, 6)


def test_a_duplicate_report_changes_nothing():
    assert step(S.ACK, 0, 0, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0) is None
    assert step(S.PARTIAL, 4, 400, 10, venue_status=S.PARTIAL, cum_qty=4, venue_cum_quote=400, last_qty=4,
                trade_id=1) is None


def test_an_older_report_arriving_late_changes_nothing():
    # a trade at cum 4 after we already know cum 7
    assert step(S.PARTIAL, 7, 700, 10, venue_status=S.PARTIAL, cum_qty=4, venue_cum_quote=400, last_qty=4,
                trade_id=1) is None
    # the ACK after a fill
    assert step(S.PARTIAL, 7, 700, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0) is None


def test_a_report_that_skips_trades_reports_their_sum_at_the_exact_average_price():
    s = step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=6, venue_cum_quote=630, last_qty=2, last_px=110,
             trade_id=9)
    assert (s.filled, s.last_qty, s.last_px, s.trade_id) == (6, 6, 105, -1)
    inexact = step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=3, venue_cum_quote=301, last_qty=1,
                   last_px=101, trade_id=9)
    assert (inexact.last_qty, inexact.last_px) == (3, 0)


def test_a_cancel_covering_unseen_fills_reports_them_with_the_cancel():
    s = step(S.ACK, 0, 0, 10, venue_status=S.CANCELLED, cum_qty=3, venue_cum_quote=300)
    assert (s.status, s.filled, s.last_qty, s.last_px) == (S.CANCELLED, 3, 3, 100)


def test_ioc_expiring_after_a_partial_fill_is_expired_with_the_fill():
    s = step(S.PENDING, 0, 0, 10, venue_status=S.EXPIRED, cum_qty=4, venue_cum_quote=400)
    assert (s.status, s.filled) == (S.EXPIRED, 4)


def test_pending_cancel_carries_no_step():
    assert step(S.ACK, 0, 0, 10, venue_status=None, cum_qty=0, venue_cum_quote=0) is None


def test_a_venue_contradicting_itself_is_a_desync():
    with pytest.raises(Desync):
        step(S.ACK, 0, 0, 10, venue_status=S.FILLED, cum_qty=5, venue_cum_quote=0)
    with pytest.raises(Desync):
        step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=11, venue_cum_quote=0)
    with pytest.raises(Desync):
        step(S.PENDING, 0, 0, 10, venue_status=S.REJECTED, cum_qty=1, venue_cum_quote=0)


def test_new_with_full_cumulative_fill_is_filled():
    s = step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=10, venue_cum_quote=1000, last_qty=10,
             last_px=100, trade_id=3)
    assert s.status is S.FILLED


# -- the pending states: PENDING_CANCEL, PENDING_REPLACE ---------------------------------------

def test_pending_states_are_the_pair_of_reported_status_and_request_in_flight():
    assert state_of(S.ACK) is State.ACK
    assert state_of(S.ACK, Pending.CANCEL) is State.PENDING_CANCEL
    assert state_of(S.PARTIAL, Pending.REPLACE) is State.PENDING_REPLACE


def test_cancel_is_allowed_from_every_open_state_and_amend_only_once_acknowledged():
    for status in (S.PENDING, S.ACK, S.PARTIAL):
        assert request(status, Pending.NONE, "cancel") is Pending.CANCEL
        assert request(status, Pending.CANCEL, "cancel") is Pending.CANCEL  # sent once more
        assert request(status, Pending.REPLACE, "cancel") is Pending.CANCEL  # cancel while replacing
    assert request(S.PENDING, Pending.NONE, "amend") is None
    assert request(S.ACK, Pending.NONE, "amend") is Pending.REPLACE
    assert request(S.PARTIAL, Pending.NONE, "amend") is Pending.REPLACE
    assert request(S.ACK, Pending.REPLACE, "amend") is None   # one amend in flight at a time
    assert request(S.ACK, Pending.CANCEL, "amend") is None    # being cancelled


def test_a_refused_request_goes_back_to_the_reported_status_and_a_cancel_outlives_the_amend():
    assert back(S.ACK, Pending.REPLACE, Pending.REPLACE) is Pending.NONE
    assert back(S.PENDING, Pending.CANCEL, Pending.CANCEL) is Pending.NONE
    assert back(S.ACK, Pending.CANCEL, Pending.REPLACE) is Pending.CANCEL  # a cancel sent meanwhile


def test_a_fill_while_pending_replace_applies_and_keeps_the_pending_state():
    s = step(S.ACK, 0, 0, 10, venue_status=S.PARTIAL, cum_qty=4, venue_cum_quote=400, last_qty=4,
             last_px=100, trade_id=1, pending=Pending.REPLACE, replacing=True)
    assert (s.status, s.filled, s.pending) == (S.PARTIAL, 4, Pending.REPLACE)


def test_a_terminal_report_ends_a_pending_cancel():
    s = step(S.PARTIAL, 4, 400, 10, venue_status=S.CANCELLED, cum_qty=4, venue_cum_quote=400,
             pending=Pending.CANCEL)
    assert (s.status, s.pending) == (S.CANCELLED, Pending.NONE)
    f = step(S.ACK, 0, 0, 10, venue_status=S.FILLED, cum_qty=10, venue_cum_quote=1000, last_qty=10,
             last_px=100, trade_id=3, pending=Pending.CANCEL)
    assert (f.status, f.pending) == (S.FILLED, Pending.NONE)


def test_a_cancel_while_an_amend_is_in_flight_is_held_but_its_fill_applies():
    assert step(S.ACK, 0, 0, 10, venue_status=S.CANCELLED, cum_qty=0, venue_cum_quote=0,
                pending=Pending.REPLACE, replacing=True) is None
    s = step(S.ACK, 0, 0, 10, venue_status=S.CANCELLED, cum_qty=3, venue_cum_quote=300,
             pending=Pending.REPLACE, replacing=True)
    assert (s.status, s.filled, s.pending) == (S.PARTIAL, 3, Pending.REPLACE)


def test_pending_cancel_of_a_pending_order_takes_the_ack_and_stays_pending():
    s = step(S.PENDING, 0, 0, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0, pending=Pending.CANCEL)
    assert (s.status, s.pending) == (S.ACK, Pending.CANCEL)
