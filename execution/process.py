"""The execution process: wires the engine to the control socket, the venues and the ring.

Threads: the main loop (this module: control socket, engine, journal, store, ring),
each venue adapter's REST workers and user-stream thread, and (while a venue could not
be started) a thread that retries loading its instruments. Venue events cross from
those threads, tagged with their venue, through a deque and a wake-up pipe polled with
the control socket, so the engine only ever runs on the main thread.

Start-up order: take the run's execution lock (one execution process per run), load
each venue's instruments (exchangeInfo; with several venues, one that cannot be loaded
is down, its orders rejected, and retried every `retry_s` while the others trade; with
one venue, the failure is fatal as before), open the store and the journal, re-create
the ring, apply journaled reports the store missed, bind the control socket, start the
adapters, and reconcile every open order with its venue (open-order lists, then a query
of each order missing from them; again on every user-stream connect of that venue, and
every poll interval while its stream is down), and ask each venue for its account
(balances, positions: execution/account.py; again on every user-stream connect). Then
write `<run_dir>/exec/ready` ("<pid> <endpoint> replayed=<n> order_entry=<venue>:<path>,...").

Order entry (`order_entry`, `--order-entry`): "rest", or "ws" for WebSocket order entry on
every venue whose adapter offers it (`order_entries` on the adapter; REST stays its
fallback); a venue whose adapter does not keeps REST, said on stderr and in telemetry
(event `exec.order_entry`).
"""

from __future__ import annotations

import collections
import fcntl
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import zmq

import venues
from channels.identity import Keys
from channels.names import execution_endpoint
from core.dlq import DeadLetterQueue
from core.run import RunContext
from core.telemetry import Telemetry
from events import InUse, Provider, Registry

from .control import ControlServer
from .engine import Engine
from .limits import LimitBook
from .publisher import ExecPublisher
from .store import Store


class AlreadyRunning(InUse):
    pass


@dataclass(frozen=True)
class VenueConfig:
    """One venue to trade: its provider slug, endpoints and credentials."""

    name: str
    rest_url: str
    ws_url: str
    api_key: str
    api_secret: str


@dataclass(frozen=True)
class _VenueLoaded:
    """A venue that was down at start-up has its instruments now (from the retry thread)."""

    registry: Registry


def take_lock(path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"another execution process holds {path}") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


