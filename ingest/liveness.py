"""Liveness by data: per stream kind, the connection carrying it must deliver its data.

A connection that answers pings is not alive for that reason: a stalled server (the
simulator's `stall` fault, a wedged gateway) keeps answering pings while no data flows,
and a connection may deliver one kind and not another (Binance USD-M's legacy URL gets
depth but no aggTrade since 2026-04-23). So every stream kind the process carries
(book, trade, ticker) has its own watchdog over its own data:

  book    the newest `Stream.last_book_ns` of any instrument (every book frame, synced or
          not: the adapters stamp it)
  trade   records published (`Publisher.counts["trade"]`)
  ticker  records published (`Publisher.counts["ticker"]`)

summed over the process's instruments, so one quiet instrument does not count as a
dead connection (its own book staleness, `Timers.stale`, resyncs that one book). When
a kind has had no data for its threshold since the later of its last data and the
adoption of its connection, that connection is dropped (`WsFeed.lose`) and the
reconnect resyncs what it carries. Thresholds come per venue (`Venue.silence_s`) and
can be set per kind (`--silence trade=300`); 0 turns a kind's watchdog off.
Owned by the ingest loop thread; times are the process clock's monotonic ns.
"""

from __future__ import annotations

_S = 1_000_000_000


class Liveness:
    """The per-kind data watchdogs of one ingest process."""

    def __init__(self, silence_s: dict, feed_of: dict, streams, counts, clock, on_silence=None):
        """`silence_s`: kind -> seconds (0: off); `feed_of`: kind -> the WsFeed carrying it;
        `counts()`: records published by kind; `clock()`: monotonic ns; `on_silence(kind)`:
        told before the connection of a silent kind is dropped."""
        self.on_silence = on_silence
        self.limit_ns = {k: int(v * _S) for k, v in silence_s.items() if v and k in feed_of}
        self.feed_of = feed_of
        self.streams = list(streams)
        self.counts = counts
        self.clock = clock
        now = clock()
        self.mark = {k: 0 for k in self.limit_ns}        # the last data seen per kind
        self.last_ns = {k: now for k in self.limit_ns}   # when it changed
        self.adopted_ns: dict = {}                       # feed -> when its socket was adopted
        self.silences: dict[str, int] = {}               # kind -> reconnects for its silence

    def adopted(self, feed, now_ns: int) -> None:
        """`feed` has a new socket: its kinds' clocks start now at the latest."""
        self.adopted_ns[feed] = now_ns

    def check(self, now_ns: int) -> None:
        """Drop the connection of every kind silent past its threshold (the timer tick)."""
        counts = None
        for kind, limit in self.limit_ns.items():
            if kind == "book":
                mark = max((s.last_book_ns for s in self.streams), default=0)
            else:
                if counts is None:
                    counts = self.counts()
                mark = counts.get(kind, 0)
            if mark != self.mark[kind]:
                self.mark[kind] = mark
                self.last_ns[kind] = now_ns
                continue
            feed = self.feed_of[kind]
            if feed.ws is None:
                continue                                  # reconnecting already
            since = max(self.last_ns[kind], self.adopted_ns.get(feed, 0))
            if now_ns - since > limit:
                self.silences[kind] = self.silences.get(kind, 0) + 1
                self.last_ns[kind] = now_ns
                if self.on_silence is not None:
                    self.on_silence(kind)
                feed.lose(f"no {kind} data for {(now_ns - since) / _S:.1f}s "
                          f"(liveness by data: pings and heartbeats do not count)")


def parse_silence(text: str) -> dict[str, float]:
    """'book=3,trade=300' -> {"book": 3.0, "trade": 300.0}; ValueError names what is wrong."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, eq, value = part.partition("=")
        kind = kind.strip()
        if not eq or kind not in ("book", "trade", "ticker"):
            raise ValueError(f"silence must be KIND=SECONDS with KIND book, trade or ticker: {part!r}")
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"silence seconds must be a number: {part!r}") from None
        if seconds < 0:
            raise ValueError(f"silence seconds must be >= 0: {part!r}")
        out[kind] = seconds
    return out
