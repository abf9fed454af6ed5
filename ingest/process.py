"""The live ingest loop of one venue connection. One process, one loop thread.

    proc = IngestProcess(config, RunContext.from_env())
    proc.start()                 # ring, threads, subscriptions
    while running: proc.do_work() or proc.idle()
    proc.close()                 # threads stopped, ring closed and unlinked

`do_work()` hands the inbox (REST snapshot replies, connection events from the
threads) and then the WebSocket frames already received (read here, in the loop
thread: no hand-off between threads on the data path) to the venue adapter, runs
the resync timers, the per-kind liveness watchdogs (`ingest.liveness`) and
keep-alive, flushes the staged records to the ring and returns how many items it
handled; `idle()` polls the sockets and the threads' waker (bounded, so timers
still run).

Connections: one WebSocket per `Connection` the venue declares (Binance USD-M: /public
for depth and bookTicker, /market for aggTrade; every other venue: one), each at
`<ws base><category path><adapter.ws_path(kinds)>`; the adapter gets every frame
alike. A (re)connect of the connection carrying books resyncs the books
(`adapter.on_connected`); one carrying no books needs no resync. The adapter may ask
for a new connection (`reconnect(reason)`, e.g. Binance's serverShutdown): the one the
frame came on. A resync after a reconnect is timed from the loss of the connection.

The ring is `md.<provider slug>` in the run's namespace, overwrite policy; a leftover
segment of that name whose writer is gone is removed first, a live one is refused.
Without a run context (`ctx=None`, `ingest.probe`) there is no ring and no DLQ.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import deque

from channels.names import md_ring
import venues
from events import EVENT, InUse, Provider
from core.dlq import DeadLetterQueue
from core.telemetry import Telemetry
from shm import RingReader, RingWriter
from shm.errors import RingError

from .config import Config
from .liveness import Liveness
from .publisher import Publisher
from .report import Report
from .stream import Stream, Timers
from .transport import Backoff, Closed, Opened, RestClient, SnapshotFetcher, SnapshotReply, Waker, WsFeed

log = logging.getLogger("ingest")
_S = 1_000_000_000
FLUSH_AFTER_NS = 50_000   # in a burst of frames, flush once the oldest staged one waited this long


class RingInUse(InUse):
    """Another live ingest process writes this ring."""


def ring_name(provider: Provider) -> str:
    return md_ring(provider.slug)


def create_ring(ns, provider: Provider, capacity: int) -> RingWriter:
    """Create `md.<slug>`; remove a leftover of a dead writer, refuse a live one."""
    name = ring_name(provider)
    if name in ns.names():
        state = "stale"
        try:
            with RingReader.attach(ns, name, None) as probe:
                state = probe.writer_state()
        except (RingError, OSError, ValueError):
            state = "unreadable"
        if state == "alive":
            raise RingInUse(f"ring {ns.full_name(name)} has a live writer: another ingest for "
                            f"{provider.slug} runs in run {ns.run!r}")
        log.warning("removing leftover ring %s (writer %s)", ns.full_name(name), state)
        try:
            os.unlink(ns.path(name))
        except FileNotFoundError:
            pass
    return RingWriter.create(ns, name, EVENT, capacity, policy="overwrite")


class IngestProcess:
    """One venue connection: threads for I/O, the adapter and the ring in the loop thread."""

    def __init__(self, config: Config, ctx, *, telemetry: Telemetry | None = None,
                 clock=time.monotonic_ns):
        config.check()
        self.config = config
        self.ctx = ctx
        self.provider = p = config.provider
        self.clock = clock
        self.name = f"ingest.{p.slug}"
        self.venue = venues.get(p)
        self.rest_url = (config.rest_url or self.venue.rest_url).rstrip("/")
        self.ws_base = (config.ws_url or self.venue.ws_url).rstrip("/")
        if telemetry is None:   # no --telemetry: Telemetry's own default ($MELTICA_TELEMETRY)
            telemetry = Telemetry(self.name) if config.telemetry is None else \
                Telemetry(self.name, config.telemetry)
        self.telemetry = telemetry
        self.dlq = DeadLetterQueue(ctx.path("dlq"), self.name) if ctx is not None else None
        self.report = Report(p.slug, self.telemetry, self.dlq)
        self.inbox: deque = deque()      # (recv_ns, item) from the connector and REST threads
        self.wake = Waker()
        self._poll = select.poll()
        self._poll.register(self.wake.fd, select.POLLIN)
        self._polled: set[int] = set()    # the sockets registered in _poll
        self.writer: RingWriter | None = None
        self.adapter = None
        self.feeds: list[WsFeed] = []     # one per venue Connection
        self.liveness: Liveness | None = None
        self._current: WsFeed | None = None   # the feed whose frame the adapter handles
        self._lost: dict = {}                 # feed -> monotonic ns its connection was lost
        self.fetcher: SnapshotFetcher | None = None
        self.streams: list[Stream] = []
        self.items = 0
        self.internal_errors = 0
        self._next_timers = 0
        self._next_status = 0
        self._next_rates = 0
        self._last_rates = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        cfg, p = self.config, self.provider
        rest = RestClient(self.rest_url, cfg.rest_timeout_s)
        venue = self.venue
        symbols = list(cfg.symbols)
        info = {}
        if cfg.metadata:
            try:
                info = venue.fetch_metadata(rest, symbols)
            except venues.UnknownSymbols as exc:   # drop those alone; the others keep flowing
                for vs, reason in exc.unknown.items():
                    log.error("%s: unknown symbol %s dropped (%s)", p.slug, vs, reason)
                    self.report.unknown_symbol(vs, reason)
                symbols = [vs for vs in symbols if vs not in exc.unknown]
                if not symbols:
                    raise
                info = venue.fetch_metadata(rest, symbols)
        self.streams = [Stream(venue.instrument(vs, info.get(vs)), vs, cfg.depth) for vs in symbols]
        for s in self.streams:
            log.info("%s: %s as %s (id %d, px_scale %d, sz_scale %d)", p.slug, s.venue_symbol,
                     s.symbol, s.iid, s.px_scale, s.sz_scale)
        if self.ctx is not None:
            self.writer = create_ring(self.ctx.namespace, p, cfg.ring_capacity)
        publisher = Publisher(p, self.writer)
        refresh = None if not cfg.refresh_max_s else (int(cfg.refresh_min_s * _S), int(cfg.refresh_max_s * _S))
        timers = Timers(int(cfg.stale_after_s * _S), refresh, int(cfg.snapshot_timeout_s * _S))
        self.adapter = venue.md_adapter()(p, self.streams, publisher, self.report, self,
                                        timers=timers, clock=self.clock)
        if venue.snapshot_path(symbols[0], cfg.snapshot_limit) is not None:
            limit = cfg.snapshot_limit

            def path_for(vs: str) -> str:
                return venue.snapshot_path(vs, limit)

            self.fetcher = SnapshotFetcher(rest, path_for, self.inbox, self.wake, name=f"{self.name}.rest")
            self.fetcher.start()
        else:
            rest.close()
        conns = venue.connections
        split = len(conns) > 1      # only then do the adapter's paths take the kinds
        for conn in conns:
            args = (conn.kinds,) if split else ()
            self.feeds.append(WsFeed(
                self.ws_base + conn.path + self.adapter.ws_path(*args), self._post,
                subscribe=self.adapter.subscribe_frames(*args), ping_text=venue.ping_text,
                ping_interval_s=cfg.ping_interval_s, watchdog_s=cfg.watchdog_s,
                backoff=Backoff(cfg.backoff_base_s, cfg.backoff_max_s), kinds=conn.kinds,
                name=f"{self.name}.ws" + (f".{conn.name}" if split else "")))
        feed_of = {k: f for f in self.feeds for k in f.kinds}
        silence = {**venue.silence_s, **(cfg.silence or {})}
        self.liveness = Liveness(silence, feed_of, self.streams, lambda: publisher.counts,
                                 self.clock, self._silent)
        for feed in self.feeds:
            feed.start()
        self._last_rates = self.clock()
        ring = self.ctx.namespace.full_name(ring_name(p)) if self.ctx is not None else "(no ring)"
        log.info("%s: writing ring %s (capacity %d) from %s", p.slug, ring, cfg.ring_capacity,
                 " + ".join(f.url for f in self.feeds))

    def close(self) -> None:
        """Stop the threads, flush, close and unlink the ring. Idempotent."""
        for feed in self.feeds:
            feed.stop()
        if self.fetcher is not None:
            self.fetcher.stop()
        if self.adapter is not None:
            self.adapter.pub.flush()
            self._rates(self.clock())
            self.adapter = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.wake.close()
        self.telemetry.close()

    def _post(self, item) -> None:
        """From another thread: an item for the loop (Opened, Closed)."""
        self.inbox.append((time.time_ns(), item))
        self.wake.set()

    # -- the io object the adapter talks to ------------------------------------------

    def request_snapshot(self, venue_symbol: str) -> None:
        self.fetcher.request(venue_symbol)

    def send(self, text: str) -> None:
        """A text frame on the connection carrying books (resubscribes are about books)."""
        feed = self._book_feed()
        if not feed.send(text):
            log.info("not connected: %s dropped (the reconnect resubscribes)", text[:80])

    def _silent(self, kind: str) -> None:
        """A stream kind brought no data for its threshold: its connection is dropped next."""
        self.telemetry.inc("ingest.silence", provider=self.provider.slug, kind=kind)

    def reconnect(self, reason: str) -> None:
        """A new connection for the one the current frame came on (all, outside a frame)."""
        for feed in (self._current,) if self._current is not None else self.feeds:
            log.info("%s: %s asks for a new connection", feed.name, reason)
            feed.lose(reason)

    def _book_feed(self) -> WsFeed:
        return next((f for f in self.feeds if "book" in f.kinds), self.feeds[0])

    # -- the loop ------------------------------------------------------------------

    def do_work(self, max_items: int = 256) -> int:
        """Handle the inbox and up to `max_items` received frames, run due timers, flush;
        return the items handled. Records of a burst of frames are flushed every
        FLUSH_AFTER_NS, not only at its end."""
        inbox, adapter = self.inbox, self.adapter
        n = 0
        while inbox:
            ns, item = inbox.popleft()
            n += 1
            self._handle(self._event, item, ns)
        on_frame, pub = adapter.on_frame, adapter.pub
        feeds = self.feeds
        share = max(1, (max_items - n) // len(feeds))
        oldest = 0          # recv_ns of the oldest frame not flushed yet
        for feed in feeds:
            next_frame = feed.next_frame
            self._current = feed
            limit = min(max_items, n + share)
            while n < limit:
                got = next_frame()
                if got is None:
                    break
                ns, frame = got
                n += 1
                try:
                    on_frame(frame, ns)
                except Exception as exc:  # noqa: BLE001 - a bug, not bad input (adapters DLQ that)
                    self._internal_error(frame, exc)
                if not oldest:
                    oldest = ns
                elif ns - oldest > FLUSH_AFTER_NS:   # a burst: its first records go out meanwhile
                    pub.flush()
                    oldest = 0
        self._current = None
        now = self.clock()
        if now >= self._next_timers:
            self._next_timers = now + 50_000_000
            adapter.check_timers(now)
            self.liveness.check(now)
            for feed in feeds:
                feed.tick()
            if self.writer is not None:
                self.writer.heartbeat()
            if now >= self._next_rates:
                self._rates(now)
            if now >= self._next_status:
                self._status(now)
        adapter.pub.flush()
        self.items += n
        return n

    def _handle(self, fn, item, ns: int) -> None:
        try:
            fn(item, ns)
        except Exception as exc:  # noqa: BLE001 - a bug, not bad input (adapters DLQ that)
            self._internal_error(item, exc)

    def _internal_error(self, item, exc: Exception) -> None:
        self.internal_errors += 1
        log.exception("%s: internal error on %s", self.provider.slug, type(item).__name__)
        self.telemetry.inc("ingest.internal_error", provider=self.provider.slug)
        self.report.bad_frame(item if item.__class__ in (bytes, str) else repr(item),
                              "internal_error", exc)

    def _event(self, item, ns: int) -> None:
        adapter = self.adapter
        if item.__class__ is SnapshotReply:
            if item.error is None:
                adapter.on_snapshot(item.venue_symbol, item.body, ns)
            else:
                log.warning("%s snapshot failed: %s", item.venue_symbol, item.error)
                adapter.on_snapshot_error(item.venue_symbol, item.error)
        elif item.__class__ is Opened:
            feed = item.feed
            log.info("%s connected to %s", self.provider.slug, item.url)
            feed.adopt(item.ws)
            now = self.clock()
            self.liveness.adopted(feed, now)
            if "book" in feed.kinds:
                adapter.on_connected(item.first)
                lost = self._lost.pop(feed, 0)
                if lost and not item.first:    # time the resync from the loss of the connection
                    for s in self.streams:
                        if s.resync_reason == "reconnect":
                            s.resync_started_ns = lost
        elif item.__class__ is Closed:
            feed = item.feed
            if feed is not None and feed.connects and feed not in self._lost:
                self._lost[feed] = self.clock()
            named = f"{feed.name}: " if feed is not None and len(self.feeds) > 1 else ""
            self.report.reconnect(named + item.reason)

    def idle(self, timeout_s: float = 0.05) -> None:
        """Wait for a frame or another thread's item (bounded, so timers keep running)."""
        fds = {fd for fd in (f.fileno() for f in self.feeds) if fd >= 0}
        if fds != self._polled:
            for fd in self._polled - fds:
                try:
                    self._poll.unregister(fd)
                except (KeyError, ValueError):
                    pass
            for fd in fds - self._polled:
                self._poll.register(fd, select.POLLIN)
            self._polled = fds
        if self._poll.poll(timeout_s * 1000):
            self.wake.clear()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.do_work():
                self.idle()

    def _rates(self, now: int) -> None:
        """Per-instrument frame counts and rates into telemetry (every second)."""
        elapsed = (now - self._last_rates) / _S
        self._last_rates = now
        self._next_rates = now + _S
        self.report.flush_rates(self.streams, elapsed)

    def _status(self, now: int) -> None:
        self._next_status = now + int(self.config.status_interval_s * _S)
        tel = self.telemetry
        synced = sum(1 for s in self.adapter.syncs.values() if s.synced)
        tel.gauge("book.synced_count", synced, provider=self.provider.slug)
        if self.writer is not None:
            tel.gauge("md.ring.position", self.writer.position, provider=self.provider.slug)
            for r in self.writer.reader_slots():
                tel.gauge("md.ring.reader_lost", r["lost"], provider=self.provider.slug, pid=r["pid"])
        log.info("%s: %d items, %d/%d books synced, events %s, resyncs %d, bad frames %d",
                 self.provider.slug, self.items, synced, len(self.streams),
                 self.adapter.pub.counts, self.report.resyncs, self.report.bad_frames)

    def statistics(self) -> dict:
        return {"items": self.items, "events": self.adapter.pub.counts if self.adapter else {},
                **self.report.counters(), "bad_frames": self.report.bad_frames,
                "reconnects": self.report.reconnects,
                "silences": dict(self.liveness.silences) if self.liveness else {},
                "books": {s.stream.symbol: s.describe() for s in self.adapter.syncs.values()}
                if self.adapter else {}}