class ExecutionProcess:
    def __init__(self, ctx: RunContext, *, venues_: list[VenueConfig],
                 control: str | None = None, limits: dict | None = None, durability: str = "process",
                 trading_default: bool = True, telemetry_endpoint: str | None = None, workers: int = 2,
                 timeout_s: float = 2.0, recv_window_ms: int = 5000, ring_capacity: int = 1024,
                 registries: dict[str, Registry] | None = None, user_stream_lifetime_s: float | None = None,
                 retry_s: float = 5.0, order_entry: str = "rest"):
        if not venues_:
            raise ValueError("execution needs at least one venue")
        self.ctx = ctx
        self._lock_fd = take_lock(ctx.path("exec", "execution.lock"))
        self.tel = Telemetry("execution", telemetry_endpoint)
        self.dlq = DeadLetterQueue(ctx.path("dlq", "x").parent, "execution")
        self.configs = {Provider.from_slug(c.name): c for c in venues_}
        self._adapter_kw = dict(workers=workers, timeout_s=timeout_s, recv_window_ms=recv_window_ms,
                                dlq=self.dlq, telemetry=self.tel,
                                **({"stream_lifetime_s": user_stream_lifetime_s} if user_stream_lifetime_s else {}))
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self.order_entry = order_entry
        self.order_paths: dict[Provider, str] = {}   # the order-entry path each started adapter uses
        self._stop = False
        self._stopped = threading.Event()
        loaded: dict[Provider, Registry] = {}
        failed: dict[Provider, str] = {}
        for p, c in self.configs.items():
            given = (registries or {}).get(c.name)
            try:
                loaded[p] = given or venues.get(p).trading_registry(c.rest_url, timeout_s=timeout_s)
            except Exception as e:  # unreachable, refused, unreadable: that venue is down
                if len(self.configs) == 1:
                    raise
                failed[p] = f"instruments not loaded from {c.rest_url}: {type(e).__name__}: {e}"
        sync = durability == "power"
        self.store = Store(ctx.path("exec", "orders.sqlite"), loaded, synchronous="FULL" if sync else "NORMAL")
        self.publisher = ExecPublisher(ctx, capacity=ring_capacity, sync=sync)
        self.inbox: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.adapters = {p: self._adapter(p, reg) for p, reg in loaded.items()}
        self.engine = Engine(self.store, self.publisher, {p: self.adapters.get(p) for p in self.configs},
                             clock=time.time_ns, limits=LimitBook(limits), telemetry=self.tel, dlq=self.dlq,
                             trading_default=trading_default)
        for p, reason in failed.items():
            self._venue_down(p, reason)
        self.endpoint = control or execution_endpoint(ctx.run_dir)
        self.control = ControlServer(self.engine, self.endpoint, keys=Keys(ctx.run_dir), telemetry=self.tel,
                                     dlq=self.dlq)

    @property
    def adapter(self):
        """The only venue's adapter (single-venue callers)."""
        (a,) = self.adapters.values()
        return a

    def _adapter(self, p: Provider, registry: Registry):
        c = self.configs[p]
        adapter = venues.get(p).trading_adapter(
            rest_url=c.rest_url, ws_url=c.ws_url, api_key=c.api_key, api_secret=c.api_secret, registry=registry,
            emit=lambda ev, p=p: self._emit(p, ev), **self._adapter_kw)
        self._choose_order_entry(p, adapter)
        return adapter

    def _choose_order_entry(self, p: Provider, adapter) -> None:
        """Set `order_entry` on an adapter that offers it (before its start); else it keeps REST."""
        offered = getattr(adapter, "order_entries", ("rest",))
        path, reason = "rest", ""
        if self.order_entry in offered:
            path = self.order_entry
            if path != "rest":
                adapter.order_entry = path
        else:
            reason = f"the {p.slug} trading adapter offers no {self.order_entry} order entry: REST"
            print(f"execution: {reason}", file=sys.stderr, flush=True)
        self.order_paths[p] = path
        self.tel.event("exec.order_entry", venue=p.slug, requested=self.order_entry, path=path, reason=reason)

    def _venue_down(self, p: Provider, reason: str) -> None:
        self.engine.set_down(p, reason)
        self.dlq.put("venue_down", priority="high", venue=p.slug, error=reason)
        threading.Thread(target=self._retry_load, args=(p,), name=f"load-{p.slug}", daemon=True).start()

    def _retry_load(self, p: Provider) -> None:
        """Load a down venue's instruments until they come (then the main loop starts it)."""
        c = self.configs[p]
        while not self._stopped.wait(self.retry_s):
            try:
                reg = venues.get(p).trading_registry(c.rest_url, timeout_s=self.timeout_s)
            except Exception:  # still down: the reason given at start-up stands
                continue
            self._emit(p, _VenueLoaded(reg))
            return

    def _emit(self, provider: Provider, ev) -> None:
        """Called by adapter threads: queue a venue event and wake the main loop."""
        self.inbox.append((provider, ev))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # the pipe is full: the loop is awake anyway
            pass

    def _apply(self, provider: Provider, ev) -> None:
        if isinstance(ev, _VenueLoaded):
            if provider in self.adapters or self._stop:
                return
            adapter = self._adapter(provider, ev.registry)
            self.adapters[provider] = adapter
            adapter.start()
            self.engine.attach(provider, adapter, ev.registry)
            self.tel.inc("exec.venue.up", venue=provider.slug)
            return
        self.engine.on_venue(ev, provider)

    def stop(self, *_args) -> None:
        self._stop = True

    def do_work(self) -> int:
        work = self.control.do_work()
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        inbox = self.inbox
        while inbox:
            self._apply(*inbox.popleft())
            work += 1
        work += self.engine.tick()
        work += self.engine.flush()
        return work

    def run(self) -> int:
        replayed = self.engine.recover()
        for adapter in self.adapters.values():
            adapter.start()
        self.engine.reconcile()
        ready = self.ctx.path("exec", "ready")
        paths = ",".join(f"{p.slug}:{path}" for p, path in self.order_paths.items())
        ready.write_text(f"{os.getpid()} {self.endpoint} replayed={replayed} order_entry={paths}\n")
        poller = zmq.Poller()
        poller.register(self.control.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        last_beat = 0.0
        try:
            while not self._stop:
                busy = self.engine.retry or self.publisher.backlog or self.control.router.outbox
                poller.poll(5 if busy else 50)
                self.do_work()
                now = time.monotonic()
                if now - last_beat > 0.1:
                    last_beat = now
                    self.publisher.heartbeat()
                    self.tel.gauge("exec.open_orders", len(self.engine.open))
                    self.tel.gauge("exec.ring.backlog", self.publisher.backlog)
                    self.tel.gauge("exec.last_exec_seq", self.publisher.last_seq)
        finally:
            ready.unlink(missing_ok=True)
            self.close()
        return 0

    def close(self) -> None:
        self._stopped.set()
        self._stop = True
        for adapter in list(self.adapters.values()):
            adapter.stop()
        while self.inbox:
            self._apply(*self.inbox.popleft())
        self.engine.flush()
        self.control.close()
        self.publisher.close()
        self.store.close()
        self.tel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        os.close(self._lock_fd)


def install_signals(proc: ExecutionProcess) -> None:
    signal.signal(signal.SIGTERM, proc.stop)
    signal.signal(signal.SIGINT, proc.stop)
