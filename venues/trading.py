"""What execution hands a venue's trading adapter (`Order`) and what the adapter reports
back (venue events, past tense): the vocabulary shared by `execution` and every
`venues/<venue>/trading/` package.

Venue events come from a trading adapter (REST replies, the user-data stream, queries).
Money is always an int64 mantissa at the instrument's scale; `cum_quote` is at
`px_scale + sz_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from events import ExecStatus, Instrument, OrderType, Provider, Side, TimeInForce


# -- venue events (from an adapter) ----------------------------------------------------

@dataclass(slots=True)
class VenueOrderReported:
    """The venue told us an order's state: an execution report, a REST reply or a query.

    `client_order_ids` lists the venue client order ids the report names (Binance sends
    the cancel's own id in `c` and the order's in `C`); the engine takes the one it knows.
    `status` is None when the venue status carries no lifecycle step (PENDING_CANCEL).
    `cum_qty` / `cum_quote` are the venue's cumulative figures; `last_qty` / `last_px` /
    `trade_id` describe this one trade (trade_id -1: none). `price` / `qty` are the
    order's limit price and total quantity as the venue now has them (0: not reported);
    after an amend they are the new ones (`amended` True on the report of the amend).
    """

    client_order_ids: tuple[str, ...]
    status: ExecStatus | None
    venue_order_id: int
    cum_qty: int
    cum_quote: int
    last_qty: int = 0
    last_px: int = 0
    trade_id: int = -1
    fee: int = 0
    fee_asset: str = ""
    update_id: int = 0
    reason: str = ""
    event_ts_ns: int = 0
    source: str = "stream"   # "stream", "rest", "query", "open_orders", "amend"
    price: int = 0
    qty: int = 0
    amended: bool = False


@dataclass(frozen=True, slots=True)
class VenueRequestRefused:
    """The venue said no to a request (place or cancel): its code and message."""

    client_order_id: str
    action: str              # "place", "cancel", "amend", "query"
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class VenueOutcomeUnknown:
    """A request got no usable answer (timeout, dropped connection, 5xx).

    `sent_ms` is the venue timestamp the request was signed with (0: not known): the
    venue accepts it only within its recvWindow after that.
    """

    client_order_id: str
    action: str
    reason: str
    sent_ms: int = 0


@dataclass(frozen=True, slots=True)
class VenueOrderNotFound:
    """A query by client order id found no such order at the venue."""

    client_order_id: str


@dataclass(frozen=True, slots=True)
class VenueOpenOrdersListed:
    """The answer to list request `request_id` (reconciliation): a report of each order the
    venue has open in the request's scope (one symbol, or all), ours or not."""

    reports: tuple[VenueOrderReported, ...]
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class VenueOpenOrdersFailed:
    """List request `request_id` got no usable answer (refused, timeout, 5xx, unreadable)."""

    request_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset of the account: `free` and `locked` mantissas at `scale`."""

    asset: str
    free: int
    locked: int
    scale: int


@dataclass(frozen=True, slots=True)
class Position:
    """One derivatives position (one-way mode / net): `size` signed (long > 0) at the
    instrument's sz_scale, in base units (OKX swaps: contracts x ctVal); `entry_px` at its
    px_scale; `unrealized_pnl` as the venue reports it, at `pnl_scale`, in `pnl_asset`."""

    instrument: Instrument
    size: int
    entry_px: int
    unrealized_pnl: int
    pnl_scale: int
    pnl_asset: str = ""


@dataclass(frozen=True, slots=True)
class VenueAccountReported:
    """Balances and positions the venue reported. `full`: a whole snapshot (REST, on start
    and on every user-stream reconnect: anything not in it is zero); else only what changed
    (a user-stream update)."""

    balances: tuple[Balance, ...] = ()
    positions: tuple[Position, ...] = ()
    full: bool = False
    event_ts_ns: int = 0
    source: str = "stream"   # "stream", "rest"


@dataclass(frozen=True, slots=True)
class VenueAccountFailed:
    """An account request (`query_account`) got no usable answer."""

    reason: str


@dataclass(frozen=True, slots=True)
class UserStreamConnected:
    """The user-data stream is (re)connected: what it missed meanwhile must be queried."""


@dataclass(frozen=True, slots=True)
class UserStreamDisconnected:
    reason: str = ""


# -- the order -------------------------------------------------------------------------

class Pending(IntEnum):
    """A request of ours in flight on an open order. With the order's reported `status` it
    is the order's state in execution's one transition table (execution.lifecycle:
    CANCEL is PENDING_CANCEL, REPLACE is PENDING_REPLACE)."""

    NONE = 0
    CANCEL = 1
    REPLACE = 2


@dataclass(slots=True)
class Order:
    """One order as execution knows it. `filled + remaining == qty` always. `venue`: the
    provider it is placed on (its instrument is that venue's)."""

    consumer_id: int
    client_order_id: str
    venue_client_order_id: str
    instrument: Instrument
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int               # mantissa at px_scale; 0 for market orders
    qty: int                 # mantissa at sz_scale
    status: ExecStatus = ExecStatus.PENDING
    filled: int = 0
    cum_quote: int = 0
    fee: int = 0
    venue_order_id: int = 0
    reason: str = ""
    created_ns: int = 0
    updated_ns: int = 0
    sent_ms: int = 0          # venue timestamp of the last placement attempt (recvWindow)
    unknown_since_ns: int = 0  # the outcome of a placement or amend is unknown since then (0: known)
    pending: Pending = Pending.NONE  # a cancel or amend of ours in flight (execution.lifecycle)
    last_exec_seq: int = 0
    venue: Provider = Provider.BINANCE_SPOT
    # amends: `amends` counts the amend requests sent; `amend_qty` / `amend_price` are the
    # target of the amend in flight (0: none); `amend_coid` the venue client order id a venue
    # that amends by cancel-replace gives the new venue order (execution.ids);
    # `base_filled` / `base_quote` are the fills of the venue orders a cancel-replace
    # replaced (the current venue order's cumulative figures add to them)
    amends: int = 0
    amend_qty: int = 0
    amend_price: int = 0
    amend_coid: str = ""
    base_filled: int = 0
    base_quote: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def open(self) -> bool:
        return not self.status.terminal
