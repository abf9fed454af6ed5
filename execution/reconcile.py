"""Reconciliation by listing: which open-orders lists are out, what each expects, their backoff.

Bookkeeping only, no I/O; the engine (one thread) acts on it. A *scope* is what one list
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
from typing import Iterable

from venues.trading import Order

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
