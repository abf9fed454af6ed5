"""OKX v5 public market data.

Supports: `books` (400-level snapshot on subscribe, then updates; CRC32 checksum of
the top 25 levels verified on every message, `seqId`/`prevSeqId` continuity where
the feed carries it), `trades`, `tickers`, for spot, swaps and dated futures, over
one WebSocket per process with a "ping"/"pong" keep-alive. Resync of one instrument
= unsubscribe + subscribe `books` for its instId (OKX then sends a new snapshot);
a reconnect resubscribes everything. There is no REST snapshot.
Modules: `markets` (endpoints, symbols), `parser` (frames -> records), `sync`
(books), `checksum` (the CRC32 rule).
"""

from .checksum import book_checksum, check_text, signed_crc32
from .markets import instrument_from_info, inst_type, to_canonical, to_venue
from .parser import OkxAdapter
from .sync import BooksSync

__all__ = ["OkxAdapter", "BooksSync", "book_checksum", "check_text", "signed_crc32",
           "instrument_from_info", "inst_type", "to_canonical", "to_venue"]
