"""Kraken spot WS v1: endpoints and symbol forms.

  WS   wss://ws.kraken.com        {"event":"subscribe","pair":["XBT/USD"],
                                   "subscription":{"name":"book","depth":1000}}
  REST https://api.kraken.com     (not used: books come whole over the WebSocket)

Symbols: Kraken's WS pair "XBT/USD" <-> canonical "BTC-USD"; asset aliases below
(XBT is BTC, XDG is DOGE). Kraken spot has no perpetuals or dated futures here.
"""

from __future__ import annotations

from events import BadInput, Instrument

REST_URL = "https://api.kraken.com"
WS_URL = "wss://ws.kraken.com"
WS_PATH = ""
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_BOOK_DEPTH = 1000
_TO_CANONICAL = {"XBT": "BTC", "XDG": "DOGE"}
_TO_KRAKEN = {v: k for k, v in _TO_CANONICAL.items()}


def to_canonical(pair: str) -> str:
    base, slash, quote = pair.upper().partition("/")
    if not slash or not base or not quote:
        raise BadInput(f"not a Kraken WS pair (BASE/QUOTE): {pair!r}")
    return f"{_TO_CANONICAL.get(base, base)}-{_TO_CANONICAL.get(quote, quote)}"


def to_venue(symbol: str) -> str:
    """'BTC-USD' or 'XBT/USD' -> 'XBT/USD'."""
    text = symbol.upper()
    if "/" in text:
        to_canonical(text)
        return text
    parts = text.split("-")
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"{symbol!r} is not a kraken spot instrument")
    return f"{_TO_KRAKEN.get(parts[0], parts[0])}/{_TO_KRAKEN.get(parts[1], parts[1])}"


def instrument_from_info(info: dict | None, pair: str) -> Instrument:
    """An Instrument for `pair` (scales 8 / 8 unless AssetPairs says more decimals)."""
    px_scale, sz_scale = 8, 8
    if info is not None:
        px_scale = max(px_scale, int(info.get("pair_decimals", 0)))
        sz_scale = max(sz_scale, int(info.get("lot_decimals", 0)))
    return Instrument(to_canonical(pair), px_scale=min(px_scale, 18), sz_scale=min(sz_scale, 18))
