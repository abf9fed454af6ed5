"""Test doubles for execution: an instrument registry, a manual clock, a recording venue
(which lists all symbols at once from 3 symbols with open orders, to keep tests small)."""

from __future__ import annotations

from events import Instrument, Provider, Registry
from venues.trading import VenueOrderReported

BTC = Instrument("BTC-USDT", px_scale=2, sz_scale=5, tick=1, lot=1, min_notional=5 * 10**7)
ETH = Instrument("ETH-USDT", px_scale=2, sz_scale=4, tick=1, lot=1, min_notional=5 * 10**6)
ETHBTC = Instrument("ETH-BTC", px_scale=8, sz_scale=4, tick=1, lot=1)


def registry() -> Registry:
    reg = Registry([BTC, ETH, ETHBTC])
    reg.map_venue(Provider.BINANCE_SPOT, "BTCUSDT", "BTC-USDT")
    reg.map_venue(Provider.BINANCE_SPOT, "ETHUSDT", "ETH-USDT")
    reg.map_venue(Provider.BINANCE_SPOT, "ETHBTC", "ETH-BTC")
    return reg


class Clock:
    """A clock the test moves by hand (integer nanoseconds)."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000):
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


class RecordingVenue:
    """The engine's Venue: records every call; the test answers with venue events."""

    provider = Provider.BINANCE_SPOT
    recv_window_ms = 5000
    fee_scale = 8
    list_all_from = 3

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.lists: list[tuple[str, int]] = []  # (symbol or "*", request id) of each list_open
        self.amends: list[tuple[str, int, int]] = []  # (venue client order id, qty, price) of each amend
        self.account_queries = 0                # query_account calls (kept out of `calls`)

    def list_open(self, instrument, request_id):
        scope = instrument.symbol if instrument is not None else "*"
        self.calls.append(("list", scope))
        self.lists.append((scope, request_id))

    def last_list(self, scope: str) -> int:
        """The request id of the latest list of `scope` (a symbol, or "*")."""
        return [rid for s, rid in self.lists if s == scope][-1]

    def place(self, o):
        self.calls.append(("place", o.venue_client_order_id))

    def cancel(self, o):
        self.calls.append(("cancel", o.venue_client_order_id))

    def query(self, o):
        self.calls.append(("query", o.venue_client_order_id))

    def amend(self, o, qty, price):
        self.calls.append(("amend", o.venue_client_order_id))
        self.amends.append((o.venue_client_order_id, qty, price))

    def query_account(self):
        self.account_queries += 1

    def count(self, action: str) -> int:
        return sum(1 for a, _ in self.calls if a == action)


def report(vcoid: str, status, cum_qty: int = 0, cum_quote: int = 0, *, last_qty: int = 0, last_px: int = 0,
           trade_id: int = -1, venue_order_id: int = 7, source: str = "stream", price: int = 0, qty: int = 0,
           amended: bool = False) -> VenueOrderReported:
    return VenueOrderReported((vcoid,), status, venue_order_id, cum_qty, cum_quote, last_qty=last_qty,
                              last_px=last_px, trade_id=trade_id, source=source, price=price, qty=qty,
                              amended=amended)


class Counters:
    """Telemetry that only counts: `tel["name"]` sums a counter over its labels."""

    def __init__(self):
        self.counters: dict[tuple[str, tuple], int] = {}

    def inc(self, name: str, n: int = 1, **labels) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0) + n

    def __getitem__(self, name: str) -> int:
        return sum(v for (k, _), v in self.counters.items() if k == name)
