"""OKX v5 public market data: endpoints, symbol forms, instrument metadata.

  REST https://openapi.okx.com  GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES&instId=
                                GET /api/v5/market/books?instId=&sz=400   (book snapshots)
  WS   wss://ws.okx.com:8443/ws/v5/public

The defaults follow OKX's docs as of 2026-12 (PROTOCOL.md, "Production Trading
Services"); both stay configurable (`--rest-url`, `--ws-url`).

Symbols: spot "BTC-USDT" <-> "BTC-USDT"; perpetual swap "UNI-USD-SWAP" <->
"UNI-USD-PERP"; dated futures "BTC-USD-220527" <-> "BTC-USD-220527".
"""

from __future__ import annotations

from events import BadInput, Instrument
from events.instruments import DEFAULT_PX_SCALE, DEFAULT_SZ_SCALE

from marketdata.decimals import decimals_of

REST_URL = "https://openapi.okx.com"
WS_URL = "wss://ws.okx.com:8443"
WS_PATH = "/ws/v5/public"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
BOOKS_PATH = "/api/v5/market/books"
BOOKS_MAX_SZ = 400          # "sz": order book depth per side, at most 400


def to_canonical(inst_id: str) -> str:
    parts = inst_id.upper().split("-")
    if len(parts) == 2:
        return f"{parts[0]}-{parts[1]}"
    if len(parts) == 3 and parts[2] == "SWAP":
        return f"{parts[0]}-{parts[1]}-PERP"
    if len(parts) == 3 and len(parts[2]) == 6 and parts[2].isdigit():
        return inst_id.upper()
    raise BadInput(f"not an OKX spot, swap or futures instId: {inst_id!r}")


def to_venue(symbol: str) -> str:
    parts = symbol.upper().split("-")
    if len(parts) == 3 and parts[2] == "PERP":
        return f"{parts[0]}-{parts[1]}-SWAP"
    to_canonical(symbol)
    return symbol.upper()


def inst_type(inst_id: str) -> str:
    parts = inst_id.split("-")
    if len(parts) == 2:
        return "SPOT"
    return "SWAP" if parts[2] == "SWAP" else "FUTURES"


def instrument_from_info(info: dict | None, inst_id: str) -> Instrument:
    """An Instrument for `inst_id`, with scales widened to tickSz / lotSz decimals."""
    px_scale, sz_scale = DEFAULT_PX_SCALE, DEFAULT_SZ_SCALE
    if info is not None:
        if info.get("tickSz"):
            px_scale = max(px_scale, decimals_of(info["tickSz"]))
        if info.get("lotSz"):
            sz_scale = max(sz_scale, decimals_of(info["lotSz"]))
    return Instrument(to_canonical(inst_id), px_scale=min(px_scale, 18), sz_scale=min(sz_scale, 18))
