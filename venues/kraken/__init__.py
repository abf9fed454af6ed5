"""Kraken spot market data, WebSocket API v1.

Supports: `book` (snapshot of the subscribed depth on subscribe, then updates;
CRC32 of the top 10 levels verified on every update, the book cut to the
subscribed depth as Kraken requires), `trade`, `spread` (best bid / ask), over one
WebSocket with Kraken's {"event":"ping"} keep-alive (it also sends heartbeats).
Resync of one pair = unsubscribe + subscribe `book` (a new snapshot); a reconnect
resubscribes everything. v1 has no sequence numbers: integrity is the checksum.
Modules: `markets` (endpoints, symbols), `md/` (frames -> records, books),
`checksum` (the CRC32 rule). What we rely on, and as of when: PROTOCOL.md.
"""

from __future__ import annotations

from events import Provider

from ..base import Venue
from .checksum import book_checksum, check_text
from .markets import REST_URL, WS_URL, instrument_from_info, to_canonical, to_venue


class KrakenVenue(Venue):
    provider = Provider.KRAKEN
    rest_url = REST_URL
    ws_url = WS_URL
    default_symbols = ("XBT/USD", "ETH/USD")
    ping_text = '{"event":"ping"}'

    def md_adapter(self) -> type:
        from .md.parser import KrakenAdapter
        return KrakenAdapter

    def venue_symbol(self, text: str) -> str:
        return to_venue(text.strip())

    def instrument(self, venue_symbol: str, info: dict | None = None):
        return instrument_from_info(info, venue_symbol)

    def recorded_symbol(self, payload) -> str | None:
        ok = isinstance(payload, list) and len(payload) >= 4 and isinstance(payload[-1], str)
        return payload[-1] if ok else None

    # fetch_metadata: none (scales 8 / 8 cover Kraken's pair_decimals / lot_decimals)


KRAKEN = KrakenVenue()

__all__ = ["KRAKEN", "KrakenVenue", "book_checksum", "check_text", "instrument_from_info", "to_canonical",
           "to_venue"]
