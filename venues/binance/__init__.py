"""Binance: spot, Binance.US, USD-M and COIN-M futures.

Market data (`md/`), on one WebSocket (USD-M: one per stream category, /public for
depth and bookTicker, /market for aggTrade, see `markets`): diff-depth books (`<sym>@depth@100ms` + REST `/depth?limit=1000`
snapshots, synced per Binance's documented procedure, `md.sync`), trades (`@trade` on
spot, `@aggTrade` on futures), best bid/offer (`@bookTicker`). Binance sends no book
checksum: integrity is the update-id chain (spot `U == previous u + 1`, futures
`pu == previous u`) plus a crossed-book check. Resync is per instrument; a reconnect
resyncs every book.
Trading (`trading/`): spot, and USD-M futures (`trading/usdm/`): signed REST orders and the
user-data stream.
Modules: `markets` (endpoints, symbols, metadata), `md/` (frames -> records, books),
`trading/` (orders, user stream). What we rely on, and as of when: PROTOCOL.md.
"""

from __future__ import annotations

from urllib.parse import quote

import logging

import orjson

from events import Provider

from ..base import UnknownSymbols, Venue
from .markets import MARKETS, Market, instrument_from_info, to_canonical, to_venue

log = logging.getLogger("venues.binance")


class BinanceVenue(Venue):
    """One Binance market (spot, US, USD-M, COIN-M): same protocol, own endpoints."""

    def __init__(self, market: Market, default_symbols: tuple[str, ...]):
        self.market = market
        self.provider = market.provider
        self.rest_url = market.rest_url
        self.ws_url = market.ws_url
        self.connections = market.connections
        self.default_symbols = default_symbols

    def md_adapter(self) -> type:
        from .md.parser import BinanceAdapter
        return BinanceAdapter

    def venue_symbol(self, text: str) -> str:
        text = text.strip()
        return to_venue(self.market, text) if "-" in text else text.upper()

    def instrument(self, venue_symbol: str, info: dict | None = None):
        return instrument_from_info(self.market, info, venue_symbol)

    def snapshot_path(self, venue_symbol: str, limit: int) -> str:
        return f"{self.market.depth_path}?symbol={venue_symbol}&limit={limit}"

    def recorded_symbol(self, payload) -> str | None:
        if not isinstance(payload, dict):
            return None
        data = payload.get("data", payload)
        s = data.get("s") if isinstance(data, dict) else None
        return s if isinstance(s, str) else None

    def fetch_metadata(self, rest, venue_symbols: list[str]) -> dict:
        """exchangeInfo for the symbols; an unknown symbol is named by asking for each alone
        (Binance refuses the whole list with HTTP 400 when one symbol does not exist)."""
        def ask(symbols):
            return rest.get(f"{self.market.exchange_info_path}?symbols="
                            f"{quote(orjson.dumps(symbols).decode())}")
        try:
            status, body = ask(venue_symbols)
            if status == 400:
                info, unknown = {}, {}
                for vs in venue_symbols:
                    st, b = ask([vs])
                    if st == 200:
                        info.update({s["symbol"]: s for s in orjson.loads(b).get("symbols", [])})
                    elif st == 400:
                        unknown[vs] = f"exchangeInfo: HTTP 400 {b[:120]!r}"
                if unknown:
                    raise UnknownSymbols(self.provider, unknown)
                return info
            if status != 200:
                log.warning("exchangeInfo answered HTTP %d: default scales", status)
                return {}
            info = {s["symbol"]: s for s in orjson.loads(body).get("symbols", [])}
        except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
            log.warning("no instrument metadata (%s: %s): default scales", type(exc).__name__, exc)
            return {}
        missing = {vs: "not listed by exchangeInfo" for vs in venue_symbols if vs not in info}
        if missing:
            raise UnknownSymbols(self.provider, missing)
        return info


class BinanceSpotVenue(BinanceVenue):
    trading = True
    trading_rest_url = "https://api.binance.com"
    trading_ws_url = "wss://ws-api.binance.com:443/ws-api/v3"   # the WebSocket API: user data
    env_prefix = "MELTICA_BINANCE"

    def trading_adapter(self, **kwargs):
        from .trading.adapter import BinanceSpotAdapter
        return BinanceSpotAdapter(**kwargs)

    def trading_registry(self, rest_url: str, *, timeout_s: float):
        from .trading.adapter import fetch_registry
        return fetch_registry(rest_url, timeout_s=timeout_s)


class BinanceUsdmVenue(BinanceVenue):
    trading = True
    trading_rest_url = "https://fapi.binance.com"
    trading_ws_url = "wss://fstream.binance.com/private"   # user data: listenKey streams
    env_prefix = "MELTICA_BINANCE_USDM"

    def trading_adapter(self, **kwargs):
        from .trading.usdm.adapter import BinanceUsdmAdapter
        return BinanceUsdmAdapter(**kwargs)

    def trading_registry(self, rest_url: str, *, timeout_s: float):
        from .trading.usdm.adapter import fetch_registry
        return fetch_registry(rest_url, timeout_s=timeout_s)


SPOT = BinanceSpotVenue(MARKETS[Provider.BINANCE_SPOT], ("BTCUSDT", "ETHUSDT"))
US = BinanceVenue(MARKETS[Provider.BINANCE_US], ("BTCUSDT", "ETHUSDT"))
USDM = BinanceUsdmVenue(MARKETS[Provider.BINANCE_USDM], ("BTCUSDT", "ETHUSDT"))
COINM = BinanceVenue(MARKETS[Provider.BINANCE_COINM], ("BTCUSD_PERP", "ETHUSD_PERP"))

__all__ = ["COINM", "MARKETS", "Market", "SPOT", "US", "USDM", "BinanceVenue", "instrument_from_info",
           "to_canonical", "to_venue"]
