"""OKX v5 public market data.

Supports: `books` (400 levels; REST snapshots `GET /api/v5/market/books` chained to the
stream by `seqId`/`prevSeqId`, per instrument; the CRC32 checksum of the top 25 levels
verified where the feed still carries a non-zero one),
`trades`, `tickers`, for spot, swaps and dated futures, over one WebSocket per process
with a "ping"/"pong" keep-alive. Modules: `markets` (endpoints, symbols, metadata),
`md/` (frames -> records, books), `checksum` (the CRC32 rule), `seq` (sequence ids).
Trading (`trading/`, spot and linear USDT swaps): signed REST orders, amend, account
state, the private WebSocket (login; `orders`, `account`, `positions`; WS order entry).
What we rely on, and as of when: PROTOCOL.md.
"""

from __future__ import annotations

import logging

import orjson

from events import Provider

from ..base import UnknownSymbols, Venue
from .checksum import book_checksum, check_text, signed_crc32
from .markets import (BOOKS_MAX_SZ, BOOKS_PATH, INSTRUMENTS_PATH, REST_URL, WS_URL,
                      instrument_from_info, inst_type, to_canonical, to_venue)

log = logging.getLogger("venues.okx")
UNKNOWN_INSTRUMENT_CODES = {"51001"}   # "Instrument ID does not exist"


class OkxVenue(Venue):
    provider = Provider.OKX
    rest_url = REST_URL
    ws_url = WS_URL
    default_symbols = ("BTC-USDT", "ETH-USDT")
    ping_text = "ping"

    trading = True
    trading_rest_url = REST_URL
    trading_ws_url = WS_URL + "/ws/v5/private"     # the private WebSocket: login, orders, account
    env_prefix = "MELTICA_OKX"
    needs_passphrase = True                         # <prefix>_API_PASSPHRASE: OKX keys have one

    def md_adapter(self) -> type:
        from .md.parser import OkxAdapter
        return OkxAdapter

    def venue_symbol(self, text: str) -> str:
        return to_venue(text.strip())

    def instrument(self, venue_symbol: str, info: dict | None = None):
        return instrument_from_info(info, venue_symbol)

    def snapshot_path(self, venue_symbol: str, limit: int) -> str:
        """GET /api/v5/market/books?instId=..&sz=N, N at most 400 (OKX's limit)."""
        return f"{BOOKS_PATH}?instId={venue_symbol}&sz={max(1, min(limit, BOOKS_MAX_SZ))}"

    def recorded_symbol(self, payload) -> str | None:
        if not isinstance(payload, dict):
            return None
        arg = payload.get("arg")
        return arg.get("instId") if isinstance(arg, dict) and "data" in payload else None

    def trading_adapter(self, **kwargs):
        from .trading.adapter import OkxAdapter
        return OkxAdapter(**kwargs)

    def trading_registry(self, rest_url: str, *, timeout_s: float):
        from .trading.adapter import fetch_registry
        return fetch_registry(rest_url, timeout_s=timeout_s)

    def fetch_metadata(self, rest, venue_symbols: list[str]) -> dict:
        """GET /api/v5/public/instruments per instId; an instId OKX does not list is unknown."""
        info, unknown = {}, {}
        for vs in venue_symbols:
            try:
                status, body = rest.get(f"{INSTRUMENTS_PATH}?instType={inst_type(vs)}&instId={vs}")
                doc = orjson.loads(body) if body else {}
            except (OSError, orjson.JSONDecodeError) as exc:
                log.warning("no instrument metadata for %s (%s: %s): default scales", vs,
                            type(exc).__name__, exc)
                continue
            data = doc.get("data") if isinstance(doc, dict) else None
            code = str(doc.get("code", "")) if isinstance(doc, dict) else ""
            if status == 200 and data:
                info[vs] = data[0]
            elif code in UNKNOWN_INSTRUMENT_CODES or (status == 200 and data == []):
                unknown[vs] = f"instruments: code {code or '0'} {str(doc.get('msg', ''))[:80]!r}"
            else:
                log.warning("instruments answered HTTP %d for %s: default scales", status, vs)
        if unknown:
            raise UnknownSymbols(self.provider, unknown)
        return info


OKX = OkxVenue()

__all__ = ["OKX", "OkxVenue", "book_checksum", "check_text", "signed_crc32", "instrument_from_info",
           "inst_type", "to_canonical", "to_venue"]
