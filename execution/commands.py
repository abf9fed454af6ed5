"""Commands from consumers: hello, set_trading_mode, submit, cancel, amend, query.

Each takes the engine (its shared state: store, open orders, switches, limits, slots)
and a command (model.py), and answers a dict for the control socket; none raises on
bad input. A new order is committed to the store before `venue.place` is called; its
outcome comes back as a venue event (venue_events.py).

A cancel moves the order to PENDING_CANCEL, an amend to PENDING_REPLACE (lifecycle.py);
the amend's target (and the venue client order id a cancel-replace gives its new venue
order, ids.py) is committed before `venue.amend` is called. An amend is checked like a
new order: an order of the consumer that is open, acknowledged and has no cancel or
amend in flight (else code "order_busy"); the trading switch; the venue up; the new
quantity above the filled one, a price change only for a LIMIT order, lot, tick and
minimum notional (validation.check_amend); the pre-trade limits for the amended order
(its notional; it counts against the order rate, not the open orders).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from events import BadInput, OrderType, Provider, to_decimal
from venues.trading import Order

from venues.trading import Pending

from . import lifecycle, validation
from .ids import venue_client_order_id
from .limits import LimitBreached
from .model import AmendOrder, CancelOrder, QueryOrder, SetTradingMode, SubmitOrder
from .slots import VenueSlot

if TYPE_CHECKING:
    from .engine import Engine


def order_state(o: Order, consumer: str) -> dict:
    """The order as answered on the control socket (decimal strings)."""
    inst = o.instrument
    return {"consumer": consumer, "venue": o.venue.slug, "client_order_id": o.client_order_id,
            "venue_client_order_id": o.venue_client_order_id, "venue_order_id": o.venue_order_id,
            "symbol": inst.symbol, "side": o.side.name.lower(), "type": o.order_type.name.lower(),
            "tif": o.tif.name, "price": to_decimal(o.price, inst.px_scale) if o.price else None,
            "qty": to_decimal(o.qty, inst.sz_scale), "filled": to_decimal(o.filled, inst.sz_scale),
            "remaining": to_decimal(o.remaining, inst.sz_scale),
            "cum_quote": to_decimal(o.cum_quote, inst.px_scale + inst.sz_scale),
            "status": o.status.name, "reason": o.reason, "last_exec_seq": o.last_exec_seq,
            "pending": o.pending.name.lower() if o.pending else None, "reduce_only": o.reduce_only}


def hello(eng: Engine, consumer: str) -> dict:
    cid, enabled = eng.consumer(consumer)
    return {"consumer_id": cid, "trading_enabled": enabled, "last_exec_seq": eng.publisher.last_seq}


def set_trading_mode(eng: Engine, cmd: SetTradingMode) -> dict:
    eng.consumer(cmd.consumer)
    eng.store.set_trading(cmd.consumer, bool(cmd.enabled))
    eng.switch[cmd.consumer] = bool(cmd.enabled)
    eng.inc("exec.trading_mode", consumer=cmd.consumer, enabled=str(bool(cmd.enabled)).lower())
    return {"consumer": cmd.consumer, "trading_enabled": bool(cmd.enabled)}


def submit(eng: Engine, cmd: SubmitOrder) -> dict:
    """Accept, find a duplicate, or reject a new order."""
    try:
        coid = validation.check_client_order_id(cmd.client_order_id)
        cid, enabled = eng.consumer(cmd.consumer)
    except BadInput as e:
        return rejected(eng, getattr(e, "code", "validation"), str(e))
    try:
        existing = eng.find(cid, coid)
    except BadInput as e:  # an order of this key on a venue this execution does not trade
        eng.inc("exec.orders.duplicate", consumer=cmd.consumer)
        return rejected(eng, "duplicate_order", str(e))
    if existing is not None:
        eng.inc("exec.orders.duplicate", consumer=cmd.consumer)
        return {"status": "duplicate", "order": eng.state(existing)}
    if not enabled:
        return rejected(eng, "trading_disabled", f"trading is disabled for consumer {cmd.consumer!r}")
    now = eng.clock()
    try:
        slot = pick_venue(eng.slots, cmd.venue)
    except LookupError as e:
        return rejected(eng, "unknown_provider", str(e))
    except BadInput as e:
        return rejected(eng, "validation", str(e))
    down = slot.down(now, eng.venue_down_after_ns)
    if down:
        eng.inc("exec.orders.venue_down", venue=slot.provider.slug)
        return rejected(eng, "venue_down", f"venue {slot.provider.slug} is down: {down}")
    try:
        c = validation.check_new_order(slot.registry, cmd.symbol, cmd.side, cmd.order_type, cmd.tif,
                                       cmd.qty, cmd.price, cmd.ref_price, cmd.reduce_only)
        scale = c.instrument.px_scale + c.instrument.sz_scale
        px = c.price if c.order_type is OrderType.LIMIT else c.ref_price
        n_open = sum(1 for o in eng.open.values() if o.consumer_id == cid)
        eng.limits.check(cmd.consumer, notional=px * c.qty if px else None, notional_scale=scale,
                         open_orders=n_open, now_ns=now)
    except LimitBreached as e:
        return rejected(eng, e.limit, str(e))
    except BadInput as e:
        return rejected(eng, getattr(e, "code", "validation"), str(e))
    vcoid = venue_client_order_id(cid, coid, form=getattr(slot.adapter, "client_id_form", "base64url"))
    o = Order(cid, coid, vcoid, c.instrument, c.side, c.order_type, c.tif,
              c.price, c.qty, created_ns=now, updated_ns=now, sent_ms=now // 1_000_000, venue=slot.provider,
              reduce_only=c.reduce_only)
    try:
        eng.store.insert(o)  # committed before anything leaves
    except sqlite3.IntegrityError:  # raced with ourselves: cannot happen with one thread
        return {"status": "duplicate", "order": eng.state(eng.find(cid, coid))}
    eng.limits.record(cmd.consumer, now)
    eng.track(o)
    eng.inc("exec.orders.accepted", consumer=cmd.consumer, venue=slot.provider.slug)
    slot.adapter.place(o)
    return {"status": "accepted", "order": eng.state(o)}


def _order_of(eng: Engine, cmd: CancelOrder | AmendOrder | QueryOrder):
    """The order a cancel or query names, or the rejection to answer with."""
    try:
        cid, _ = eng.consumer(cmd.consumer)
    except BadInput as e:
        return None, rejected(eng, getattr(e, "code", "validation"), str(e))
    o = eng.find(cid, cmd.client_order_id) if isinstance(cmd.client_order_id, str) else None
    if o is None:
        return None, rejected(eng, "unknown_order",
                              f"no order {cmd.client_order_id!r} of consumer {cmd.consumer!r}")
    return o, None


def cancel(eng: Engine, cmd: CancelOrder) -> dict:
    o, refusal = _order_of(eng, cmd)
    if o is None:
        return refusal
    if not o.open:
        return {"status": "rejected", "code": "order_closed",
                "reason": f"order is {o.status.name}", "order": eng.state(o)}
    o.pending = lifecycle.request(o.status, o.pending, "cancel")  # every open state allows it
    eng.dirty[o.venue_client_order_id] = o
    eng.inc("exec.cancels.sent")
    eng.slots[o.venue].adapter.cancel(o)
    return {"status": "accepted", "order": eng.state(o)}


def amend(eng: Engine, cmd: AmendOrder) -> dict:
    """Accept or reject an amend of an open order (see the module docstring)."""
    o, refusal = _order_of(eng, cmd)
    if o is None:
        return refusal
    if not o.open:
        return {"status": "rejected", "code": "order_closed", "reason": f"order is {o.status.name}",
                "order": eng.state(o)}
    if lifecycle.request(o.status, o.pending, "amend") is None:
        why = (f"a {o.pending.name.lower()} of it is in flight" if o.pending
               else "the venue has not acknowledged it yet")
        eng.inc("exec.amends.rejected", reason="order_busy")
        return {"status": "rejected", "code": "order_busy", "reason": f"order cannot be amended now: {why}",
                "order": eng.state(o)}
    _, enabled = eng.consumer(cmd.consumer)
    if not enabled:
        return rejected(eng, "trading_disabled", f"trading is disabled for consumer {cmd.consumer!r}")
    slot = eng.slots[o.venue]
    now = eng.clock()
    down = slot.down(now, eng.venue_down_after_ns)
    if down:
        return rejected(eng, "venue_down", f"venue {slot.provider.slug} is down: {down}")
    if not callable(getattr(slot.adapter, "amend", None)):
        return rejected(eng, "not_supported", f"amend is not supported on {slot.provider.slug} (yet)")
    try:
        qty, price = validation.check_amend(o, cmd.qty, cmd.price)
        inst = o.instrument
        eng.limits.check(cmd.consumer, notional=price * qty if price else None,
                         notional_scale=inst.px_scale + inst.sz_scale, open_orders=0, now_ns=now)
    except LimitBreached as e:
        return rejected(eng, e.limit, str(e))
    except BadInput as e:
        return rejected(eng, getattr(e, "code", "validation"), str(e))
    o.pending = Pending.REPLACE
    o.amends += 1
    o.amend_qty, o.amend_price = qty, price
    o.amend_coid = venue_client_order_id(o.consumer_id, o.client_order_id, o.amends,
                                         form=getattr(slot.adapter, "client_id_form", "base64url"))
    o.sent_ms, o.updated_ns = now // 1_000_000, now
    eng.flush()          # reports made before it go first: the store never runs ahead of the journal
    eng.store.save([o])  # committed before anything leaves: a restart finds the new venue order
    eng.aliases[o.amend_coid] = o
    eng.limits.record(cmd.consumer, now)
    eng.inc("exec.amends.sent", venue=slot.provider.slug)
    slot.adapter.amend(o, qty, price)
    return {"status": "accepted", "order": eng.state(o)}


def query(eng: Engine, cmd: QueryOrder) -> dict:
    o, refusal = _order_of(eng, cmd)
    if o is None:
        return refusal
    return {"status": "ok", "order": eng.state(o)}


def rejected(eng: Engine, code: str, reason: str) -> dict:
    eng.inc("exec.orders.rejected", reason=code)
    return {"status": "rejected", "code": code, "reason": reason}


def pick_venue(slots: dict[Provider, VenueSlot], venue) -> VenueSlot:
    """The slot of an order's venue (a provider slug; None: the only venue)."""
    if venue is None:
        if len(slots) == 1:
            return next(iter(slots.values()))
        raise BadInput(f"venue is required: this execution trades {', '.join(p.slug for p in slots)}")
    if not isinstance(venue, str):
        raise BadInput(f"venue must be a provider name: venue={venue!r}")
    try:
        p = Provider.from_slug(venue)
    except (KeyError, ValueError):
        p = None
    if p not in slots:
        raise LookupError(f"this execution does not trade on {venue!r}; it trades "
                          f"{', '.join(x.slug for x in slots)}")
    return slots[p]
