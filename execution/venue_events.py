"""Venue events about one order: reports, refusals, unknown outcomes, "not found"; and the
queries that resolve what is unknown.

A report goes through the lifecycle's one transition table (lifecycle.py) and, when it
changes the order, is queued for the publish path (`Engine.apply`, then `flush`). An
unknown outcome (timeout, dropped connection, 5xx) leaves the order PENDING and is
resolved by querying the venue by client order id, with backoff (`schedule_query`,
`run_due_queries`); "not found" is final only once the venue's recvWindow (plus a grace
for clock skew) has passed since the signed request (the venue can no longer accept it),
and then the order is REJECTED. Nothing is ever re-sent. A placement refused as a
duplicate client order id (`VenueRequestRefused.duplicate`, set by each venue's adapter)
is not a rejection: an earlier placement landed, so the order is queried.

Amends (an order in PENDING_REPLACE, `amend_qty` set). The amend is done when a report
says so: one flagged `amended` (Binance executionReport x=REPLACED, the keepPriority
reply), one of the current venue order showing the amend's price and quantity (a query),
or any report of the new venue order a cancel-replace placed (`amend_coid`: the order
moves to it; the fills so far become `base_filled` / `base_quote`, to which the new
venue order's cumulative figures add; a cancel sent meanwhile is sent again to it).
Its exec report carries the new price and quantity with reason "amended", and the
reported status (ACK or PARTIAL, as before). A refused amend puts the order back in its
previous state with one exec report carrying the venue's code (`reject_code`) and
"amend refused: <code> <message>" as reason, then queries the order (a cancel-replace
that cancelled but could not place leaves it CANCELLED; the query says so). An unknown
outcome is queried: the current venue order unchanged and open once the recvWindow has
passed means the amend never happened ("amend not applied"); cancelled, it means a
cancel-replace, and the new venue order is queried: not found after the recvWindow, the
amend did not happen either, and the cancelled venue order is the order's end. A cancel
sent while an amend is in flight stays pending through a refusal (it may have missed the
venue order a cancel-replace replaced) and is sent again wherever the amend leaves the
order (its new venue order, or the old one when the amend did not happen).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from events import Desync, ExecStatus
from venues.trading import (
    Order, Pending, VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

from . import lifecycle

if TYPE_CHECKING:
    from .engine import Engine

def on_report(eng: Engine, r: VenueOrderReported, o: Order | None = None) -> None:
    """Apply one venue report of order `o` (None: the order its client order ids name)."""
    if o is None:
        o = eng.lookup(r.client_order_ids)
    if o is None:
        eng.inc("exec.venue.unknown_order")
        if eng.dlq is not None:
            eng.dlq.put("exec_report_for_unknown_order", ids=list(r.client_order_ids),
                        venue_order_id=r.venue_order_id, source=r.source)
        return
    note = ""
    if o.venue_client_order_id not in r.client_order_ids:
        if not (o.amend_qty and o.amend_coid in r.client_order_ids):
            eng.inc("exec.venue.superseded_report")  # of a venue order a cancel-replace replaced
            return
        _switch(eng, o)  # the cancel-replace's new venue order: the amend is done
        note = _amended(eng, o, r, switched=True)
    elif o.amend_qty and _shows_amend(o, r):
        note = _amended(eng, o, r, switched=False)
    eng.retry.pop(o.venue_client_order_id, None)
    if o.unknown_since_ns and not o.amend_qty:
        o.unknown_since_ns = 0
        eng.dirty[o.venue_client_order_id] = o
    if r.venue_order_id and o.venue_order_id != r.venue_order_id:
        o.venue_order_id = r.venue_order_id
        eng.dirty[o.venue_client_order_id] = o
    try:
        s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=r.status,
                           cum_qty=o.base_filled + r.cum_qty, venue_cum_quote=o.base_quote + r.cum_quote,
                           last_qty=r.last_qty, last_px=r.last_px, trade_id=r.trade_id, fee=r.fee,
                           pending=o.pending, replacing=bool(o.amend_qty))
    except Desync as e:
        eng.inc("exec.venue.desync")
        if eng.dlq is not None:
            eng.dlq.put("exec_report_desync", priority="high", error=str(e),
                        order=o.venue_client_order_id, source=r.source)
        schedule_query(eng, o)
        return
    if s is None and note:
        s = lifecycle.Step(o.status, o.filled, o.cum_quote, 0, 0, -1, 0, o.pending)  # the amend alone
    if s is None:
        eng.inc("exec.venue.report_ignored", source=r.source)
    else:
        reason = r.reason if s.status in (ExecStatus.REJECTED, ExecStatus.EXPIRED) else ""
        eng.apply(o, s, r, reason, note=note)
    if o.amend_qty and o.unknown_since_ns and r.source == "query" and o.open:
        _amend_unknown_answered(eng, o, r)


def _shows_amend(o: Order, r: VenueOrderReported) -> bool:
    """A report of the current venue order is the amend's outcome: flagged, or its figures
    are the amend's target (a query answered after an in-place amend)."""
    if r.amended:
        return True
    return bool(r.qty) and o.base_filled + r.qty == o.amend_qty and (r.price or o.price) == o.amend_price


