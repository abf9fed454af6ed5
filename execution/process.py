"""The execution process: wires the engine to the control socket, the venue and the ring.

Threads: the main loop (this module: control socket, engine, journal, store, ring),
the adapter's REST workers and its user-stream thread. Venue events cross from those
threads through a deque and a wake-up pipe polled with the control socket, so the
engine only ever runs on the main thread.

Start-up order: take the run's execution lock (one execution process per run), load
instruments (exchangeInfo), open the store and the journal, re-create the ring, apply
journaled reports the store missed, bind the control socket, start the adapter, and
reconcile every open order with the venue (openOrders lists, then a query of each
order missing from them; again on every user-stream connect, and every poll interval
while the stream is down). Then write `<run_dir>/exec/ready`.
"""

from __future__ import annotations

import collections
import fcntl
import os
import signal
import time

import zmq

from channels.identity import Keys
from channels.names import execution_endpoint
import venues
from events import InUse, Registry
from core.dlq import DeadLetterQueue
from core.run import RunContext
from core.telemetry import Telemetry

from .control import ControlServer
from .engine import Engine
from .limits import LimitBook
from .publisher import ExecPublisher
from .store import Store


class AlreadyRunning(InUse):
    pass


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
    def __init__(self, ctx: RunContext, *, venue: str = "binance-spot", rest_url: str, ws_url: str, api_key: str, api_secret: str,
                 control: str | None = None, limits: dict | None = None, durability: str = "process",
                 trading_default: bool = True, telemetry_endpoint: str | None = None, workers: int = 2,
                 timeout_s: float = 2.0, recv_window_ms: int = 5000, ring_capacity: int = 1024,
                 registry: Registry | None = None, user_stream_lifetime_s: float | None = None):
        self.ctx = ctx
        self._lock_fd = take_lock(ctx.path("exec", "execution.lock"))
        self.tel = Telemetry("execution", telemetry_endpoint)
        self.dlq = DeadLetterQueue(ctx.path("dlq", "x").parent, "execution")
        self.venue = venues.get(venue)
        self.registry = registry or self.venue.trading_registry(rest_url, timeout_s=timeout_s)
        sync = durability == "power"
        self.store = Store(ctx.path("exec", "orders.sqlite"), self.registry,
                           synchronous="FULL" if sync else "NORMAL")
        self.publisher = ExecPublisher(ctx, capacity=ring_capacity, sync=sync)
        self.inbox: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.adapter = self.venue.trading_adapter(
            rest_url=rest_url, ws_url=ws_url, api_key=api_key, api_secret=api_secret, registry=self.registry,
            emit=self._emit, workers=workers, timeout_s=timeout_s, recv_window_ms=recv_window_ms,
            dlq=self.dlq, telemetry=self.tel,
            **({"stream_lifetime_s": user_stream_lifetime_s} if user_stream_lifetime_s else {}))
        self.engine = Engine(self.store, self.publisher, self.adapter, clock=time.time_ns,
                             limits=LimitBook(limits), telemetry=self.tel, dlq=self.dlq,
                             trading_default=trading_default)
        self.endpoint = control or execution_endpoint(ctx.run_dir)
        self.control = ControlServer(self.engine, self.endpoint, keys=Keys(ctx.run_dir), telemetry=self.tel,
                                     dlq=self.dlq)
        self._stop = False

    def _emit(self, ev) -> None:
        """Called by adapter threads: queue a venue event and wake the main loop."""
        self.inbox.append(ev)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # the pipe is full: the loop is awake anyway
            pass

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
            self.engine.on_venue(inbox.popleft())
            work += 1
        work += self.engine.tick()
        work += self.engine.flush()
        return work

    def run(self) -> int:
        replayed = self.engine.recover()
        self.adapter.start()
        self.engine.reconcile()
        ready = self.ctx.path("exec", "ready")
        ready.write_text(f"{os.getpid()} {self.endpoint} replayed={replayed}\n")
        poller = zmq.Poller()
        poller.register(self.control.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        last_beat = 0.0
        try:
            while not self._stop:
                busy = self.engine._retry or self.publisher.backlog or self.control.router.outbox
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
        self.adapter.stop()
        while self.inbox:
            self.engine.on_venue(self.inbox.popleft())
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
