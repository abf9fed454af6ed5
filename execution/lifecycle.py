"""The canonical order lifecycle: one transition table, and the idempotent apply.

    from/to     ACK  PARTIAL  FILLED  CANCELLED  REJECTED  EXPIRED
    PENDING      x      x        x        x          x         x
    ACK          .      x        x        x                    x
    PARTIAL             x*       x        x                    x
    terminal (FILLED, CANCELLED, REJECTED, EXPIRED): nothing

    x  allowed    .  allowed, and a no-op unless the fill grew (a duplicate)
    x* PARTIAL -> PARTIAL only when the cumulative fill grows

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

from events import Desync, ExecStatus

S = ExecStatus
TERMINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})

TRANSITIONS: dict[ExecStatus, frozenset[ExecStatus]] = {
    S.PENDING: frozenset({S.ACK, S.PARTIAL, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.ACK: frozenset({S.ACK, S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


def allowed(frm: ExecStatus, to: ExecStatus) -> bool:
    """True when the table allows `frm -> to`."""
    return to in TRANSITIONS[frm]


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


def step(status: ExecStatus, filled: int, cum_quote: int, qty: int, *, venue_status: ExecStatus | None,
         cum_qty: int, venue_cum_quote: int, last_qty: int = 0, last_px: int = 0,
         trade_id: int = -1, fee: int = 0) -> Step | None:
    """Apply one venue report to an order's (status, filled, cum_quote); None: no change.

    `cum_quote` is at px_scale + sz_scale, so a quote difference divided by a quantity
    mantissa is a price mantissa at px_scale (exact, or the report gets last_px 0).
    """
    if status in TERMINAL:
        return None
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
    delta = new_filled - filled
    new_quote = max(cum_quote, venue_cum_quote) if grew else cum_quote
    if not grew:
        return Step(target, filled, cum_quote, 0, 0, -1, 0)
    if last_qty == delta and trade_id >= 0:
        return Step(target, new_filled, new_quote, delta, last_px, trade_id, fee)
    # The report covers trades we did not see one by one: report their sum.
    quote_delta = new_quote - cum_quote
    avg, rem = divmod(quote_delta, delta) if quote_delta > 0 else (0, 1)
    return Step(target, new_filled, new_quote, delta, avg if rem == 0 else 0, -1,
                fee if last_qty == delta else 0)
