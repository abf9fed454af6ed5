"""The canonical order lifecycle: one transition table, and the idempotent apply.

An order's state is its reported `status` (events.ExecStatus: what its exec reports say)
and, while a cancel or amend of ours is in flight, `pending` (venues.trading.Pending):
the table's PENDING_CANCEL and PENDING_REPLACE (`state_of`).

    from \\ to          ACK  PARTIAL  FILLED  CANCELLED  REJECTED  EXPIRED  P_CANCEL  P_REPLACE
    PENDING           x      x        x        x          x         x        c
    ACK               .      x        x        x                    x        c         a
    PARTIAL                  x*       x        x                    x        c         a
    PENDING_CANCEL    b      b        x        x          x         x        c
    PENDING_REPLACE   b      b        x        h                    h        c
    terminal (FILLED, CANCELLED, REJECTED, EXPIRED): nothing

    x  allowed    .  allowed, and a no-op unless the fill grew (a duplicate)
    x* PARTIAL -> PARTIAL only when the cumulative fill grows
    c  a cancel request (again from PENDING_CANCEL: sent once more)
    a  an amend request (only of an order the venue acknowledged, and none in flight)
    b  back to the reported status: the request was refused, or (PENDING_REPLACE) the amend
       is done; PENDING_CANCEL of a PENDING order goes back to PENDING
    h  held while an amend is in flight: the cancel leg of a cancel-replace (its fill
       applies, its status waits for the amend's outcome; a refused amend queries the order)

Inside PENDING_CANCEL and PENDING_REPLACE a venue report moves the reported status by
the rows of PENDING, ACK and PARTIAL (an ACK, a fill) and the pending state stays: a fill
while an amend is in flight applies. A terminal report ends the pending state. Every exec
report on the wire carries the reported status, so the wire values are ExecStatus's
only: a pending cancel or amend of an ACK order reports ACK.

Venue reports are applied by their *cumulative* figures, never by adding deltas, so
a duplicate report (same trade id, same update) and an out-of-order one (an older
cumulative fill, an ACK after a fill) change nothing: the fill is max(ours, the
report's), and a status is applied only when the table allows the step. A report
that skips ahead (its cumulative fill covers trades we never saw) yields one report
whose `last_qty` is the whole difference; its `last_px` is the exact average of the
difference when it is representable, else 0 and `trade_id` -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from events import Desync, ExecStatus
from venues.trading import Pending

S = ExecStatus
TERMINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})


class State(IntEnum):
    """The table's states: ExecStatus's (same values), and the two of a request in flight.
    Never on the wire: exec reports carry the reported status (an ExecStatus)."""

    ACK = 1
    PARTIAL = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    EXPIRED = 6
    PENDING = 7
    PENDING_CANCEL = 8
    PENDING_REPLACE = 9


T = State
TRANSITIONS: dict[State, frozenset[State]] = {
    T.PENDING: frozenset({T.ACK, T.PARTIAL, T.FILLED, T.CANCELLED, T.REJECTED, T.EXPIRED, T.PENDING_CANCEL}),
    T.ACK: frozenset({T.ACK, T.PARTIAL, T.FILLED, T.CANCELLED, T.EXPIRED, T.PENDING_CANCEL, T.PENDING_REPLACE}),
    T.PARTIAL: frozenset({T.PARTIAL, T.FILLED, T.CANCELLED, T.EXPIRED, T.PENDING_CANCEL, T.PENDING_REPLACE}),
    T.PENDING_CANCEL: frozenset({T.PENDING, T.ACK, T.PARTIAL, T.FILLED, T.CANCELLED, T.REJECTED, T.EXPIRED,
                                 T.PENDING_CANCEL}),
    T.PENDING_REPLACE: frozenset({T.ACK, T.PARTIAL, T.FILLED, T.CANCELLED, T.EXPIRED, T.PENDING_CANCEL}),
    T.FILLED: frozenset(),
    T.CANCELLED: frozenset(),
    T.REJECTED: frozenset(),
    T.EXPIRED: frozenset(),
}
_PENDING_STATE = {Pending.CANCEL: T.PENDING_CANCEL, Pending.REPLACE: T.PENDING_REPLACE}
_REQUEST = {"cancel": (T.PENDING_CANCEL, Pending.CANCEL), "amend": (T.PENDING_REPLACE, Pending.REPLACE)}


def allowed(frm: State | ExecStatus, to: State | ExecStatus) -> bool:
    """True when the table allows `frm -> to` (ExecStatus values are States of the same value)."""
    return to in TRANSITIONS[frm]


def state_of(status: ExecStatus, pending: Pending = Pending.NONE) -> State:
    """The table state of an order reporting `status` with `pending` in flight."""
    return _PENDING_STATE[pending] if pending else State(status)


def request(status: ExecStatus, pending: Pending, action: str) -> Pending | None:
    """The pending state after sending `action` ("cancel" | "amend"); None: the table refuses it."""
    to, p = _REQUEST[action]
    frm = state_of(status, pending)
    if to is T.PENDING_REPLACE and frm is T.PENDING:
        return None  # the venue has not acknowledged the order: nothing to amend yet
    return p if allowed(frm, to) else None


def back(status: ExecStatus, pending: Pending, done: Pending) -> Pending:
    """The pending state once request `done` is over (refused, or an amend carried out): a
    cancel sent while an amend was in flight stays pending."""
    if pending is not done:
        return pending
    assert allowed(state_of(status, pending), status), (status, pending)
    return Pending.NONE


@dataclass(frozen=True, slots=True)
class Step:
    """What one venue report changes: the new state and this report's own trade."""

    status: ExecStatus
    filled: int
    cum_quote: int
    last_qty: int
    last_px: int
    trade_id: int
    fee: int
    pending: Pending = Pending.NONE


