"""Kraken spot market data, WebSocket API v1.

Supports: `book` (snapshot of the subscribed depth on subscribe, then updates;
CRC32 of the top 10 levels verified on every update, the book cut to the
subscribed depth as Kraken requires), `trade`, `spread` (best bid / ask), over one
WebSocket with Kraken's {"event":"ping"} keep-alive (it also sends heartbeats).
Resync of one pair = unsubscribe + subscribe `book` (a new snapshot); a reconnect
resubscribes everything. v1 has no sequence numbers: integrity is the checksum.
Replayed against the recorded book-1000 capture (tests/ingest); the live path has
no simulator to run against (the simulator speaks Binance and OKX).
Modules: `markets` (endpoints, symbols), `parser` (frames -> records), `sync`
(books), `checksum` (the CRC32 rule).
"""

from .checksum import book_checksum, check_text
from .markets import instrument_from_info, to_canonical, to_venue
from .parser import KrakenAdapter
from .sync import KrakenBookSync

__all__ = ["KrakenAdapter", "KrakenBookSync", "book_checksum", "check_text", "instrument_from_info",
           "to_canonical", "to_venue"]
