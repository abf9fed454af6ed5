"""The deterministic core of execution: commands and venue events in, reports out.

No I/O of its own: the clock, the store, the publisher (journal + ring) and the venue
adapter are injected, so a test drives it with a fake clock and a fake venue. One
thread calls it (the main loop). Venue calls (`place`, `cancel`, `query`) only start
a request; their outcome comes back as a venue event (model.py).

Order of effects for a report: lifecycle step -> `flush()`: journal append (durable)
-> store commit (with the journal watermark) -> ring publish. A new order is committed
to the store before `venue.place` is called. An unknown outcome (timeout, dropped
connection, 5xx) leaves the order PENDING and is resolved by querying the venue by
client order id, with backoff; "not found" is final only once the venue's recvWindow
(plus a grace for clock skew) has passed since the signed request (the venue can no
longer accept it), and then the order is REJECTED. Nothing is ever re-sent.

Reconciliation (after a restart, on every user-stream reconnect, and every poll interval
while the stream is down) lists the venue's open orders (`list_open`: one request per
symbol with open orders, or one for all symbols; reconcile.py) and applies each listed
order's report like a query's answer; only the orders open here but absent from the
list (terminal at the venue, or never received) are queried one by one. A list request
that fails is retried with backoff.

Many venues: the engine drives one adapter per venue (`venues`: {Provider: adapter}),
each with its own instruments, list requests, user-stream state and recvWindow (a
`VenueSlot`). An order names its venue (one venue configured: that one by default); it
goes to that venue's adapter, and that venue's events (`on_venue(ev, provider)`) apply
to it. Idempotency, the exec_seq journal, the ring, the pre-trade limits and the trading
switch are one for all venues. Reconciliation runs per venue: on start, and whenever
that venue's user stream (re)connects. A venue whose user stream has been down longer
than `venue_down_after_ns`, or that could not be started (`set_down`), is down: its new
orders are rejected with the reason (code `venue_down`); the other venues trade on.
"""

from __future__ import annotations

import sqlite3
import zlib
from typing import Callable, Protocol

import numpy as np

from events import EVENT, BadInput, Desync, ExecStatus, Instrument, Kind, OrderType, Provider, to_decimal
from events.ids import event_id, mix64
from events.records import stamp_header
from venues.trading import (
    Order, UserStreamConnected, UserStreamDisconnected, VenueOpenOrdersFailed, VenueOpenOrdersListed,
    VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)

from . import lifecycle, validation
from .ids import is_ours, venue_client_order_id
from .limits import LimitBook, LimitBreached
from .model import CancelOrder, QueryOrder, SetTradingMode, SubmitOrder
from .publisher import ExecPublisher
from .reconcile import ALL, Listings
from .store import Store

DUPLICATE_ORDER_TEXT = "duplicate order"  # Binance -2010 "Duplicate order sent."


class Venue(Protocol):
    """What the engine asks of a venue adapter; outcomes come back as venue events."""

    provider: Provider
    recv_window_ms: int
    fee_scale: int  # scale of the fee mantissas in the venue's reports
    list_all_from: int  # list every symbol in one request from this many symbols with open orders

    def place(self, order: Order) -> None: ...
    def cancel(self, order: Order) -> None: ...
    def query(self, order: Order) -> None: ...
    def list_open(self, instrument: Instrument | None, request_id: int) -> None: ...  # None: all symbols


class VenueSlot:
    """One venue's adapter and the engine's state of it."""

    def __init__(self, provider: Provider, adapter: Venue | None, registry, listings: Listings, now_ns: int):
        self.provider = provider
        self.adapter = adapter            # None: not started (down)
        self.registry = registry
        self.listings = listings
        self.stream_up = False
        self.stream_lost_ns = now_ns      # the user stream is not up since then (0: it is up)
        self.down_reason = ""             # set: the venue could not be started
        self.next_poll_ns = 0

    def down(self, now_ns: int, after_ns: int) -> str:
        """Why this venue takes no new orders now ("" : it does)."""
        if self.down_reason or self.adapter is None:
            return self.down_reason or "not started"
        if not self.stream_up and self.stream_lost_ns and now_ns - self.stream_lost_ns > after_ns:
            return f"its user stream has been down for {(now_ns - self.stream_lost_ns) / 1e9:.1f} s"
        return ""


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
            "status": o.status.name, "reason": o.reason, "last_exec_seq": o.last_exec_seq}