def _switch(eng: Engine, o: Order) -> None:
    """Move order `o` to the new venue order of its cancel-replace (ids.py)."""
    old = o.venue_client_order_id
    eng.open.pop(old, None)
    eng.retry.pop(old, None)
    eng.aliases[old] = o          # its late reports are recognised and dropped
    eng.aliases.pop(o.amend_coid, None)
    o.venue_client_order_id = o.amend_coid
    eng.open[o.venue_client_order_id] = o
    o.base_filled, o.base_quote = o.filled, o.cum_quote
    o.venue_order_id = 0
    eng.inc("exec.amends.replaced")


def _amended(eng: Engine, o: Order, r: VenueOrderReported, *, switched: bool) -> str:
    """Take the amended price and quantity of report `r`; end PENDING_REPLACE. Returns the note."""
    o.qty = o.base_filled + r.qty if r.qty else o.amend_qty
    o.price = r.price or o.amend_price
    o.pending = lifecycle.back(o.status, o.pending, Pending.REPLACE)
    _end_amend(o)
    eng.dirty[o.venue_client_order_id] = o
    eng.inc("exec.amends.done")
    if switched and o.pending is Pending.CANCEL:
        eng.slots[o.venue].adapter.cancel(o)  # the cancel went to the venue order replaced
    return "amended"


def _end_amend(o: Order) -> None:
    o.amend_qty = o.amend_price = 0
    o.unknown_since_ns = 0


def _past_window(eng: Engine, o: Order) -> bool:
    """The venue can no longer accept the request signed at `o.sent_ms`."""
    now_ms = eng.clock() // 1_000_000
    return now_ms - o.sent_ms > eng.slots[o.venue].adapter.recv_window_ms + eng.not_found_grace_ms


def _amend_unknown_answered(eng: Engine, o: Order, r: VenueOrderReported) -> None:
    """A query answered while an amend's outcome is unknown, and did not show it done."""
    if r.status in (ExecStatus.CANCELLED, ExecStatus.EXPIRED):
        schedule_query(eng, o, o.amend_coid)  # a cancel-replace's cancel: is its new order there?
    elif _past_window(eng, o):
        _amend_not_applied(eng, o, "amend not applied (not received by the venue)")
    else:
        schedule_query(eng, o)


def _amend_not_applied(eng: Engine, o: Order, note: str, code: int = 0) -> None:
    pending = lifecycle.back(o.status, o.pending, Pending.REPLACE)
    _end_amend(o)
    eng.apply(o, lifecycle.Step(o.status, o.filled, o.cum_quote, 0, 0, -1, 0, pending), None,
              reject_code=code, note=note)
    if pending is Pending.CANCEL:  # a cancel sent meanwhile may have been refused for the amend's sake
        eng.slots[o.venue].adapter.cancel(o)


