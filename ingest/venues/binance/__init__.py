"""Binance spot, Binance.US, USD-M and COIN-M futures market data.

Supports: diff-depth books (`<sym>@depth@100ms` + REST `/depth?limit=1000` snapshots,
synced per Binance's documented procedure, `ingest.venues.binance.sync`), trades
(`@trade` on spot, `@aggTrade` on futures), best bid/offer (`@bookTicker`), over one
combined-stream WebSocket per process. Binance sends no book checksum: integrity is
the update-id chain (spot `U == previous u + 1`, futures `pu == previous u`) plus a
crossed-book check. Resync is per instrument; a reconnect resyncs every book.
Modules: `markets` (endpoints, symbols), `parser` (frames -> records), `sync` (books).
"""

from .markets import MARKETS, Market, instrument_from_info, to_canonical, to_venue
from .parser import BinanceAdapter
from .sync import DepthSync

__all__ = ["BinanceAdapter", "DepthSync", "MARKETS", "Market", "instrument_from_info",
           "to_canonical", "to_venue"]
