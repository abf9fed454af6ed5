"""Checks on a new order before anything leaves: every failure is a BadInput naming the value.

Known instrument; side, type and time in force from their tables; decimal strings only
(a JSON number is refused: floats cannot carry money); quantity and price positive and
exact at the instrument's scale; multiples of lot and tick; the venue's minimum
notional; required fields per order type (LIMIT: price and tif; MARKET: neither).
POST_ONLY (alias GTX, Binance USD-M's name) is a limit order's time in force only;
`reduce_only` is a derivatives order's only (a canonical symbol with a -PERP or -YYMMDD
suffix): spot has no position to reduce; it is exempt from the minimum notional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from events import (
    BadInput, DecimalError, Instrument, OrderType, Registry, Side, TimeInForce, to_decimal, to_mantissa)
from events.instruments import split_symbol

SIDES = {"buy": Side.BUY, "sell": Side.SELL}
TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
        "POST_ONLY": TimeInForce.POST_ONLY, "GTX": TimeInForce.POST_ONLY}
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_.:/\-]{1,40}$")


@dataclass(frozen=True, slots=True)
class Checked:
    """A new order that passed validation, in mantissas."""

    instrument: Instrument
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: int
    price: int        # 0 for market orders
    ref_price: int    # 0 when none was given
    reduce_only: bool = False


def parse_enum(table: dict, value, what: str):
    if isinstance(value, str):
        key = value if what == "tif" else value.lower()
        if key in table:
            return table[key]
    raise BadInput(f"{what} must be one of {sorted(table)}: {what}={value!r}")


def decimal_field(value, scale: int, what: str, *, positive: bool = True) -> int:
    """The mantissa of decimal string `value` at `scale`; BadInput otherwise."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a decimal string, not {type(value).__name__}: {what}={value!r}")
    try:
        m = to_mantissa(value, scale)
    except DecimalError as e:
        raise BadInput(f"{what} is not an exact decimal at scale {scale}: {what}={value!r} ({e})") from None
    if positive and m <= 0:
        raise BadInput(f"{what} must be positive: {what}={value!r}")
    return m


def check_client_order_id(coid) -> str:
    if not isinstance(coid, str) or not CLIENT_ORDER_ID_RE.match(coid):
        raise BadInput(f"client_order_id must be 1-40 characters of [A-Za-z0-9_.:/-]: client_order_id={coid!r}")
    return coid


def check_new_order(registry: Registry, symbol, side, order_type, tif, qty, price,
                    ref_price=None, reduce_only=False) -> Checked:
    """Validate the fields of a new order against `registry`; return them in mantissas."""
    if not isinstance(symbol, str):
        raise BadInput(f"symbol must be a string: symbol={symbol!r}")
    inst = registry.by_symbol(symbol)  # UnknownInstrument (a BadInput) if not listed
    if not isinstance(reduce_only, bool):
        raise BadInput(f"reduce_only must be true or false: reduce_only={reduce_only!r}")
    if reduce_only and not split_symbol(inst.symbol)[2]:
        raise BadInput(f"reduce_only applies to futures and swaps only, not to spot: symbol={symbol}")
    s = parse_enum(SIDES, side, "side")
    t = parse_enum(TYPES, order_type, "type")
    q = decimal_field(qty, inst.sz_scale, "qty")
    if q % inst.lot:
        raise BadInput(f"qty is not a multiple of the lot size: qty={qty!r}, {symbol} lot mantissa={inst.lot} "
                       f"at scale {inst.sz_scale}")
    ref = 0
    if t is OrderType.LIMIT:
        if price is None:
            raise BadInput(f"a limit order needs a price: symbol={symbol}")
        if tif is None:
            raise BadInput(f"a limit order needs a time in force (GTC, IOC, FOK, POST_ONLY): symbol={symbol}")
        f = parse_enum(TIFS, tif, "tif")
        p = decimal_field(price, inst.px_scale, "price")
        if p % inst.tick:
            raise BadInput(f"price is not a multiple of the tick size: price={price!r}, {symbol} tick mantissa="
                           f"{inst.tick} at scale {inst.px_scale}")
        notional = p * q
    else:
        if price is not None:
            raise BadInput(f"a market order takes no price: price={price!r}")
        if tif in ("POST_ONLY", "GTX"):
            raise BadInput(f"post-only is a limit order's time in force; a market order always takes: tif={tif!r}")
        if tif not in (None, "IOC"):
            raise BadInput(f"a market order takes no time in force (it is IOC): tif={tif!r}")
        f = TimeInForce.IOC
        p = 0
        if ref_price is not None:
            ref = decimal_field(ref_price, inst.px_scale, "ref_price")
        notional = ref * q
    # a reduce-only order is exempt: USD-M -4164 "Order's notional must be no smaller than ...
    # (unless you choose reduce only)", so a position below the minimum can still be closed
    if inst.min_notional and notional and notional < inst.min_notional and not reduce_only:
        raise BadInput(f"order notional below the venue minimum: price*qty={notional} < {inst.min_notional} "
                       f"(mantissas at scale {inst.px_scale + inst.sz_scale}), symbol={symbol}")
    return Checked(inst, s, t, f, q, p, ref, reduce_only)


def check_amend(o, qty, price) -> tuple[int, int]:
    """Validate an amend of open order `o` (venues.trading.Order) to total quantity `qty` and/or
    limit price `price` (decimal strings; None: keep the order's); return (qty, price) in mantissas.

    The new quantity is a multiple of the lot and above what is filled; a price change
    needs a LIMIT order and a multiple of the tick; something must change; the venue's
    minimum notional holds for the new price and quantity.
    """
    inst = o.instrument
    if qty is None and price is None:
        raise BadInput(f"an amend needs a new qty or a new price: client_order_id={o.client_order_id!r}")
    q = o.qty
    if qty is not None:
        q = decimal_field(qty, inst.sz_scale, "qty")
        if q % inst.lot:
            raise BadInput(f"qty is not a multiple of the lot size: qty={qty!r}, {inst.symbol} lot mantissa="
                           f"{inst.lot} at scale {inst.sz_scale}")
        if q <= o.filled:
            raise BadInput(f"qty must be above the filled quantity: qty={qty!r}, filled="
                           f"{to_decimal(o.filled, inst.sz_scale)}")
    p = o.price
    if price is not None:
        if o.order_type is not OrderType.LIMIT:
            raise BadInput(f"only a limit order's price can change: type={o.order_type.name.lower()}")
        p = decimal_field(price, inst.px_scale, "price")
        if p % inst.tick:
            raise BadInput(f"price is not a multiple of the tick size: price={price!r}, {inst.symbol} tick "
                           f"mantissa={inst.tick} at scale {inst.px_scale}")
    if (q, p) == (o.qty, o.price):
        raise BadInput(f"the amend changes nothing: qty={to_decimal(q, inst.sz_scale)}, "
                       f"price={to_decimal(p, inst.px_scale) if p else None}")
    if inst.min_notional and p and p * q < inst.min_notional:
        raise BadInput(f"order notional below the venue minimum: price*qty={p * q} < {inst.min_notional} "
                       f"(mantissas at scale {inst.px_scale + inst.sz_scale}), symbol={inst.symbol}")
    return q, p
