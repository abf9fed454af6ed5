"""Venues: one package per venue, found by provider name through this registry.

    from venues import get
    v = get("okx")                        # or a Provider
    v.md_adapter(), v.rest_url, v.ws_url, v.venue_symbol("BTC-USDT"), ...

Each package holds everything that is one venue's: endpoints (per category where the
venue splits them), symbol forms, instrument metadata, pings, the market-data adapter
and its book sync (`md/`), the trading adapter and its user stream (`trading/`, where we
trade), and `PROTOCOL.md`: what the venue documents that we rely on, as of which date.
Packages are imported lazily: one venue per process. A new venue is a new folder and
one line in REGISTRY. The surface every `Venue` offers is `venues.base.Venue`.

Market-data adapter surface (the live process, the replay and the probe drive the
very same code; the adapter talks to the outside world only through an `io` object):

    io.request_snapshot(venue_symbol)   # fetch a REST depth snapshot
    io.send(text)                       # a WebSocket text frame (resubscribe)
    io.reconnect(reason)                # a new connection for the one this frame came on

    on_frame(frame, recv_ns)            one WebSocket frame, as received (from any of the
                                        venue's connections: the adapter does not care which)
    on_snapshot(venue_symbol, payload, recv_ns)   a REST depth response
    on_connected(first)                 after every (re)connect of the connection carrying
                                        books: resync every book
    subscribe_frames() / ws_path()      what to open and send; a venue that declares several
                                        `connections` gets `(kinds)`: the stream kinds of one
    check_timers(now_ns)                staleness, periodic refresh, snapshot timeouts
    books()                             final state per canonical symbol (replay, probe)
"""

from __future__ import annotations

import importlib

from events import Provider

from .base import KINDS, Connection, UnknownSymbols, Venue

# provider slug -> "module:attribute" of its Venue object
REGISTRY = {
    "binance-spot": "venues.binance:SPOT",
    "binance-us": "venues.binance:US",
    "binance-usdm": "venues.binance:USDM",
    "binance-coinm": "venues.binance:COINM",
    "okx": "venues.okx:OKX",
    "kraken": "venues.kraken:KRAKEN",
}
SUPPORTED = tuple(REGISTRY)


def get(name: str | Provider) -> Venue:
    """The Venue of a provider slug (or Provider); ValueError names the supported ones."""
    slug = name.slug if isinstance(name, Provider) else str(name)
    try:
        module, attr = REGISTRY[slug].split(":")
    except KeyError:
        raise ValueError(f"no venue {slug!r}; supported: {', '.join(SUPPORTED)}") from None
    return getattr(importlib.import_module(module), attr)


def tradable() -> tuple[str, ...]:
    """The slugs of the venues we can trade on (imports every venue package)."""
    return tuple(s for s in SUPPORTED if get(s).trading)


__all__ = ["KINDS", "REGISTRY", "SUPPORTED", "Connection", "UnknownSymbols", "Venue", "get", "tradable"]
