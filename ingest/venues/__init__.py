"""Venue adapters, one package per venue with the same inner layout.

Each adapter turns the venue's frames into canonical records through a `Publisher`,
keeps one book sync object per instrument, and talks to the outside world only
through an `io` object with two methods, so the live process and the replay drive
the very same code:

    io.request_snapshot(venue_symbol)   # Binance: fetch a REST depth snapshot
    io.send(text)                       # a WebSocket text frame (OKX resubscribe)

Adapter surface (both venues):
    on_frame(frame, recv_ns)            one WebSocket frame, as received
    on_snapshot(venue_symbol, payload, recv_ns)   a REST depth response (Binance)
    on_connected(first)                 after every (re)connect: resync every book
    subscribe_frames() / ws_path()      what to open and send
    check_timers(now_ns)                staleness, periodic refresh, snapshot timeouts
    books()                             final state per canonical symbol (replay)
"""

from __future__ import annotations

from events import Provider

BINANCE_PROVIDERS = (Provider.BINANCE_SPOT, Provider.BINANCE_USDM, Provider.BINANCE_COINM,
                     Provider.BINANCE_US)
SUPPORTED = ("binance-spot", "binance-usdm", "binance-coinm", "binance-us", "okx", "kraken")


def adapter_class(provider: Provider):
    """The adapter class for `provider` (imported lazily: one venue per process)."""
    if provider in BINANCE_PROVIDERS:
        from .binance import BinanceAdapter
        return BinanceAdapter
    if provider is Provider.OKX:
        from .okx import OkxAdapter
        return OkxAdapter
    if provider is Provider.KRAKEN:
        from .kraken import KrakenAdapter
        return KrakenAdapter
    raise ValueError(f"no ingest adapter for provider {provider.slug!r}; supported: {SUPPORTED}")


def venue_symbol_of(provider: Provider, text: str) -> str:
    """The venue symbol for a command-line symbol: a venue symbol or a canonical one.

    Binance: "ETHUSDT" or "ETH-USDT" -> "ETHUSDT" (spot), "BTC-USDT-PERP" -> "BTCUSDT"
    (USD-M). OKX: "BTC-USDT" -> "BTC-USDT", "UNI-USD-PERP" -> "UNI-USD-SWAP".
    Kraken: "BTC-USD" or "XBT/USD" -> "XBT/USD".
    """
    text = text.strip()
    if provider is Provider.OKX:
        from .okx.markets import to_venue
        return to_venue(text)
    if provider is Provider.KRAKEN:
        from .kraken.markets import to_venue
        return to_venue(text)
    from .binance.markets import MARKETS, to_venue
    if "-" in text:
        return to_venue(MARKETS[provider], text)
    return text.upper()


def make_instrument(provider: Provider, venue_symbol: str, info: dict | None = None):
    """The canonical Instrument of `venue_symbol`; `info`: the venue's metadata entry."""
    if provider is Provider.OKX:
        from .okx.markets import instrument_from_info
        return instrument_from_info(info, venue_symbol)
    if provider is Provider.KRAKEN:
        from .kraken.markets import instrument_from_info
        return instrument_from_info(info, venue_symbol)
    from .binance.markets import MARKETS, instrument_from_info
    return instrument_from_info(MARKETS[provider], info, venue_symbol)
