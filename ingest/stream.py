"""Per-instrument state every venue adapter shares: ids, scales, converters, clocks.

One `Stream` per subscribed instrument of one ingest process; the adapter's sync
object for that instrument holds the book. Owned by the ingest loop thread.
"""

from __future__ import annotations

import random

from events import Instrument

from marketdata.decimals import Decimals

# Resync reasons that retry the resync under way (its cause stays the event it is timed
# from); every other reason is a new cause, and the recovery is timed from it.
RETRIES = frozenset({"snapshot_behind", "snapshot_timeout", "snapshot_failed"})


class Stream:
    """One instrument on one venue connection."""

    __slots__ = ("inst", "iid", "symbol", "venue_symbol", "px_scale", "sz_scale", "px", "sz",
                 "depth", "messages", "reported_messages", "last_book_ns", "refresh_due_ns",
                 "resync_started_ns", "resync_reason", "resyncs_in_row")

    def __init__(self, inst: Instrument, venue_symbol: str, depth: int):
        self.inst = inst
        self.iid = inst.id
        self.symbol = inst.symbol
        self.venue_symbol = venue_symbol
        self.px_scale = inst.px_scale
        self.sz_scale = inst.sz_scale
        self.px = Decimals(inst.px_scale)    # price string -> mantissa
        self.sz = Decimals(inst.sz_scale)
        self.depth = depth
        self.messages = 0            # frames for this instrument (md.messages telemetry)
        self.reported_messages = 0
        self.last_book_ns = 0        # monotonic ns of the last book message seen (staleness)
        self.refresh_due_ns = 0      # monotonic ns of the next periodic refresh; 0: not armed
        self.resync_started_ns = 0   # monotonic ns when the current resync began; 0: none
        self.resync_reason = ""
        self.resyncs_in_row = 0      # resyncs without a success in between (backoff)

    def resync_began(self, reason: str, now_ns: int) -> None:
        """A resync of this instrument starts (or another one while it still runs): a new
        cause restarts the recovery clock, a retry (RETRIES) keeps it."""
        if not self.resync_started_ns or reason not in RETRIES:
            self.resync_started_ns = now_ns
        self.resync_reason = reason
        self.resyncs_in_row += 1

    def resync_ended(self, now_ns: int) -> tuple[int, str]:
        """The book is synced again: return (ns the resync took, its reason; "" if none)."""
        took, reason = now_ns - self.resync_started_ns, self.resync_reason
        self.resync_started_ns = 0
        self.resync_reason = ""
        self.resyncs_in_row = 0
        self.last_book_ns = now_ns
        return took, reason

    def __repr__(self) -> str:
        return f"Stream({self.symbol!r}, venue={self.venue_symbol!r})"


class Timers:
    """Time-driven resync policy (LM-07): staleness and the jittered periodic refresh.

    Times are monotonic nanoseconds from the caller's clock (inject one in tests).
    `stale_ns` 0 disables staleness; `refresh_ns` (lo, hi) None disables refreshes.
    """

    def __init__(self, stale_ns: int = 60_000_000_000, refresh_ns: tuple[int, int] | None =
                 (120_000_000_000, 300_000_000_000), snapshot_timeout_ns: int = 10_000_000_000,
                 rng: random.Random | None = None):
        if refresh_ns is not None and not 0 < refresh_ns[0] <= refresh_ns[1]:
            raise ValueError(f"refresh interval must be 0 < lo <= hi: refresh_ns={refresh_ns}")
        self.stale_ns = stale_ns
        self.refresh_ns = refresh_ns
        self.snapshot_timeout_ns = snapshot_timeout_ns
        self.rng = rng or random.Random()

    def arm_refresh(self, stream: Stream, now_ns: int) -> None:
        """Schedule the next periodic refresh of `stream`, jittered uniformly in [lo, hi]."""
        if self.refresh_ns is None:
            stream.refresh_due_ns = 0
            return
        lo, hi = self.refresh_ns
        stream.refresh_due_ns = now_ns + self.rng.randint(lo, hi)

    def stale(self, stream: Stream, now_ns: int) -> bool:
        return bool(self.stale_ns) and stream.last_book_ns > 0 and now_ns - stream.last_book_ns > self.stale_ns

    def refresh_due(self, stream: Stream, now_ns: int) -> bool:
        return stream.refresh_due_ns > 0 and now_ns >= stream.refresh_due_ns

    def backoff_ns(self, stream: Stream) -> int:
        """Delay before resync number `resyncs_in_row` of an instrument that keeps failing."""
        n = stream.resyncs_in_row
        return 0 if n <= 2 else min(30_000_000_000, 250_000_000 << min(n - 3, 7))
