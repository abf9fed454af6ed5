"""The commands execution takes from consumers (imperative).

Commands come from consumers over the control socket. The order itself and the venue
events (past tense) that trading adapters report are in `venues.trading`, the
vocabulary shared by execution and every venue's trading adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import OrderType, Side, TimeInForce


# -- commands (from consumers) ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SubmitOrder:
    consumer: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: str                 # decimal strings, validated against the instrument
    price: str | None
    ref_price: str | None = None  # market orders: reference for the notional limit
    request_id: int = 0
    venue: str | None = None  # provider slug; None: the only venue execution trades


@dataclass(frozen=True, slots=True)
class CancelOrder:
    consumer: str
    client_order_id: str
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change an open order's total quantity and/or limit price (decimal strings; None: keep)."""

    consumer: str
    client_order_id: str
    qty: str | None = None
    price: str | None = None
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class QueryOrder:
    consumer: str
    client_order_id: str
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class SetTradingMode:
    consumer: str
    enabled: bool
    request_id: int = 0
