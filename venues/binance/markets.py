"""Binance markets: endpoints, symbol forms and instrument metadata, per provider.

  binance-spot   REST https://api.binance.com      /api/v3   WS wss://stream.binance.com:9443
  binance-us     REST https://api.binance.us       /api/v3   WS wss://stream.binance.us:9443
  binance-usdm   REST https://fapi.binance.com     /fapi/v1  WS wss://fstream.binance.com
  binance-coinm  REST https://dapi.binance.com     /dapi/v1  WS wss://dstream.binance.com

USD-M market streams are split by category since 2026-04-23 (PROTOCOL.md): depth and
bookTicker on `<ws>/public`, aggTrade (and markPrice, tickers) on `<ws>/market`, user
data on `<ws>/private`; a URL without a category gets /public streams only. Spot, US
and COIN-M keep one connection.

Symbols: spot "ETHUSDT" <-> "ETH-USDT"; USD-M perpetual "BTCUSDT" <-> "BTC-USDT-PERP",
USD-M dated "BTCUSDT_210924" <-> "BTC-USDT-210924"; COIN-M "BTCUSD_PERP" <->
"BTC-USD-PERP", "ETHUSD_210924" <-> "ETH-USD-210924". Without exchangeInfo the
base/quote split of a spot or USD-M symbol uses the known quote assets below.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import BadInput, Instrument, Provider
from events.instruments import DEFAULT_PX_SCALE, DEFAULT_SZ_SCALE

from marketdata.decimals import decimals_of

from ..base import Connection

ONE = (Connection("ws"),)
USDM_SPLIT = (Connection("public", "/public", ("book", "ticker")),
              Connection("market", "/market", ("trade",)))


@dataclass(frozen=True)
class Market:
    provider: Provider
    rest_url: str
    ws_url: str
    rest_prefix: str
    futures: bool      # diffs chained by `pu` (USD-M, COIN-M)
    coin_margined: bool = False
    connections: tuple = ONE   # market-data WebSockets by stream category

    @property
    def depth_path(self) -> str:
        return f"{self.rest_prefix}/depth"

    @property
    def exchange_info_path(self) -> str:
        return f"{self.rest_prefix}/exchangeInfo"


MARKETS = {
    Provider.BINANCE_SPOT: Market(Provider.BINANCE_SPOT, "https://api.binance.com",
                                  "wss://stream.binance.com:9443", "/api/v3", False),
    Provider.BINANCE_US: Market(Provider.BINANCE_US, "https://api.binance.us",
                                "wss://stream.binance.us:9443", "/api/v3", False),
    Provider.BINANCE_USDM: Market(Provider.BINANCE_USDM, "https://fapi.binance.com",
                                  "wss://fstream.binance.com", "/fapi/v1", True,
                                  connections=USDM_SPLIT),
    Provider.BINANCE_COINM: Market(Provider.BINANCE_COINM, "https://dapi.binance.com",
                                   "wss://dstream.binance.com", "/dapi/v1", True, True),
}

# Longest first, so "FDUSD" wins over "USD" and "USDT" over "USD".
QUOTES = tuple(sorted((
    "USDT", "BUSD", "USDC", "FDUSD", "TUSD", "USDP", "DAI", "USDS", "PAX", "UST", "BTC", "ETH",
    "BNB", "TRX", "XRP", "DOGE", "DOT", "EUR", "GBP", "TRY", "BRL", "AUD", "RUB", "UAH", "BIDR",
    "IDRT", "NGN", "ZAR", "PLN", "RON", "ARS", "JPY", "MXN", "COP", "CZK", "USD", "VAI", "AEUR",
    "EURI", "BKRW", "GYEN",
), key=len, reverse=True))


def split_pair(pair: str) -> tuple[str, str]:
    """'ETHUSDT' -> ('ETH', 'USDT') by the known quote assets; BadInput if none fits."""
    for q in QUOTES:
        if pair.endswith(q) and len(pair) > len(q):
            return pair[: -len(q)], q
    raise BadInput(f"cannot split Binance symbol into base and quote: {pair!r}")


def to_canonical(market: Market, venue_symbol: str, base: str | None = None,
                 quote: str | None = None) -> str:
    """The canonical symbol of a Binance venue symbol (base/quote from exchangeInfo if known)."""
    s = venue_symbol.upper()
    pair, _, suffix = s.partition("_")
    if base is None or quote is None:
        base, quote = split_pair(pair)
    if not market.futures:
        if suffix:
            raise BadInput(f"not a spot symbol: {venue_symbol!r}")
        return f"{base}-{quote}"
    if not suffix or suffix == "PERP":
        if market.coin_margined and not suffix:
            raise BadInput(f"COIN-M symbols end in _PERP or _YYMMDD: {venue_symbol!r}")
        return f"{base}-{quote}-PERP"
    if len(suffix) == 6 and suffix.isdigit():
        return f"{base}-{quote}-{suffix}"
    raise BadInput(f"unknown Binance contract suffix: {venue_symbol!r}")


def to_venue(market: Market, symbol: str) -> str:
    """The Binance venue symbol of canonical `symbol` ('BTC-USDT-PERP' -> 'BTCUSDT' on USD-M)."""
    parts = symbol.upper().split("-")
    if len(parts) == 2 and not market.futures:
        return parts[0] + parts[1]
    if len(parts) == 3 and market.futures:
        if parts[2] == "PERP":
            return parts[0] + parts[1] + ("_PERP" if market.coin_margined else "")
        return f"{parts[0]}{parts[1]}_{parts[2]}"
    raise BadInput(f"{symbol!r} is not a {market.provider.slug} instrument")


def instrument_from_info(market: Market, info: dict | None, venue_symbol: str) -> Instrument:
    """An Instrument for `venue_symbol`, with scales widened to exchangeInfo's decimals."""
    px_scale, sz_scale, base, quote = DEFAULT_PX_SCALE, DEFAULT_SZ_SCALE, None, None
    if info is not None:
        base, quote = info.get("baseAsset"), info.get("quoteAsset")
        for f in info.get("filters", ()):
            if f.get("filterType") == "PRICE_FILTER" and f.get("tickSize"):
                px_scale = max(px_scale, decimals_of(f["tickSize"]))
            elif f.get("filterType") == "LOT_SIZE" and f.get("stepSize"):
                sz_scale = max(sz_scale, decimals_of(f["stepSize"]))
    symbol = to_canonical(market, venue_symbol, base, quote)
    return Instrument(symbol, px_scale=min(px_scale, 18), sz_scale=min(sz_scale, 18))
