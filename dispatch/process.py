"""The dispatch process: discover ingest rings, run the core, serve control.

`do_work()` does one round and returns how much it did: control requests, records
read from every `md.*` ring of the run, timers. `run()` loops over it; when a round
finds nothing it parks on every ingest ring at once (`dispatch.park`), so a publish
wakes it within microseconds, and for no longer than the next timer, the consumer
backlog poll or `max_nap_ns` (control requests wait at most that). Ingest rings are
found by listing the run's namespace every `discover_ns`; a ring whose segment was
replaced (ingest restarted) is re-attached from its oldest record and its streams
restart their sequence. Rings present at start are read from their newest record (what
was there before dispatch started is stale), after the newest book and ticker of each
stream still in them (`dispatch.seed`), which start those streams flagged REPLAYED;
rings that appear later are read from their oldest.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from channels.identity import Keys
from channels.names import dispatch_endpoint, execution_endpoint, md_venue
from channels.server import ControlRouter
from events import EVENT, HeaderFlag, Provider, instrument_id
from core.dlq import DeadLetterQueue
from core.run import RunContext
from core.signals import StopFlag, stop_on_signals
from core.telemetry import ENV_ENDPOINT, Telemetry
from shm import RingError, RingReader

from .config import DispatchConfig
from .control import ExecutionLink
from .core import DispatchCore
from .park import Parker
from .seed import newest_state
from .service import ControlService

BATCH = 4096


def default_telemetry(ctx: RunContext) -> str:
    """$MELTICA_TELEMETRY (the run's collector), else a PUB socket of our own."""
    return os.environ.get(ENV_ENDPOINT) or f"bind:ipc://{Path(ctx.run_dir).resolve() / 'dispatch.tel'}"


@dataclass
class Source:
    name: str
    reader: RingReader
    provider: int | None
    lost: int = 0     # lapped records already published as telemetry
    noted: int = 0    # lapped records already handled by the core


class DispatchProcess:
    """One dispatch of one run. Call from one thread: `run()` or `do_work()` in a loop."""

    def __init__(self, ctx: RunContext, config: DispatchConfig | None = None, *,
                 control: str | None = None, telemetry: str | None = None,
                 execution: str | None = None, instruments=(), trading_default: bool = False,
                 discover_ns: int = 100_000_000, metrics_ns: int = 1_000_000_000,
                 silence_ns: int = 30_000_000_000, exec_timeout_ns: int = 500_000_000,
                 clock=time.time_ns):
        self.ctx = ctx
        self.ns = ctx.namespace
        self.clock = clock
        ctx.ensure_dir()
        self.tel = Telemetry("dispatch", telemetry if telemetry is not None else default_telemetry(ctx))
        self.dlq = DeadLetterQueue(ctx.run_dir / "dlq", "dispatch")
        self.core = DispatchCore(config, clock, self.tel, self.dlq)
        self.core.configured.update(instrument_id(s) for s in instruments)
        self.server = ControlRouter(control or dispatch_endpoint(ctx.run_dir), telemetry=self.tel,
                                    prefix="control")
        self.execution = ExecutionLink(execution or execution_endpoint(ctx.run_dir), exec_timeout_ns)
        self.service = ControlService(self.core, self.ns, self.server, self.execution, keys=Keys(ctx.run_dir),
                                      dlq=self.dlq, trading_default=trading_default, silence_ns=silence_ns)
        self.sources: dict[str, Source] = {}
        self.discover_ns = discover_ns
        self.metrics_ns = metrics_ns
        self._started_ns = clock()
        self._first_scan = True
        self._retry_at: dict[str, int] = {}  # ring name -> when to try attaching again
        self._next_discover = 0
        self._next_metrics = 0
        self._closed = False
        self._sources_gen = 0  # bumped whenever `sources` changes (the parker is rebuilt)

    # -- one round -------------------------------------------------------------------

    def do_work(self) -> int:
        now = self.clock()
        work = self.core.tick(now)
        server = self.server
        if server.outbox:  # replies waiting for their peers to read
            work += server.flush()
        for envelope, frame in server.receive() if server.waiting() else ():
            self.service.handle(envelope, frame, now)
            work += 1
        work += self.execution.poll(now)
        waiting = lapped = 0
        for src in list(self.sources.values()):
            reader = src.reader
            batch = reader.try_read(BATCH)
            n = len(batch)
            if reader.lost != src.noted:  # lapped: what this batch follows is gone
                lapped += reader.lost - src.noted
                src.noted = reader.lost
                if src.provider is not None:
                    self.core.source_lapped(src.provider, now)
            if n:
                self.core.process(batch, now)
            reader.release()
            work += n
            waiting += reader.available()
        self.core.note_input(waiting, lapped)
        if now >= self._next_discover:
            self._next_discover = now + self.discover_ns
            self._discover(now)
            self.service.reap(now)
        if now >= self._next_metrics:
            self._next_metrics = now + self.metrics_ns
            self._metrics()
        return work

    def _discover(self, now: int) -> None:
        names = [n for n in self.ns.names() if md_venue(n) is not None]
        for name, src in list(self.sources.items()):
            state = src.reader.writer_state()
            if state == "replaced" and src.reader.available() <= 0:
                src.reader.close()
                del self.sources[name]
                self._sources_gen += 1
                self.tel.event("source.detached", ring=name, reason=state, trace_id=0,
                               decision_id=self.core.ids.next())
                if src.provider is not None:
                    self.core.reset_source(src.provider, now)
        for name in names:
            if name in self.sources or self._retry_at.get(name, 0) > now:
                continue
            start = "latest" if self._first_scan else "oldest"
            try:
                reader = RingReader.attach(self.ns, name, EVENT, start=start, batch_capacity=BATCH)
            except RingError as e:  # being created, or not an EVENT ring: retry later
                self._retry_at[name] = now + 5_000_000_000
                self.tel.inc("source.attach_failed", ring=name)
                self.tel.event("source.attach_failed", ring=name, error=str(e), trace_id=0,
                               decision_id=self.core.ids.next())
                continue
            try:
                provider = int(Provider.from_slug(md_venue(name)))
            except ValueError:
                provider = None
            self.sources[name] = Source(name, reader, provider)
            self._sources_gen += 1
            self.tel.event("source.attached", ring=name, start=start, trace_id=0,
                           decision_id=self.core.ids.next())
            if start == "latest":
                self._seed(name, reader, now)
        self._first_scan = False

    def _seed(self, name: str, reader: RingReader, now: int) -> None:
        """Start the streams of a ring found at start with their newest book and ticker
        from before `reader`'s position (`dispatch.seed`), if its writer is alive."""
        if reader.writer_state() != "alive":  # a dead ingest's books are not current
            return
        try:
            seed = newest_state(self.ns, name, reader.position, BATCH)
        except RingError as e:  # no reader slot free, or gone meanwhile: start without
            self.tel.event("source.seed_failed", ring=name, error=str(e), trace_id=0,
                           decision_id=self.core.ids.next())
            return
        if reader.writer_state() == "replaced":  # the read-back saw another segment
            return
        seed["flags"] |= int(HeaderFlag.REPLAYED)
        self.core.process(seed, now)
        self.tel.event("source.seeded", ring=name, streams=len(seed), trace_id=0,
                       decision_id=self.core.ids.next())

    def _metrics(self) -> None:
        for src in self.sources.values():
            lost = src.reader.lost
            if lost != src.lost:
                self.tel.inc("ingest.lost", lost - src.lost, ring=src.name)
                src.lost = lost
        self.core.publish_metrics()

    # -- loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, max_nap_ns: int = 1_000_000,
            backlog_poll_ns: int = 100_000) -> None:
        """Loop until `stop`: one round of work, then park on the rings until there is more.

        The park's tokens are the positions the round read each ring up to, so it ends
        at once if a writer published past them (meanwhile, or beyond one read's
        batch), else when one publishes, or after `idle_ns()`: at most `max_nap_ns`,
        less when a timer is due, `backlog_poll_ns` while a consumer's ring is full. No
        idle round is spent before parking. `stop` set from another thread is seen
        within one nap; a signal interrupts the park at once.
        """
        stop = stop or threading.Event()
        parker, built = Parker([]), -1
        while not stop.is_set():
            if built != self._sources_gen:  # before its readers can be closed
                parker = Parker([src.reader for src in self.sources.values()])
                built = self._sources_gen
            self.do_work()
            if built != self._sources_gen or self.server.waiting():
                continue
            parker.park(parker.read_up_to(), self.idle_ns(max_nap_ns, backlog_poll_ns))

    def idle_ns(self, max_nap_ns: int, backlog_poll_ns: int) -> int:
        """How long the loop may park: until the next timer, bounded by `max_nap_ns`."""
        now = self.clock()
        t = min(max_nap_ns, self._next_discover - now, self._next_metrics - now)
        due = self.core.next_due_ns()
        if due is not None:
            t = min(t, due - now)
        if self.core.backlogged or self.execution.pending or self.server.outbox:
            t = min(t, backlog_poll_ns)
        return t

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.service.close()
        for src in self.sources.values():
            src.reader.close()
        self.sources.clear()
        self.server.close()
        self.execution.close()
        self.tel.close()


def install_signal_stop(stop: StopFlag) -> None:
    """SIGTERM and SIGINT end the loop (the caller then closes, unlinking consumer rings).

    `stop` is a core.signals.StopFlag: setting a threading.Event from a handler
    deadlocks when a second signal lands inside the first handler.
    """
    stop_on_signals(stop)
