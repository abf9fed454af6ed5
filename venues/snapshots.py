"""REST depth snapshots of a market-data adapter whose books start from one (Binance, OKX).

One `SnapshotRequests` per adapter keeps which instruments have a request open and which
wait for theirs (the backoff after failed syncs), and runs the book timers: staleness,
the periodic refresh and snapshot timeouts. The venue's own sync (sequence rules, how a
snapshot meets the stream) stays in its package; this is the scheduling both share:

    restart(sync, reason, detail)   the book of `sync` was dropped: resync from a snapshot
                                    (now, or after the stream's backoff)
    request(venue_symbol)           ask for one now
    answered(venue_symbol)          its answer (or error) came
    synced(sync)                    the book is in sync again: report it, arm the refresh
    check(now, syncs)               the timers; returns the syncs that are out of sync with
                                    no request open (a venue may have checks of its own)

`sync` is the venue's sync object: `.stream` (ingest.stream.Stream), `.synced`, `.lose(reason,
detail)`, `.start_refresh()`. `timers` is ingest.stream.Timers (None: no timers, replays).
"""

from __future__ import annotations


class SnapshotRequests:
    def __init__(self, io, report, timers, clock, *, stale_what: str, before_request=None):
        self.io = io
        self.report = report
        self.timers = timers
        self.clock = clock
        self.stale_what = stale_what          # what went missing, in the "stale" detail
        self.before_request = before_request  # called with the venue symbol before each request
        self.deferred: dict[str, int] = {}    # venue symbol -> monotonic ns a delayed request is due
        self.requested: dict[str, int] = {}   # venue symbol -> monotonic ns of the open request

    def request(self, venue_symbol: str) -> None:
        self.deferred.pop(venue_symbol, None)
        self.requested[venue_symbol] = self.clock()
        if self.before_request is not None:
            self.before_request(venue_symbol)
        self.io.request_snapshot(venue_symbol)

    def answered(self, venue_symbol: str) -> None:
        self.requested.pop(venue_symbol, None)

    def restart(self, sync, reason: str, detail: str) -> None:
        s = sync.stream
        self.report.resync(s.symbol, reason, detail)
        now = self.clock()
        s.resync_began(reason, now)
        delay = self.timers.backoff_ns(s) if self.timers is not None else 0
        if delay:
            self.deferred[s.venue_symbol] = now + delay
        else:
            self.request(s.venue_symbol)

    def synced(self, sync) -> None:
        s = sync.stream
        now = self.clock()
        took, reason = s.resync_ended(now)
        if reason:
            self.report.synced(s.symbol, took, reason)
        if self.timers is not None:
            self.timers.arm_refresh(s, now)

    def check(self, now: int, syncs: dict) -> list:
        """Delayed requests that are due, staleness, the periodic refresh and snapshot
        timeouts; the out-of-sync syncs with no request open are returned."""
        timers = self.timers
        if timers is None:
            return []
        for vs, due in list(self.deferred.items()):
            if now >= due:
                self.request(vs)
        idle = []
        for vs, sync in syncs.items():
            s = sync.stream
            if sync.synced:
                if timers.stale(s, now):
                    sync.lose("stale", f"no {self.stale_what} for {(now - s.last_book_ns) / 1e9:.1f}s")
                elif timers.refresh_due(s, now):
                    self.report.resync(s.symbol, "refresh", "periodic")
                    timers.arm_refresh(s, now)
                    sync.start_refresh()
                    self.request(vs)
            elif vs in self.requested:
                if now - self.requested[vs] > timers.snapshot_timeout_ns:
                    self.restart(sync, "snapshot_timeout", "no snapshot answer")
            else:
                idle.append(sync)
        return idle
