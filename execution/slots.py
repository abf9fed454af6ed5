"""A venue as the engine sees it: the adapter protocol, and one `VenueSlot` per venue traded.

A slot holds one venue's adapter, instruments, open-orders list requests (reconcile.py),
user-stream state and whether the venue is down (its new orders are rejected).
"""

from __future__ import annotations

from typing import Protocol

from events import Instrument, Provider
from venues.trading import Order

from .reconcile import Listings


class Venue(Protocol):
    """What the engine asks of a venue adapter; outcomes come back as venue events."""

    provider: Provider
    recv_window_ms: int
    fee_scale: int  # scale of the fee mantissas in the venue's reports
    list_all_from: int  # list every symbol in one request from this many symbols with open orders

    def place(self, order: Order) -> None: ...
    def cancel(self, order: Order) -> None: ...
    # amend an open order to total quantity `qty` and limit price `price` (mantissas; either
    # may equal the order's own): a VenueOrderReported with amended=True, price and qty set,
    # or VenueRequestRefused / VenueOutcomeUnknown with action "amend"
    def amend(self, order: Order, qty: int, price: int) -> None: ...
    def query(self, order: Order) -> None: ...
    def list_open(self, instrument: Instrument | None, request_id: int) -> None: ...  # None: all symbols
    # balances (and positions) by REST: VenueAccountReported(full=True) or VenueAccountFailed
    def query_account(self) -> None: ...


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
