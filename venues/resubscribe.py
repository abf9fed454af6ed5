"""What the adapters of venues that resync a book by subscribing it again share (Kraken).

Their book channel sends a snapshot on subscribe, so a resync of one instrument is an
unsubscribe + subscribe of its book channel (`_resubscribe`, with the venue's frames
from `resubscribe_frames`), and the book's sync object calls back here: `publish`
after each applied message, `synced` when a snapshot took, `restart` when the book was
dropped. `check_timers` runs staleness, the periodic refresh and the snapshot timeout.
The subclass has `syncs` (venue symbol -> sync with `.stream`, `.book`, `.seq`,
`.synced`, `.lose()`), `resubscribed` (venue symbol -> monotonic ns of the last
resubscribe), `pub`, `report`, `io`, `timers` and `clock`.
"""

from __future__ import annotations

from marketdata.book import book_view


class ResubscribingAdapter:
    BOOK_CHANNEL = "book"      # for messages

    def resubscribe_frames(self, venue_symbol: str) -> list[str]:
        """The text frames that unsubscribe and subscribe the book of `venue_symbol`."""
        raise NotImplementedError

    def _resubscribe(self, venue_symbol: str, now: int) -> None:
        self.resubscribed[venue_symbol] = now
        for text in self.resubscribe_frames(venue_symbol):
            self.io.send(text)

    # -- owner callbacks from the book syncs ----------------------------------------------

    def publish(self, sync, flags: int, event_ns: int, recv_ns: int) -> None:
        s = sync.stream
        self.pub.book(s.iid, s.px_scale, s.sz_scale, sync.seq, recv_ns, event_ns, sync.book,
                      s.depth, flags)

    def synced(self, sync) -> None:
        s = sync.stream
        now = self.clock()
        took, reason = s.resync_ended(now)
        if reason:
            self.report.synced(s.symbol, took, reason)
        self.resubscribed.pop(s.venue_symbol, None)
        if self.timers is not None:
            self.timers.arm_refresh(s, now)

    def restart(self, sync, reason: str, detail: str) -> None:
        s = sync.stream
        self.report.resync(s.symbol, reason, detail)
        now = self.clock()
        s.resync_began(reason, now)
        self._resubscribe(s.venue_symbol, now)

    # -- timers and state -----------------------------------------------------------------

    def check_timers(self, now: int) -> None:
        """Staleness, the periodic refresh, and a snapshot that did not come after a resubscribe."""
        timers = self.timers
        if timers is None:
            return
        for vs, sync in self.syncs.items():
            s = sync.stream
            if sync.synced:
                if timers.stale(s, now):
                    sync.lose("stale", f"no {self.BOOK_CHANNEL} message for {(now - s.last_book_ns) / 1e9:.1f}s")
                elif timers.refresh_due(s, now):
                    self.report.resync(s.symbol, "refresh", "periodic")
                    timers.arm_refresh(s, now)
                    self._resubscribe(vs, now)
            else:
                since = self.resubscribed.get(vs)
                if since is not None and now - since > timers.snapshot_timeout_ns + timers.backoff_ns(s):
                    self.restart(sync, "snapshot_timeout", "no snapshot after resubscribe")

    def books(self) -> dict:
        """Final state per canonical symbol: top-N bids/asks as decimal strings."""
        return {sync.stream.symbol: book_view(sync.stream, sync.book, sync.seq, sync.synced)
                for sync in self.syncs.values()}
