"""The transition table and the idempotent apply of venue reports."""

import pytest

from events import Desync, ExecStatus as S
from execution import lifecycle
from execution.lifecycle import TRANSITIONS, step


def test_terminal_states_allow_no_transition():
    for s in (S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED):
        assert TRANSITIONS[s] == frozenset()
        assert step(s, 0, 0, 10, venue_status=S.ACK, cum_qty=0, venue_cum_quote=0) is None


def test_every_state_has_a_row_and_rejected_only_comes_from_pending():
    assert set(TRANSITIONS) == set(S)
    assert [s for s in S if lifecycle.allowed(s, S.REJECTED)] == [S.PENDING]


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
