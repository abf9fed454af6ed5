"""Matching engine for user orders against the simulator's books.

Price-time priority: an incoming order takes the best opposite prices first; at
one price the synthetic quantity trades first, then resting user orders in
arrival order (book.py). Limit GTC remainders rest in the book and show in the
public depth; IOC remainders and market-order remainders expire; FOK expires
whole unless the book can fill it at once. Resting orders fill later when the
synthetic market trades into them or moves through their price (market.py).

Order lifecycle, the one transition table (Binance names):

    status \\ event     TRADE (part)       TRADE (rest)   CANCELED   EXPIRED
    NEW                 PARTIALLY_FILLED   FILLED         CANCELED   EXPIRED
    PARTIALLY_FILLED    PARTIALLY_FILLED   FILLED         CANCELED   EXPIRED
    FILLED, CANCELED, EXPIRED: terminal

Every change is reported to `on_event` as an ExecEvent, synchronously and in
order: NEW first, then TRADE / CANCELED / EXPIRED. Single-threaded: the
simulator's loop only. Quantities and prices are int mantissas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

from .book import ASK, BID
from .instruments import Instrument
from .market import BookDriver, Trade

OPEN = ("NEW", "PARTIALLY_FILLED")
_NEXT = {  # (status, event) -> status; "FILL" is a trade that completes the order
    ("NEW", "TRADE"): "PARTIALLY_FILLED", ("PARTIALLY_FILLED", "TRADE"): "PARTIALLY_FILLED",
    ("NEW", "FILL"): "FILLED", ("PARTIALLY_FILLED", "FILL"): "FILLED",
    ("NEW", "CANCELED"): "CANCELED", ("PARTIALLY_FILLED", "CANCELED"): "CANCELED",
    ("NEW", "EXPIRED"): "EXPIRED", ("PARTIALLY_FILLED", "EXPIRED"): "EXPIRED",
}


class OrderStateError(RuntimeError):
    """An event does not apply to the order's status (a bug in the caller)."""


@dataclass(eq=False)
class Order:
    """One user order; `leaves` is the open quantity (the book reduces it)."""

    order_id: int
    client_order_id: str
    inst: Instrument
    side: int                 # BID = BUY, ASK = SELL
    type: str                 # "LIMIT" | "MARKET"
    tif: str                  # "GTC" | "IOC" | "FOK" ("GTC" reported for MARKET)
    qty: int
    price: int                # 0 for MARKET
    created_ms: int
    leaves: int = 0
    executed: int = 0
    quote: int = 0            # sum of price * qty, at price + qty decimals
    status: str = "NEW"
    updated_ms: int = 0
    in_book: bool = False
    fills: list[tuple[int, int, int]] = field(default_factory=list)  # (trade id, price, qty)
    maker_only: bool = False  # Binance spot LIMIT_MAKER: a LIMIT GTC refused before it could take

    @property
    def wire_type(self) -> str:
        """The order type as the venue reports it (LIMIT_MAKER for a maker-only LIMIT)."""
        return "LIMIT_MAKER" if self.maker_only else self.type

    @property
    def symbol(self) -> str:
        """Return the Binance symbol."""
        return self.inst.binance_symbol

    @property
    def is_open(self) -> bool:
        """Tell whether the order can still trade or be canceled."""
        return self.status in OPEN


@dataclass(slots=True)
class ExecEvent:
    """One reported change: x is NEW, TRADE, CANCELED, EXPIRED or REPLACED (amend)."""

    order: Order
    x: str
    ts_ms: int
    last_qty: int = 0
    last_price: int = 0
    trade_id: int = -1
    maker: bool = False
    cancel_client_id: str = ""