class Engine:
    """Order entry, idempotency, lifecycle and reconciliation over one or more venues."""

    def __init__(self, store: Store, publisher: ExecPublisher, venues: Venue | dict[Provider, Venue | None], *,
                 clock: Callable[[], int], limits: LimitBook | None = None, telemetry=None, dlq=None,
                 trading_default: bool = True, query_backoff_ns: tuple[int, int] = (100_000_000, 2_000_000_000),
                 poll_interval_ns: int = 1_000_000_000, not_found_grace_ms: int = 2000,
                 venue_down_after_ns: int = 10_000_000_000):
        self.store = store
        self.publisher = publisher
        self.clock = clock
        if not isinstance(venues, dict):
            venues = {venues.provider: venues}
        self.slots: dict[Provider, VenueSlot] = {}
        for p, adapter in venues.items():
            p = Provider(p)
            self.slots[p] = VenueSlot(p, adapter, store.registries.get(p),
                                      Listings(query_backoff_ns, adapter.list_all_from if adapter else 1), clock())
        self.venue_down_after_ns = venue_down_after_ns
        self.limits = limits or LimitBook()
        self.tel = telemetry
        self.dlq = dlq
        self.trading_default = trading_default
        self.backoff_min, self.backoff_max = query_backoff_ns
        self.poll_interval_ns = poll_interval_ns
        self.not_found_grace_ms = not_found_grace_ms  # clock skew and queueing before signing
        self.open: dict[str, Order] = {}          # venue client order id -> open order
        self.by_key: dict[tuple[int, str], Order] = {}
        self.names: dict[int, str] = store.consumer_names()
        self.switch: dict[str, bool] = {}
        self._retry: dict[str, tuple[int, int]] = {}  # vcoid -> (next query ns, backoff ns)
        self._pending: list[tuple[Order, lifecycle.Step, VenueOrderReported | None, int]] = []
        self._dirty: dict[str, Order] = {}
        self._buf = np.zeros(256, EVENT)

    @property
    def venue(self) -> Venue:
        """The adapter of the only venue (single-venue callers and tests)."""
        if len(self.slots) != 1:
            raise AttributeError("engine.venue: this engine has several venues; use engine.slots")
        return next(iter(self.slots.values())).adapter

    @property
    def stream_up(self) -> bool:
        """Every venue's user stream is up."""
        return all(s.stream_up for s in self.slots.values())

    def venue_status(self) -> dict:
        now = self.clock()
        return {p.slug: {"stream_up": s.stream_up, "down": s.down(now, self.venue_down_after_ns) or None,
                         "open_orders": sum(1 for o in self.open.values() if o.venue is p)}
                for p, s in self.slots.items()}

    def set_down(self, provider: Provider, reason: str) -> None:
        """Venue `provider` could not be started: its orders are rejected with `reason`."""
        self.slots[Provider(provider)].down_reason = reason
        self._inc("exec.venue.down", venue=Provider(provider).slug)

    def attach(self, provider: Provider, adapter: Venue, registry) -> None:
        """Venue `provider` is started late (it was down at start-up): take its orders from now on."""
        slot = self.slots[Provider(provider)]
        self.store.add_registry(provider, registry)
        slot.adapter, slot.registry, slot.down_reason = adapter, registry, ""
        slot.listings.list_all_from = adapter.list_all_from
        for o in self.store.open_orders():
            if o.venue is slot.provider and o.venue_client_order_id not in self.open:
                self._track(o)
        self.reconcile(provider)

    def _slot(self, provider) -> VenueSlot:
        if provider is None:
            if len(self.slots) == 1:
                return next(iter(self.slots.values()))
            raise TypeError("a venue event needs its provider when the engine has several venues")
        return self.slots[Provider(provider)]

    def _pick_venue(self, venue) -> VenueSlot:
        """The slot of an order's venue (a provider slug; None: the only venue)."""
        if venue is None:
            if len(self.slots) == 1:
                return next(iter(self.slots.values()))
            raise BadInput(f"venue is required: this execution trades {', '.join(p.slug for p in self.slots)}")
        if not isinstance(venue, str):
            raise BadInput(f"venue must be a provider name: venue={venue!r}")
        try:
            p = Provider.from_slug(venue)
        except (KeyError, ValueError):
            p = None
        if p not in self.slots:
            raise LookupError(f"this execution does not trade on {venue!r}; it trades "
                              f"{', '.join(x.slug for x in self.slots)}")
        return self.slots[p]

    # -- helpers ---------------------------------------------------------------------

    def _inc(self, name: str, **labels) -> None:
        if self.tel is not None:
            self.tel.inc(name, **labels)

    def consumer(self, name) -> tuple[int, bool]:
        if not isinstance(name, str) or not name:
            raise BadInput(f"consumer must be a non-empty string: consumer={name!r}")
        cid, enabled = self.store.consumer(name, default_enabled=self.trading_default)
        self.names[cid] = name
        self.switch.setdefault(name, enabled)
        return cid, self.switch[name]

    def _find(self, cid: int, coid: str) -> Order | None:
        return self.by_key.get((cid, coid)) or self.store.get(cid, coid)

    def _track(self, o: Order) -> None:
        if o.open:
            self.open[o.venue_client_order_id] = o
            self.by_key[(o.consumer_id, o.client_order_id)] = o

    def _state(self, o: Order) -> dict:
        return order_state(o, self.names.get(o.consumer_id, str(o.consumer_id)))

    # -- commands --------------------------------------------------------------------

    def hello(self, consumer: str) -> dict:
        cid, enabled = self.consumer(consumer)
        return {"consumer_id": cid, "trading_enabled": enabled, "last_exec_seq": self.publisher.last_seq}

    def set_trading_mode(self, cmd: SetTradingMode) -> dict:
        self.consumer(cmd.consumer)
        self.store.set_trading(cmd.consumer, bool(cmd.enabled))
        self.switch[cmd.consumer] = bool(cmd.enabled)
        self._inc("exec.trading_mode", consumer=cmd.consumer, enabled=str(bool(cmd.enabled)).lower())
        return {"consumer": cmd.consumer, "trading_enabled": bool(cmd.enabled)}

    def submit(self, cmd: SubmitOrder) -> dict:
        """Accept, find a duplicate, or reject a new order; never raises on bad input."""
        try:
            coid = validation.check_client_order_id(cmd.client_order_id)
            cid, enabled = self.consumer(cmd.consumer)
        except BadInput as e:
            return self._rejected(getattr(e, "code", "validation"), str(e))
        try:
            existing = self._find(cid, coid)
        except BadInput as e:  # an order of this key on a venue this execution does not trade
            self._inc("exec.orders.duplicate", consumer=cmd.consumer)
            return self._rejected("duplicate_order", str(e))
        if existing is not None:
            self._inc("exec.orders.duplicate", consumer=cmd.consumer)
            return {"status": "duplicate", "order": self._state(existing)}
        if not enabled:
            return self._rejected("trading_disabled", f"trading is disabled for consumer {cmd.consumer!r}")
        now = self.clock()
        try:
            slot = self._pick_venue(cmd.venue)
        except LookupError as e:
            return self._rejected("unknown_provider", str(e))
        except BadInput as e:
            return self._rejected("validation", str(e))
        down = slot.down(now, self.venue_down_after_ns)
        if down:
            self._inc("exec.orders.venue_down", venue=slot.provider.slug)
            return self._rejected("venue_down", f"venue {slot.provider.slug} is down: {down}")
        try:
            c = validation.check_new_order(slot.registry, cmd.symbol, cmd.side, cmd.order_type, cmd.tif,
                                           cmd.qty, cmd.price, cmd.ref_price)
            scale = c.instrument.px_scale + c.instrument.sz_scale
            px = c.price if c.order_type is OrderType.LIMIT else c.ref_price
            n_open = sum(1 for o in self.open.values() if o.consumer_id == cid)
            self.limits.check(cmd.consumer, notional=px * c.qty if px else None, notional_scale=scale,
                              open_orders=n_open, now_ns=now)
        except LimitBreached as e:
            return self._rejected(e.limit, str(e))
        except BadInput as e:
            return self._rejected(getattr(e, "code", "validation"), str(e))
        o = Order(cid, coid, venue_client_order_id(cid, coid), c.instrument, c.side, c.order_type, c.tif,
                  c.price, c.qty, created_ns=now, updated_ns=now, sent_ms=now // 1_000_000, venue=slot.provider)
        try:
            self.store.insert(o)  # committed before anything leaves
        except sqlite3.IntegrityError:  # raced with ourselves: cannot happen with one thread
            return {"status": "duplicate", "order": self._state(self._find(cid, coid))}
        self.limits.record(cmd.consumer, now)
        self._track(o)
        self._inc("exec.orders.accepted", consumer=cmd.consumer, venue=slot.provider.slug)
        slot.adapter.place(o)
        return {"status": "accepted", "order": self._state(o)}

    def _rejected(self, code: str, reason: str) -> dict:
        self._inc("exec.orders.rejected", reason=code)
        return {"status": "rejected", "code": code, "reason": reason}

    def cancel(self, cmd: CancelOrder) -> dict:
        try:
            cid, _ = self.consumer(cmd.consumer)
        except BadInput as e:
            return self._rejected(getattr(e, "code", "validation"), str(e))
        o = self._find(cid, cmd.client_order_id) if isinstance(cmd.client_order_id, str) else None
        if o is None:
            return self._rejected("unknown_order", f"no order {cmd.client_order_id!r} of consumer {cmd.consumer!r}")
        if not o.open:
            return {"status": "rejected", "code": "order_closed",
                    "reason": f"order is {o.status.name}", "order": self._state(o)}
        o.cancel_requested = True
        self._dirty[o.venue_client_order_id] = o
        self._inc("exec.cancels.sent")
        self.slots[o.venue].adapter.cancel(o)
        return {"status": "accepted", "order": self._state(o)}

    def query(self, cmd: QueryOrder) -> dict:
        try:
            cid, _ = self.consumer(cmd.consumer)
        except BadInput as e:
            return self._rejected(getattr(e, "code", "validation"), str(e))
        o = self._find(cid, cmd.client_order_id) if isinstance(cmd.client_order_id, str) else None
        if o is None:
            return self._rejected("unknown_order", f"no order {cmd.client_order_id!r} of consumer {cmd.consumer!r}")
        return {"status": "ok", "order": self._state(o)}

    # -- venue events ----------------------------------------------------------------

    def on_venue(self, ev, provider: Provider | None = None) -> None:
        """Apply one event of venue `provider` (venues.trading; None: the only venue)."""
        slot = self._slot(provider)
        if isinstance(ev, VenueOrderReported):
            self._on_report(ev)
        elif isinstance(ev, VenueOpenOrdersListed):
            self._on_listed(ev, slot)
        elif isinstance(ev, VenueOpenOrdersFailed):
            self._inc("exec.reconcile.list_failed", venue=slot.provider.slug)
            slot.listings.failed(ev.request_id, self.clock())
        elif isinstance(ev, VenueRequestRefused):
            self._on_refused(ev)
        elif isinstance(ev, VenueOutcomeUnknown):
            self._inc("exec.venue.unknown_outcome", action=ev.action)
            o = self.open.get(ev.client_order_id)
            if o is not None:
                if ev.action == "place" and o.status is ExecStatus.PENDING and not o.unknown_since_ns:
                    o.unknown_since_ns = self.clock()
                    o.sent_ms = max(o.sent_ms, ev.sent_ms)
                    self._dirty[o.venue_client_order_id] = o
                self._schedule_query(o)
        elif isinstance(ev, VenueOrderNotFound):
            self._on_not_found(ev)
        elif isinstance(ev, UserStreamConnected):
            slot.stream_up, slot.stream_lost_ns = True, 0
            self._inc("exec.stream.connected", venue=slot.provider.slug)
            self.reconcile(slot.provider)
        elif isinstance(ev, UserStreamDisconnected):
            if slot.stream_up:
                slot.stream_lost_ns = self.clock()
            slot.stream_up = False
            self._inc("exec.stream.disconnected", venue=slot.provider.slug)
        else:
            raise TypeError(f"not a venue event: {ev!r}")

    def _lookup(self, ids) -> Order | None:
        for vcoid in ids:
            o = self.open.get(vcoid)
            if o is not None:
                return o
        for vcoid in ids:
            if vcoid:
                o = self.store.by_venue_coid(vcoid)
                if o is not None:
                    return o
        return None

    def _on_report(self, r: VenueOrderReported, o: Order | None = None) -> None:
        if o is None:
            o = self._lookup(r.client_order_ids)
        if o is None:
            self._inc("exec.venue.unknown_order")
            if self.dlq is not None:
                self.dlq.put("exec_report_for_unknown_order", ids=list(r.client_order_ids),
                             venue_order_id=r.venue_order_id, source=r.source)
            return
        self._retry.pop(o.venue_client_order_id, None)
        if o.unknown_since_ns:
            o.unknown_since_ns = 0
            self._dirty[o.venue_client_order_id] = o
        if r.venue_order_id and o.venue_order_id != r.venue_order_id:
            o.venue_order_id = r.venue_order_id
            self._dirty[o.venue_client_order_id] = o
        try:
            s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=r.status, cum_qty=r.cum_qty,
                               venue_cum_quote=r.cum_quote, last_qty=r.last_qty, last_px=r.last_px,
                               trade_id=r.trade_id, fee=r.fee)
        except Desync as e:
            self._inc("exec.venue.desync")
            if self.dlq is not None:
                self.dlq.put("exec_report_desync", priority="high", error=str(e),
                             order=o.venue_client_order_id, source=r.source)
            self._schedule_query(o)
            return
        if s is None:
            self._inc("exec.venue.report_ignored", source=r.source)
            return
        reason = r.reason if s.status in (ExecStatus.REJECTED, ExecStatus.EXPIRED) else ""
        self._apply(o, s, r, reason)

    def _apply(self, o: Order, s: lifecycle.Step, r: VenueOrderReported | None, reason: str = "",
               reject_code: int = 0) -> None:
        o.status, o.filled, o.cum_quote = s.status, s.filled, s.cum_quote
        o.fee += s.fee
        o.updated_ns = self.clock()
        if reason:
            o.reason = reason
        self._pending.append((o, s, r, reject_code))
        self._dirty[o.venue_client_order_id] = o

    def _on_refused(self, ev: VenueRequestRefused) -> None:
        self._inc("exec.venue.refused", action=ev.action, code=str(ev.code))
        o = self.open.get(ev.client_order_id)
        if o is None:
            return
        if ev.action == "place" and o.status is ExecStatus.PENDING:
            if DUPLICATE_ORDER_TEXT in ev.message.lower():  # it is there already: find out its state
                self._schedule_query(o)
                return
            s = lifecycle.step(o.status, o.filled, o.cum_quote, o.qty, venue_status=ExecStatus.REJECTED,
                               cum_qty=0, venue_cum_quote=0)
            self._apply(o, s, None, f"venue refused: {ev.code} {ev.message}", reject_code=ev.code)
        else:  # a refused cancel or query: the order's state is what the venue says it is
            self._schedule_query(o)

    def _on_not_found(self, ev: VenueOrderNotFound) -> None:
        o = self.open.get(ev.client_order_id)
        if o is None:
            return
        if o.status is not ExecStatus.PENDING:
            self._retry.pop(o.venue_client_order_id, None)  # asking again would not help
            self._inc("exec.venue.desync")
            if self.dlq is not None:
                self.dlq.put("open_order_not_found_at_venue", priority="high", order=o.venue_client_order_id)
            return
        now = self.clock()
        if now // 1_000_000 - o.sent_ms > self.slots[o.venue].adapter.recv_window_ms + self.not_found_grace_ms:
            s = lifecycle.step(o.status, 0, 0, o.qty, venue_status=ExecStatus.REJECTED, cum_qty=0,
                               venue_cum_quote=0)
            self._apply(o, s, None, "not received by the venue (not found after recvWindow)", reject_code=-2013)
        else:
            self._schedule_query(o)

    # -- queries, reconciliation, timers -----------------------------------------------

    def _schedule_query(self, o: Order) -> None:
        vcoid = o.venue_client_order_id
        _, backoff = self._retry.get(vcoid, (0, self.backoff_min // 2))
        backoff = min(max(backoff * 2, self.backoff_min), self.backoff_max)
        self._retry[vcoid] = (self.clock() + backoff, backoff)

    def reconcile(self, provider: Provider | None = None, *, poll: bool = False) -> None:
        """List a venue's open orders to reconcile its every open order (after a restart or a
        user-stream reconnect: every scope again, since an older list may predate what the
        stream missed); `provider` None: every venue started. `poll` (the stream is down):
        skip scopes whose list is still out or waiting for its retry."""
        if provider is None:
            for p, slot in self.slots.items():
                if slot.adapter is not None:
                    self.reconcile(p, poll=poll)
            return
        slot = self.slots[Provider(provider)]
        if slot.adapter is None:
            return
        now = self.clock()
        # (closed: not flushed yet)
        scopes = slot.listings.scopes(o for o in self.open.values() if o.open and o.venue is slot.provider)
        for scope, orders in scopes.items():
            if not (poll and slot.listings.busy(scope)):
                self._list(slot, scope, orders, now)
        if scopes:
            slot.next_poll_ns = now + self.poll_interval_ns  # a poll right after this one adds nothing

    def _list(self, slot: VenueSlot, scope, orders: list[Order], now: int) -> None:
        rid = slot.listings.start(scope, (o.venue_client_order_id for o in orders), now)
        self._inc("exec.reconcile.lists", venue=slot.provider.slug)
        slot.adapter.list_open(None if scope is ALL else orders[0].instrument, rid)

    def _on_listed(self, ev: VenueOpenOrdersListed, slot: VenueSlot) -> None:
        """Apply each listed order's report (as a query answer), then query the expected
        orders the list lacks: they have left the venue's book, or never reached it."""
        listed = set()
        for r in ev.reports:
            if not any(is_ours(c) for c in r.client_order_ids):
                self._inc("exec.reconcile.foreign")  # another client's order on the same account
                continue
            o = self._lookup(r.client_order_ids)
            if o is not None:
                listed.add(o.venue_client_order_id)
            # a list older than what we know (an order closed since) is out of order: ignored
            self._on_report(r, o)
        lst = slot.listings.answered(ev.request_id)
        if lst is None:
            return  # a replaced request: its reports count, a newer list judges what is missing
        now = self.clock()
        for vcoid in lst.expect - listed:
            o = self.open.get(vcoid)
            if o is None or not o.open or vcoid in self._retry:
                continue  # closed meanwhile (maybe not flushed yet), or a query of it is out or due
            self._retry[vcoid] = (now + self.backoff_max * 4, self.backoff_min // 2)  # until an answer reschedules
            self._inc("exec.reconcile.queries")
            slot.adapter.query(o)

    def tick(self) -> int:
        """Run due queries and list retries; poll (list) open orders while the user stream is
        down. Returns work done."""
        now = self.clock()
        work = 0
        for vcoid, (due, backoff) in list(self._retry.items()):
            if due <= now:
                o = self.open.get(vcoid)
                if o is None:
                    del self._retry[vcoid]
                    continue
                self._retry[vcoid] = (now + self.backoff_max * 4, backoff)  # until an answer reschedules
                adapter = self.slots[o.venue].adapter
                if adapter is None:
                    continue
                self._inc("exec.venue.queries")
                adapter.query(o)
                work += 1
        for p, slot in self.slots.items():
            if slot.adapter is None:
                continue
            for scope in slot.listings.due(now):  # a failed list's retry, or an answer that never came
                orders = slot.listings.members(scope, (o for o in self.open.values() if o.open and o.venue is p))
                if orders:
                    self._inc("exec.reconcile.list_retries", venue=p.slug)
                    self._list(slot, scope, orders, now)
                    work += 1
                else:
                    slot.listings.drop(scope)
            if not slot.stream_up and now >= slot.next_poll_ns and any(o.venue is p for o in self.open.values()):
                self.reconcile(p, poll=True)
                work += 1
        return work

    # -- recovery and flush ------------------------------------------------------------

    def recover(self) -> int:
        """Apply journaled reports the store missed, load open orders; return how many reports."""
        applied = self.store.applied_seq()
        replayed = []
        seq = applied + 1
        while seq <= self.publisher.last_seq:
            recs = self.publisher.journal.read(seq, 1024)
            for rec in recs:
                p = rec["exec"]
                try:
                    o = self.store.get(int(rec["consumer_id"]), p["client_order_id"].decode())
                except BadInput:  # an order of a venue not traded now: its row takes the state as is
                    self.store.apply_state(int(rec["consumer_id"]), p["client_order_id"].decode(), int(p["status"]),
                                           int(p["filled"]), int(p["cum_quote"]), int(p["venue_order_id"]),
                                           int(p["exec_seq"]))
                    replayed.append(None)
                    continue
                if o is None:
                    continue
                o.status, o.filled, o.cum_quote = ExecStatus(int(p["status"])), int(p["filled"]), int(p["cum_quote"])
                o.venue_order_id = int(p["venue_order_id"]) or o.venue_order_id
                o.last_exec_seq = int(p["exec_seq"])
                replayed.append(o)
                self.store.save([o])
            seq += len(recs)
        self.store.save([], self.publisher.last_seq)
        for o in self.store.open_orders():
            self._track(o)
        if self.tel is not None and replayed:
            self.tel.inc("exec.recovery.replayed", len(replayed))
        return len(replayed)

    def flush(self) -> int:
        """Journal, commit and publish the reports made since the last flush; return how many."""
        pending, self._pending = self._pending, []
        n = len(pending)
        if n:
            if n > len(self._buf):
                self._buf = np.zeros(max(n, 2 * len(self._buf)), EVENT)
            recs = self._buf[:n]
            recs.view(np.uint8)[:] = 0
            first = self.publisher.last_seq + 1
            for i, (o, s, r, code) in enumerate(pending):
                self._fill(recs[i], first + i, o, s, r, code)
                o.last_exec_seq = first + i
                self._inc("exec.reports", status=s.status.name, venue=o.venue.slug)
            self.publisher.append(recs)
        if n or self._dirty:
            self.store.save(list(self._dirty.values()), self.publisher.last_seq if n else None)
            for o in self._dirty.values():
                if not o.open:
                    self.open.pop(o.venue_client_order_id, None)
                    self.by_key.pop((o.consumer_id, o.client_order_id), None)
                    self._retry.pop(o.venue_client_order_id, None)
            self._dirty.clear()
        self.publisher.pump()
        return n

    def _fill(self, rec, seq: int, o: Order, s: lifecycle.Step, r: VenueOrderReported | None, code: int) -> None:
        inst = o.instrument
        now = self.clock()
        stamp_header(rec, Kind.EXEC_REPORT, int(o.venue), inst.id, consumer_id=o.consumer_id,
                     seq_provider=seq, ingest_ts_ns=now, event_ts_ns=(r.event_ts_ns if r else 0) or now,
                     event_id=event_id(int(o.venue), Kind.EXEC_REPORT, inst.id, seq),
                     trace_id=mix64(zlib.crc32(o.venue_client_order_id.encode())))
        p = rec["exec"]
        p["exec_seq"] = seq
        p["venue_order_id"] = o.venue_order_id
        p["venue_trade_id"] = s.trade_id
        p["venue_update_id"] = r.update_id if r else 0
        # the state after this step (later steps of the same flush have moved `o` on)
        p["price"], p["qty"], p["filled"], p["remaining"] = o.price, o.qty, s.filled, o.qty - s.filled
        p["last_px"], p["last_qty"], p["cum_quote"], p["fee"] = s.last_px, s.last_qty, s.cum_quote, s.fee
        p["status"], p["side"], p["order_type"], p["tif"] = s.status, o.side, o.order_type, o.tif
        p["px_scale"], p["sz_scale"], p["reject_code"] = inst.px_scale, inst.sz_scale, max(-32768, min(32767, code))
        p["quote_scale"], p["fee_scale"] = inst.px_scale + inst.sz_scale, self.slots[o.venue].adapter.fee_scale
        p["client_order_id"] = o.client_order_id.encode()
        p["fee_asset"] = (r.fee_asset if r else "").encode()[:16]
        p["reason"] = o.reason.encode()[:96] if s.status in (ExecStatus.REJECTED, ExecStatus.EXPIRED) else b""

