"""Spot balances of the simulator's accounts, one per API key: free and locked per asset.

Amounts are int mantissas at 8 decimals (Binance spot states balances with 8). Every asset
of the venue's instruments starts funded with `DEFAULT_FUNDING` units (generous: tests
that never think of balances keep trading); `fund` sets one asset.

What moves balances (`on_exec`, fed every ExecEvent of the matching engine, in order):

    an open LIMIT BUY     locks price x open quantity of the quote asset
    an open LIMIT SELL    locks the open quantity of the base asset
    a trade               BUY: base += qty, quote -= price x qty; SELL the other way round
    cancel / expire / fill / amend   the order's lock follows its open quantity (0 once closed)

(MARKET orders lock nothing: they trade at once or expire.) Each order's lock is kept, so
a lock is released exactly as it was taken. Commissions are zero, as in the order API.
`shortfall` says whether a new order is covered: the order API refuses one that is not
with Binance's -2010 "Account has insufficient balance for requested action." (a MARKET
BUY is judged at the best ask, so one that walks the book may still overdraw).
Single-threaded: the simulator's loop only.
"""

from __future__ import annotations

from typing import Any, Iterable

from .book import BID
from .instruments import format_decimal
from .matching import ExecEvent, Order

SCALE = 8
DEFAULT_FUNDING = 1_000_000_000   # units of every asset: 1e17 at 8 decimals, inside int64


def to8(mantissa: int, decimals: int, *, up: bool = False) -> int:
    """A mantissa at `decimals` as one at 8 (finer digits cut, or rounded up with `up`)."""
    if decimals <= SCALE:
        return mantissa * 10 ** (SCALE - decimals)
    step = 10 ** (decimals - SCALE)
    return -(-mantissa // step) if up else mantissa // step


def amount8(mantissa: int) -> str:
    return format_decimal(mantissa, SCALE, SCALE)


class SpotAccount:
    """One account's balances and the lock of each of its open orders."""

    def __init__(self, assets: Iterable[str], funding_units: int = DEFAULT_FUNDING):
        self.free = {a: funding_units * 10 ** SCALE for a in sorted(set(assets))}
        self.locked = {a: 0 for a in self.free}
        self._locks: dict[int, tuple[str, int]] = {}   # order id -> (asset, amount)
        self.update_ms = 0                              # time of the last change

    def fund(self, asset: str, free: int, now_ms: int) -> None:
        """Set `asset`'s free balance (a mantissa at 8 decimals)."""
        self.free[asset] = free
        self.locked.setdefault(asset, 0)
        self.update_ms = now_ms

    @staticmethod
    def lock_of(order: Order) -> tuple[str, int]:
        """What an order holds while open: (asset, amount at 8 decimals); amount 0 when nothing."""
        inst = order.inst
        if order.side == BID:
            if order.type != "LIMIT" or not order.is_open:
                return inst.quote, 0
            open_qty = order.qty - order.executed
            return inst.quote, to8(order.price * open_qty, inst.price_decimals + inst.qty_decimals, up=True)
        if order.type != "LIMIT" or not order.is_open:
            return inst.base, 0
        return inst.base, to8(order.qty - order.executed, inst.qty_decimals)

    def shortfall(self, order: Order, ref_price: int) -> bool:
        """True when the account cannot cover new `order` (MARKET BUY: judged at `ref_price`)."""
        inst = order.inst
        if order.side == BID:
            price = order.price if order.type == "LIMIT" else ref_price
            need = to8(price * order.qty, inst.price_decimals + inst.qty_decimals, up=True)
            return self.free.get(inst.quote, 0) < need
        return self.free.get(inst.base, 0) < to8(order.qty, inst.qty_decimals)

    def on_exec(self, ev: ExecEvent, now_ms: int) -> list[str]:
        """Apply one ExecEvent; return the assets whose balance it changed (sorted)."""
        o, inst = ev.order, ev.order.inst
        changed: set[str] = set()
        if ev.x == "TRADE" and ev.last_qty:
            base = to8(ev.last_qty, inst.qty_decimals)
            quote = to8(ev.last_price * ev.last_qty, inst.price_decimals + inst.qty_decimals)
            sign = 1 if o.side == BID else -1
            self._move(inst.base, sign * base)
            self._move(inst.quote, -sign * quote)
            changed |= {inst.base, inst.quote}
        asset, want = self.lock_of(o)
        _, held = self._locks.get(o.order_id, (asset, 0))
        if want != held:
            self.free[asset] = self.free.get(asset, 0) - (want - held)
            self.locked[asset] = self.locked.get(asset, 0) + (want - held)
            changed.add(asset)
        if want:
            self._locks[o.order_id] = (asset, want)
        else:
            self._locks.pop(o.order_id, None)
        if changed:
            self.update_ms = now_ms
        return sorted(changed)

    def _move(self, asset: str, amount: int) -> None:
        self.free[asset] = self.free.get(asset, 0) + amount
        self.locked.setdefault(asset, 0)

    def balances(self, assets: Iterable[str] | None = None, *, omit_zero: bool = False) -> list[dict[str, str]]:
        """[{"asset", "free", "locked"}] of `assets` (None: all), as Binance states them."""
        names = sorted(self.free) if assets is None else assets
        return [{"asset": a, "free": amount8(self.free.get(a, 0)), "locked": amount8(self.locked.get(a, 0))}
                for a in names if not (omit_zero and not self.free.get(a, 0) and not self.locked.get(a, 0))]

    def position_event(self, assets: list[str], event_ms: int) -> dict[str, Any]:
        """The `outboundAccountPosition` event of `assets` (user-data-stream.md "Account Update")."""
        return {"e": "outboundAccountPosition", "E": event_ms, "u": self.update_ms,
                "B": [{"a": b["asset"], "f": b["free"], "l": b["locked"]} for b in self.balances(assets)]}


class Accounts:
    """The accounts of one venue, by API key (created funded on first use)."""

    def __init__(self, assets: Iterable[str], funding_units: int = DEFAULT_FUNDING):
        self.assets = sorted(set(assets))
        self.funding_units = funding_units
        self.by_key: dict[str, SpotAccount] = {}

    def get(self, api_key: str) -> SpotAccount:
        acc = self.by_key.get(api_key)
        if acc is None:
            acc = self.by_key[api_key] = SpotAccount(self.assets, self.funding_units)
        return acc
