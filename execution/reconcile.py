"""Reconciliation by listing: the open-orders lists of a venue, and what their answers settle.

Reconciliation (after a restart, on every user-stream reconnect, and every poll interval
while the stream is down) lists the venue's open orders (`list_open`: one request per
symbol with open orders, or one for all symbols) and applies each listed order's report
like a query's answer; only the orders open here but absent from the list (terminal at
the venue, or never received) are queried one by one. A list request that fails is
retried with backoff. It runs per venue (a `VenueSlot`, slots.py).

`Listings` is the bookkeeping (no I/O); the functions below it act on the engine's state
(one thread). A *scope* is what one list
request covers: an instrument id (the venue's open orders of one symbol) or `ALL` (every
symbol at once, when the venue prices that lower than one request per symbol: the
venue's `list_all_from`). Each scope has at most one current request:

    start(scope, expect)   a request goes out; `expect` = the orders open here at that moment
    answered(request_id)   its Listing (pop: reconciled), or None for a stale request
    failed(request_id)     retry after a backoff (doubling, min..max)
    due(now)               scopes to (re)send: a retry, or a request whose answer never came

An order in `expect` but absent from the answer has left the venue's book (terminal) or
never reached it; the engine queries just those. Orders opened after the request went
out are not in `expect`: the venue may not have had them when it answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from events import Provider
from venues.trading import Order, VenueOpenOrdersFailed, VenueOpenOrdersListed

from . import account, venue_events
from .ids import is_ours

if TYPE_CHECKING:
    from .engine import Engine
    from .slots import VenueSlot

ALL = None  # the scope of a list request without a symbol
_STALE = object()


@dataclass(slots=True)
class Listing:
    request_id: int           # 0: not out, waiting for its retry at `due_ns`
    expect: frozenset[str]    # venue client order ids open here when the request went out
    due_ns: int               # send (again) at: a retry, or the answer is overdue
    backoff_ns: int


class Listings:
    """The current list request of each scope. One thread (the engine's)."""

    def __init__(self, backoff_ns: tuple[int, int], list_all_from: int):
        self.backoff_min, self.backoff_max = backoff_ns
        self.list_all_from = list_all_from
        self.table: dict[int | None, Listing] = {}
        self._scope_of: dict[int, int | None] = {}  # current request id -> its scope
        self._next_id = 0

    def scopes(self, orders: Iterable[Order]) -> dict[int | None, list[Order]]:
        """The scopes that cover `orders`: one per instrument, or ALL from `list_all_from` instruments."""
        by_inst: dict[int, list[Order]] = {}
        for o in orders:
            by_inst.setdefault(o.instrument.id, []).append(o)
        if len(by_inst) >= self.list_all_from:
            return {ALL: [o for group in by_inst.values() for o in group]}
        return by_inst

    @staticmethod
    def members(scope: int | None, orders: Iterable[Order]) -> list[Order]:
        return [o for o in orders if scope is ALL or o.instrument.id == scope]

    def busy(self, scope: int | None) -> bool:
        """True while a request of `scope` (or of ALL) is out or waiting for its retry."""
        return scope in self.table or ALL in self.table

    def start(self, scope: int | None, expect: Iterable[str], now_ns: int) -> int:
        """Record a new request of `scope` (replacing the current one); return its id."""
        self._next_id += 1
        prev = self.table.get(scope)
        if prev is not None:
            self._scope_of.pop(prev.request_id, None)  # its answer, if any, is stale now
        backoff = prev.backoff_ns if prev else self.backoff_min // 2
        # no answer within 4 x the longest backoff: the request (or its answer) was lost
        self.table[scope] = Listing(self._next_id, frozenset(expect), now_ns + 4 * self.backoff_max, backoff)
        self._scope_of[self._next_id] = scope
        return self._next_id

    def answered(self, request_id: int) -> Listing | None:
        """The Listing of the current request `request_id` (forgotten: the scope is reconciled);
        None when the request is no longer current (a newer one replaced it)."""
        scope = self._scope_of.pop(request_id, _STALE)
        return None if scope is _STALE else self.table.pop(scope)

    def failed(self, request_id: int, now_ns: int) -> bool:
        """Schedule a retry of the current request `request_id`; False when it is stale."""
        scope = self._scope_of.pop(request_id, _STALE)
        if scope is _STALE:
            return False
        lst = self.table[scope]
        lst.request_id = 0
        lst.backoff_ns = min(max(lst.backoff_ns * 2, self.backoff_min), self.backoff_max)
        lst.due_ns = now_ns + lst.backoff_ns
        return True

    def due(self, now_ns: int) -> list[int | None]:
        return [scope for scope, lst in self.table.items() if lst.due_ns <= now_ns]

    def drop(self, scope: int | None) -> None:
        lst = self.table.pop(scope, None)
        if lst is not None:
            self._scope_of.pop(lst.request_id, None)


def reconcile(eng: Engine, provider: Provider | None = None, *, poll: bool = False) -> None:
    """List a venue's open orders to reconcile its every open order (after a restart or a
    user-stream reconnect: every scope again, since an older list may predate what the
    stream missed); `provider` None: every venue started. `poll` (the stream is down):
    skip scopes whose list is still out or waiting for its retry."""
    if provider is None:
        for p, slot in eng.slots.items():
            if slot.adapter is not None:
                reconcile(eng, p, poll=poll)
        return
    slot = eng.slots[Provider(provider)]
    if slot.adapter is None:
        return
    now = eng.clock()
    # (closed: not flushed yet)
    scopes = slot.listings.scopes(o for o in eng.open.values() if o.open and o.venue is slot.provider)
    for scope, orders in scopes.items():
        if not (poll and slot.listings.busy(scope)):
            _list(eng, slot, scope, orders, now)
    if scopes:
        slot.next_poll_ns = now + eng.poll_interval_ns  # a poll right after this one adds nothing


def _list(eng: Engine, slot: VenueSlot, scope, orders: list[Order], now: int) -> None:
    rid = slot.listings.start(scope, (o.venue_client_order_id for o in orders), now)
    eng.inc("exec.reconcile.lists", venue=slot.provider.slug)
    slot.adapter.list_open(None if scope is ALL else orders[0].instrument, rid)


def on_listed(eng: Engine, slot: VenueSlot, ev: VenueOpenOrdersListed) -> None:
    """Apply each listed order's report (as a query answer), then query the expected
    orders the list lacks: they have left the venue's book, or never reached it."""
    listed = set()
    for r in ev.reports:
        if not any(is_ours(c) for c in r.client_order_ids):
            eng.inc("exec.reconcile.foreign")  # another client's order on the same account
            continue
        o = eng.lookup(r.client_order_ids)
        if o is not None:
            listed.add(o.venue_client_order_id)
        # a list older than what we know (an order closed since) is out of order: ignored
        venue_events.on_report(eng, r, o)
    lst = slot.listings.answered(ev.request_id)
    if lst is None:
        return  # a replaced request: its reports count, a newer list judges what is missing
    now = eng.clock()
    for vcoid in lst.expect - listed:
        o = eng.open.get(vcoid)
        if o is None or not o.open or vcoid in eng.retry:
            continue  # closed meanwhile (maybe not flushed yet), or a query of it is out or due
        eng.retry[vcoid] = (now + eng.backoff_max * 4, eng.backoff_min // 2)  # until an answer reschedules
        eng.inc("exec.reconcile.queries")
        slot.adapter.query(o)


def on_list_failed(eng: Engine, slot: VenueSlot, ev: VenueOpenOrdersFailed) -> None:
    eng.inc("exec.reconcile.list_failed", venue=slot.provider.slug)
    slot.listings.failed(ev.request_id, eng.clock())


def on_stream_connected(eng: Engine, slot: VenueSlot) -> None:
    slot.stream_up, slot.stream_lost_ns = True, 0
    eng.inc("exec.stream.connected", venue=slot.provider.slug)
    reconcile(eng, slot.provider)
    account.query(eng, slot)  # what the stream missed of balances and positions, too


def on_stream_disconnected(eng: Engine, slot: VenueSlot) -> None:
    if slot.stream_up:
        slot.stream_lost_ns = eng.clock()
    slot.stream_up = False
    eng.inc("exec.stream.disconnected", venue=slot.provider.slug)


def poll(eng: Engine, now: int) -> int:
    """Resend due list requests (a failed list's retry, or an answer that never came), and
    list open orders of every venue whose user stream is down, each poll interval. Returns
    work done."""
    work = 0
    for p, slot in eng.slots.items():
        if slot.adapter is None:
            continue
        for scope in slot.listings.due(now):
            orders = slot.listings.members(scope, (o for o in eng.open.values() if o.open and o.venue is p))
            if orders:
                eng.inc("exec.reconcile.list_retries", venue=p.slug)
                _list(eng, slot, scope, orders, now)
                work += 1
            else:
                slot.listings.drop(scope)
        if not slot.stream_up and now >= slot.next_poll_ns and any(o.venue is p for o in eng.open.values()):
            reconcile(eng, p, poll=True)
            work += 1
    return work