def on_refused(eng: Engine, ev: VenueRequestRefused) -> None:
    eng.inc("exec.venue.refused", action=ev.action, code=str(ev.code))
    o = eng.order_of(ev.client_order_id)
    if o is None:
        return
    if ev.action == "place" and o.status is ExecStatus.PENDING:
        if ev.duplicate:  # the adapter read it as "client order id taken": it is there, find out its state
            schedule_query(eng, o)
            return
        s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=ExecStatus.REJECTED,
                           cum_qty=0, venue_cum_quote=0)
        eng.apply(o, s, None, f"venue refused: {ev.code} {ev.message}", reject_code=ev.code)
    elif ev.action == "amend" and o.amend_qty:
        eng.inc("exec.amends.refused", code=str(ev.code))
        _amend_not_applied(eng, o, f"amend refused: {ev.code} {ev.message}", ev.code)
        schedule_query(eng, o)  # e.g. a cancel-replace that cancelled but could not place
    else:  # a refused cancel or query: the order's state is what the venue says it is
        # while an amend is in flight the cancel may have missed a venue order a cancel-replace
        # replaced: it stays pending, and goes again to where the amend leaves the order
        if ev.action == "cancel" and o.pending is Pending.CANCEL and not o.amend_qty:
            o.pending = lifecycle.back(o.status, o.pending, Pending.CANCEL)
            eng.dirty[o.venue_client_order_id] = o
        schedule_query(eng, o)


def on_unknown(eng: Engine, ev: VenueOutcomeUnknown) -> None:
    eng.inc("exec.venue.unknown_outcome", action=ev.action)
    o = eng.order_of(ev.client_order_id)
    if o is None:
        return
    if (ev.action == "place" and o.status is ExecStatus.PENDING or ev.action == "amend" and o.amend_qty) \
            and not o.unknown_since_ns:
        o.unknown_since_ns = eng.clock()
        o.sent_ms = max(o.sent_ms, ev.sent_ms)
        eng.dirty[o.venue_client_order_id] = o
    schedule_query(eng, o)


def on_not_found(eng: Engine, ev: VenueOrderNotFound) -> None:
    o = eng.order_of(ev.client_order_id)
    if o is None:
        return
    if o.amend_qty and ev.client_order_id == o.amend_coid:  # a cancel-replace's new venue order
        if _past_window(eng, o):
            _amend_not_applied(eng, o, "amend not applied (its new venue order was not placed)")
            schedule_query(eng, o)  # the venue order it cancelled is the order's end
        else:
            schedule_query(eng, o, o.amend_coid)
        return
    if ev.client_order_id != o.venue_client_order_id:
        return  # a venue order a cancel-replace replaced
    if o.status is not ExecStatus.PENDING:
        eng.retry.pop(o.venue_client_order_id, None)  # asking again would not help
        eng.inc("exec.venue.desync")
        if eng.dlq is not None:
            eng.dlq.put("open_order_not_found_at_venue", priority="high", order=o.venue_client_order_id)
        return
    now = eng.clock()
    if now // 1_000_000 - o.sent_ms > eng.slots[o.venue].adapter.recv_window_ms + eng.not_found_grace_ms:
        s = lifecycle.step(o.status, 0, 0, o.qty, venue_status=ExecStatus.REJECTED, cum_qty=0,
                           venue_cum_quote=0)
        eng.apply(o, s, None, "not received by the venue (not found after recvWindow)", reject_code=-2013)
    else:
        schedule_query(eng, o)


def schedule_query(eng: Engine, o: Order, vcoid: str | None = None) -> None:
    """Query order `o` (by venue client order id `vcoid`; None: its own) after a backoff
    (doubling, min..max, per id)."""
    vcoid = vcoid or o.venue_client_order_id
    _, backoff = eng.retry.get(vcoid, (0, eng.backoff_min // 2))
    backoff = min(max(backoff * 2, eng.backoff_min), eng.backoff_max)
    eng.retry[vcoid] = (eng.clock() + backoff, backoff)


def run_due_queries(eng: Engine, now: int) -> int:
    """Send the queries that are due; return how many."""
    work = 0
    for vcoid, (due, backoff) in list(eng.retry.items()):
        if due <= now:
            o = eng.order_of(vcoid)
            if o is None:
                del eng.retry[vcoid]
                continue
            eng.retry[vcoid] = (now + eng.backoff_max * 4, backoff)  # until an answer reschedules
            adapter = eng.slots[o.venue].adapter
            if adapter is None:
                continue
            eng.inc("exec.venue.queries")
            # another id of the order's: a cancel-replace's new venue order
            adapter.query(o if vcoid == o.venue_client_order_id else
                          dataclasses.replace(o, venue_client_order_id=vcoid))
            work += 1
    return work