def step(status: ExecStatus, filled: int, cum_quote: int, qty: int, *, venue_status: ExecStatus | None,
         cum_qty: int, venue_cum_quote: int, last_qty: int = 0, last_px: int = 0,
         trade_id: int = -1, fee: int = 0, pending: Pending = Pending.NONE,
         replacing: bool = False) -> Step | None:
    """Apply one venue report to an order's (status, filled, cum_quote) with `pending` in
    flight; None: no change. `replacing`: an amend is in flight, so a CANCELLED or EXPIRED
    is held (the table's `h`).

    `cum_quote` is at px_scale + sz_scale, so a quote difference divided by a quantity
    mantissa is a price mantissa at px_scale (exact, or the report gets last_px 0).
    """
    if status in TERMINAL:
        return None
    if replacing and venue_status in (S.CANCELLED, S.EXPIRED):
        venue_status = None  # held: only its fill applies
    if cum_qty > qty or cum_qty < 0:
        raise Desync(f"venue cumulative fill out of range: cum_qty={cum_qty}, qty={qty}")
    new_filled = max(filled, cum_qty)
    grew = new_filled > filled
    target = venue_status
    if target is None or target in (S.ACK, S.PARTIAL):
        if target is None and not grew:
            return None
        target = S.PARTIAL if new_filled > 0 else S.ACK
        if new_filled == qty:
            target = S.FILLED
    if target is S.FILLED and new_filled != qty:
        if cum_qty < filled:  # a stale FILLED cannot exist: the venue contradicts itself
            raise Desync(f"venue reported FILLED with cum_qty={cum_qty} < qty={qty}")
        raise Desync(f"venue reported FILLED with cum_qty={cum_qty} != qty={qty}")
    if target is S.REJECTED and new_filled:
        raise Desync(f"venue reported REJECTED with a fill: cum_qty={cum_qty}")
    if target is status and not grew:
        return None  # a duplicate
    if not allowed(status, target):
        return None  # out of order: an older state than ours
    if target in TERMINAL:
        pending = Pending.NONE  # the order is over: so is any request of ours
    delta = new_filled - filled
    new_quote = max(cum_quote, venue_cum_quote) if grew else cum_quote
    if not grew:
        return Step(target, filled, cum_quote, 0, 0, -1, 0, pending)
    if last_qty == delta and trade_id >= 0:
        return Step(target, new_filled, new_quote, delta, last_px, trade_id, fee, pending)
    # The report covers trades we did not see one by one: report their sum.
    quote_delta = new_quote - cum_quote
    avg, rem = divmod(quote_delta, delta) if quote_delta > 0 else (0, 1)
    return Step(target, new_filled, new_quote, delta, avg if rem == 0 else 0, -1,
                fee if last_qty == delta else 0, pending)