class MatchingEngine:
    """User orders of one venue, matched against that venue's books."""

    def __init__(self, drivers: dict[str, BookDriver], on_event: Callable[[ExecEvent], None],
                 publish: Callable[[Instrument, list[Trade]], None], clock_ms: Callable[[], int]):
        self.drivers = drivers
        self.on_event = on_event
        self.publish = publish
        self.clock_ms = clock_ms
        self.orders: dict[int, Order] = {}
        self.by_client: dict[tuple[str, str], Order] = {}   # latest order per (symbol, cid)
        self._ids = itertools.count(1)
        self.trades = 0

    def new_order_id(self) -> int:
        """Return the next venue order id."""
        return next(self._ids)

    def open_with_client_id(self, symbol: str, client_order_id: str) -> Order | None:
        """Return the open order with this client id, if any."""
        order = self.by_client.get((symbol, client_order_id))
        return order if order is not None and order.is_open else None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Return open orders (of one symbol), oldest first."""
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def submit(self, order: Order) -> list[Trade]:
        """Accept a validated order: report NEW, match, then rest or expire it."""
        driver = self.drivers[order.inst.canonical]
        order.leaves = order.qty
        order.updated_ms = order.created_ms
        self.orders[order.order_id] = order
        self.by_client[order.symbol, order.client_order_id] = order
        self._emit(ExecEvent(order, "NEW", order.created_ms))
        maker_side = ASK if order.side == BID else BID
        limit = order.price if order.type == "LIMIT" else None
        trades: list[Trade] = []
        if order.tif != "FOK" or driver.available(maker_side, limit) >= order.qty:
            trades = driver.take(maker_side, limit, order.leaves, order)
            self.apply_trades(trades)
        if order.is_open:
            if order.type == "LIMIT" and order.tif == "GTC":
                driver.book.add_order(order.side, order.price, order)
                order.in_book = True
            else:
                self._transition(order, "EXPIRED")
                order.leaves = 0
                self._emit(ExecEvent(order, "EXPIRED", self.clock_ms()))
        self.publish(order.inst, trades)
        return trades

    def cancel(self, order: Order, cancel_client_id: str) -> None:
        """Cancel an open order and take it out of the book."""
        self._transition(order, "CANCELED")
        if order.in_book:
            self.drivers[order.inst.canonical].book.remove_order(order.side, order.price, order)
            order.in_book = False
        order.leaves = 0
        order.updated_ms = self.clock_ms()
        self._emit(ExecEvent(order, "CANCELED", order.updated_ms, cancel_client_id=cancel_client_id))
        self.publish(order.inst, [])

    def amend(self, order: Order, qty: int, price: int) -> list[Trade]:
        """Change an open order's total quantity and/or limit price, as venues amend.

        The caller has checked the request (open order, `executed < qty`, a LIMIT order
        for a price change). Priority: a quantity decrease at the same price keeps the
        order's place in its queue; anything else (a price change, a quantity increase)
        takes it out and queues it again at the back of its (new) level, matching first
        when the new price crosses. Reports REPLACED (status unchanged), then any TRADE.
        """
        book = self.drivers[order.inst.canonical].book
        keep = price == order.price and qty <= order.qty
        if order.in_book:
            book.remove_order(order.side, order.price, order)
        order.qty, order.price = qty, price
        order.leaves = qty - order.executed
        order.updated_ms = self.clock_ms()
        self._emit(ExecEvent(order, "REPLACED", order.updated_ms))
        trades: list[Trade] = []
        if order.in_book:
            if keep:
                book.insert_order(order.side, order.price, order)
            else:
                driver = self.drivers[order.inst.canonical]
                trades = driver.take(ASK if order.side == BID else BID, order.price, order.leaves, order)
                self.apply_trades(trades)
                if order.is_open:
                    book.add_order(order.side, order.price, order)
                else:
                    order.in_book = False
        self.publish(order.inst, trades)
        return trades

    def apply_trades(self, trades: list[Trade]) -> None:
        """Apply the user-order side of trades: taker first, then maker."""
        for t in trades:
            if isinstance(t.taker, Order):
                t.taker.leaves -= t.qty
                self._fill(t.taker, t, maker=False)
            if isinstance(t.maker, Order):
                self._fill(t.maker, t, maker=True)   # the book already reduced leaves

    def _fill(self, order: Order, t: Trade, maker: bool) -> None:
        order.executed += t.qty
        order.quote += t.price * t.qty
        order.fills.append((t.trade_id, t.price, t.qty))
        done = order.executed == order.qty
        self._transition(order, "FILL" if done else "TRADE")
        if done:
            order.in_book = False
        order.updated_ms = self.clock_ms()
        self.trades += 1
        self._emit(ExecEvent(order, "TRADE", order.updated_ms, t.qty, t.price, t.trade_id, maker))

    @staticmethod
    def _transition(order: Order, event: str) -> None:
        nxt = _NEXT.get((order.status, event))
        if nxt is None:
            raise OrderStateError(
                f"event does not apply: order_id={order.order_id} status={order.status} event={event}")
        order.status = nxt

    def _emit(self, event: ExecEvent) -> None:
        self.on_event(event)
