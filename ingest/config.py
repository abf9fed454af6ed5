"""Settings of one ingest process (from the command line; see `python -m ingest --help`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from events import BOOK_DEPTH, Provider


@dataclass
class Config:
    provider: Provider
    symbols: list[str] = field(default_factory=list)   # venue symbols
    rest_url: str | None = None                       # None: the real venue
    ws_url: str | None = None
    depth: int = BOOK_DEPTH
    ring_capacity: int = 16384
    telemetry: str | None = None
    stale_after_s: float = 60.0          # 0 disables staleness resyncs
    refresh_min_s: float = 120.0         # periodic refresh, jittered in [min, max]
    refresh_max_s: float = 300.0         # refresh_max_s 0 disables it
    snapshot_timeout_s: float = 10.0
    snapshot_limit: int = 1000
    watchdog_s: float = 30.0             # a connection with no data frame at all (pongs do not count)
    ping_interval_s: float = 15.0
    backoff_base_s: float = 0.25
    backoff_max_s: float = 30.0
    rest_timeout_s: float = 5.0
    metadata: bool = True                # fetch exchangeInfo / instruments for scales
    status_interval_s: float = 10.0
    silence: dict | None = None          # kind -> seconds: liveness by data (None: the venue's)

    def check(self) -> None:
        if not 1 <= self.depth <= BOOK_DEPTH:
            raise ValueError(f"depth must be in 1..{BOOK_DEPTH}: depth={self.depth}")
        c = self.ring_capacity
        if c < 2 or c & (c - 1):
            raise ValueError(f"ring capacity must be a power of two >= 2: ring_capacity={c}")
        if self.refresh_max_s and not 0 < self.refresh_min_s <= self.refresh_max_s:
            raise ValueError(f"refresh interval must satisfy 0 < min <= max: "
                             f"min={self.refresh_min_s} max={self.refresh_max_s}")
        if not self.symbols:
            raise ValueError("no symbols to subscribe")
        if self.watchdog_s <= 0 or self.ping_interval_s <= 0:
            raise ValueError("watchdog and ping interval must be positive")
        for kind, seconds in (self.silence or {}).items():
            if kind not in ("book", "trade", "ticker") or not seconds >= 0:
                raise ValueError(f"silence must map book/trade/ticker to seconds >= 0: {kind}={seconds!r}")
