"""What a venue package provides: one `Venue` per provider it serves.

Programs never branch on a provider: `ingest`, `ingest.replay`, `ingest.probe` and
`execution` look a venue up in the registry (`venues.get(name)`) and use this surface
only. Everything one venue's (endpoints, symbol forms, metadata, pings, the market-data
adapter and its book sync, the trading adapter and its user stream, a dated protocol
note) lives in that venue's package.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import BadInput, Instrument, Provider

KINDS = ("book", "trade", "ticker")      # the stream kinds ingest carries


@dataclass(frozen=True)
class Connection:
    """One market-data WebSocket of a venue: its category `path` (appended to the WS base
    URL, "" for none) and the stream `kinds` it carries. Each kind is on exactly one
    connection; ingest opens one WebSocket per Connection and gives the adapter every
    frame alike (the adapter never knows which connection a frame came on)."""

    name: str
    path: str = ""
    kinds: tuple[str, ...] = KINDS


class UnknownSymbols(BadInput, ValueError):
    """The venue does not list some of the requested symbols: {venue symbol: reason}."""

    def __init__(self, provider: Provider, unknown: dict[str, str]):
        self.unknown = dict(unknown)
        super().__init__(f"{provider.slug} does not list {sorted(unknown)}: "
                         + "; ".join(f"{s}: {r}" for s, r in sorted(unknown.items())))


class Venue:
    """One provider's market-data (and, where supported, trading) surface.

    Subclasses set the class attributes and implement the methods; the defaults here
    are the answers of a venue that has no such feature.
    """

    provider: Provider
    rest_url: str                      # the venue's documented production endpoints
    ws_url: str
    default_symbols: tuple[str, ...] = ()
    ping_text: str | None = None       # an application-level keep-alive frame; None: WS pings
    # The market-data WebSockets: one by default; a venue that splits its streams by
    # category (Binance USD-M: /public, /market) declares one Connection per category.
    connections: tuple[Connection, ...] = (Connection("ws"),)
    # Liveness by data (ingest.liveness): reconnect the connection carrying a kind when
    # no data of that kind (summed over the process's instruments) arrived for this many
    # seconds; 0 disables it for that kind. Books and tickers of liquid instruments update
    # many times a second; a quiet instrument's trades may be silent for minutes.
    silence_s: dict = {"book": 3.0, "ticker": 3.0, "trade": 120.0}

    # -- market data -----------------------------------------------------------------

    def md_adapter(self) -> type:
        """The ingest adapter class (see `venues.adapter` for its surface)."""
        raise NotImplementedError

    def venue_symbol(self, text: str) -> str:
        """The venue symbol for a command-line symbol: a venue symbol or a canonical one."""
        raise NotImplementedError

    def instrument(self, venue_symbol: str, info: dict | None = None) -> Instrument:
        """The canonical Instrument of `venue_symbol`; `info`: the venue's metadata entry."""
        raise NotImplementedError

    def fetch_metadata(self, rest, venue_symbols: list[str]) -> dict:
        """Metadata per venue symbol from the venue's REST API ({}: default scales).

        Raises UnknownSymbols naming the symbols the venue says do not exist (the caller
        drops those alone); any other failure gives {} for the symbols concerned.
        """
        return {}

    def snapshot_path(self, venue_symbol: str, limit: int) -> str | None:
        """The REST path of a depth snapshot, or None when books come whole over the WS."""
        return None

    def recorded_symbol(self, payload) -> str | None:
        """The venue symbol a recorded WebSocket payload is about (replay), if any."""
        return None

    # -- trading ---------------------------------------------------------------------

    trading: bool = False              # True where the package has a trading adapter
    trading_rest_url: str = ""         # order entry and the user stream (documented defaults)
    trading_ws_url: str = ""
    env_prefix: str = ""               # <prefix>_API_KEY / _API_SECRET / _REST_URL / _WS_URL

    def trading_adapter(self, **kwargs):
        raise NotImplementedError(f"{self.provider.slug}: no trading adapter")

    def trading_registry(self, rest_url: str, *, timeout_s: float):
        """The tradable instruments (an events.Registry) from the venue's metadata."""
        raise NotImplementedError(f"{self.provider.slug}: no trading adapter")

    def __repr__(self) -> str:
        return f"<Venue {self.provider.slug}>"
