"""Venue events about one order: reports, refusals, unknown outcomes, "not found"; and the
queries that resolve what is unknown.

A report goes through the lifecycle's one transition table (lifecycle.py) and, when it
changes the order, is queued for the publish path (`Engine.apply`, then `flush`). An
unknown outcome (timeout, dropped connection, 5xx) leaves the order PENDING and is
resolved by querying the venue by client order id, with backoff (`schedule_query`,
`run_due_queries`); "not found" is final only once the venue's recvWindow (plus a grace
for clock skew) has passed since the signed request (the venue can no longer accept it),
and then the order is REJECTED. Nothing is ever re-sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events import Desync, ExecStatus
from venues.trading import (
    Order, VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

from . import lifecycle

if TYPE_CHECKING:
    from .engine import Engine

DUPLICATE_ORDER_TEXT = "duplicate order"  # Binance -2010 "Duplicate order sent."


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
    eng.retry.pop(o.venue_client_order_id, None)
    if o.unknown_since_ns:
        o.unknown_since_ns = 0
        eng.dirty[o.venue_client_order_id] = o
    if r.venue_order_id and o.venue_order_id != r.venue_order_id:
        o.venue_order_id = r.venue_order_id
        eng.dirty[o.venue_client_order_id] = o
    try:
        s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=r.status, cum_qty=r.cum_qty,
                           venue_cum_quote=r.cum_quote, last_qty=r.last_qty, last_px=r.last_px,
                           trade_id=r.trade_id, fee=r.fee)
    except Desync as e:
        eng.inc("exec.venue.desync")
        if eng.dlq is not None:
            eng.dlq.put("exec_report_desync", priority="high", error=str(e),
                        order=o.venue_client_order_id, source=r.source)
        schedule_query(eng, o)
        return
    if s is None:
        eng.inc("exec.venue.report_ignored", source=r.source)
        return
    reason = r.reason if s.status in (ExecStatus.REJECTED, ExecStatus.EXPIRED) else ""
    eng.apply(o, s, r, reason)


def on_refused(eng: Engine, ev: VenueRequestRefused) -> None:
    eng.inc("exec.venue.refused", action=ev.action, code=str(ev.code))
    o = eng.open.get(ev.client_order_id)
    if o is None:
        return
    if ev.action == "place" and o.status is ExecStatus.PENDING:
        if DUPLICATE_ORDER_TEXT in ev.message.lower():  # it is there already: find out its state
            schedule_query(eng, o)
            return
        s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=ExecStatus.REJECTED,
                           cum_qty=0, venue_cum_quote=0)
        eng.apply(o, s, None, f"venue refused: {ev.code} {ev.message}", reject_code=ev.code)
    else:  # a refused cancel or query: the order's state is what the venue says it is
        schedule_query(eng, o)


def on_unknown(eng: Engine, ev: VenueOutcomeUnknown) -> None:
    eng.inc("exec.venue.unknown_outcome", action=ev.action)
    o = eng.open.get(ev.client_order_id)
    if o is None:
        return
    if ev.action == "place" and o.status is ExecStatus.PENDING and not o.unknown_since_ns:
        o.unknown_since_ns = eng.clock()
        o.sent_ms = max(o.sent_ms, ev.sent_ms)
        eng.dirty[o.venue_client_order_id] = o
    schedule_query(eng, o)


def on_not_found(eng: Engine, ev: VenueOrderNotFound) -> None:
    o = eng.open.get(ev.client_order_id)
    if o is None:
        return
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


def schedule_query(eng: Engine, o: Order) -> None:
    """Query order `o` after a backoff (doubling, min..max, per order)."""
    vcoid = o.venue_client_order_id
    _, backoff = eng.retry.get(vcoid, (0, eng.backoff_min // 2))
    backoff = min(max(backoff * 2, eng.backoff_min), eng.backoff_max)
    eng.retry[vcoid] = (eng.clock() + backoff, backoff)


def run_due_queries(eng: Engine, now: int) -> int:
    """Send the queries that are due; return how many."""
    work = 0
    for vcoid, (due, backoff) in list(eng.retry.items()):
        if due <= now:
            o = eng.open.get(vcoid)
            if o is None:
                del eng.retry[vcoid]
                continue
            eng.retry[vcoid] = (now + eng.backoff_max * 4, backoff)  # until an answer reschedules
            adapter = eng.slots[o.venue].adapter
            if adapter is None:
                continue
            eng.inc("exec.venue.queries")
            adapter.query(o)
            work += 1
    return work
