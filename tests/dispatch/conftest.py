"""Fixtures for dispatch tests: a core on a fake clock with real consumer rings, and a
dispatch process running in a thread of the test (for control and SDK tests)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dispatch.config import DispatchConfig
from dispatch.core import DispatchCore
from dispatch.process import DispatchProcess
from tests.synthetic import FakeClock
from events import EVENT, Kind, concat
from core.dlq import DeadLetterQueue
from shm import RingReader, RingWriter


class CoreRig:
    """A DispatchCore on a FakeClock, with consumers whose rings are read in-process."""

    def __init__(self, ns, run_dir, **config):
        self.ns = ns
        self.clock = FakeClock()
        self.dlq = DeadLetterQueue(run_dir / "dlq", "dispatch")
        self.core = DispatchCore(DispatchConfig(**config), clock=self.clock, dlq=self.dlq)
        self.readers: dict[str, RingReader] = {}
        self.subs = {}

    def consumer(self, name: str, capacity: int = 1024):
        w = RingWriter.create(self.ns, f"consumer.{name}.md", EVENT, capacity, policy="lossless",
                              reader_timeout_ns=None)
        self.readers[name] = RingReader.attach(self.ns, f"consumer.{name}.md", EVENT, start="oldest")
        sub = self.subs[name] = self.core.add_consumer(name, w)
        return sub

    def read(self, name: str, max_n: int = 1 << 16) -> np.ndarray:
        """Everything waiting on `name`'s ring (a private copy), released."""
        r = self.readers[name]
        out = []
        while True:
            b = r.try_read(max_n)
            if not len(b):
                r.release()
                break
            out.append(concat([b]))
            r.release()
        return concat(out)

    def step(self, batch=None, advance_ns: int = 0):
        if advance_ns:
            self.clock.advance(advance_ns)
        self.core.tick()
        if batch is not None:
            self.core.process(batch)

    def close(self):
        for r in self.readers.values():
            r.close()
        for o in list(self.core.outlets.values()):
            o.writer.close()


@pytest.fixture
def rig(run_ctx):
    rigs = []

    def make(**config):
        r = CoreRig(run_ctx.namespace, run_ctx.run_dir, **config)
        rigs.append(r)
        return r

    try:
        yield make
    finally:
        for r in rigs:
            r.close()


def seqs_of(recs: np.ndarray, kind: Kind | None = None, provider: int | None = None) -> list[int]:
    sel = np.ones(len(recs), bool)
    if kind is not None:
        sel &= recs["kind"] == kind
    if provider is not None:
        sel &= recs["provider"] == provider
    return recs["seq_provider"][sel].tolist()


@pytest.fixture
def dispatch(run_ctx):
    """A DispatchProcess of the test's run, looping in a thread; BTC-USDT configured."""
    proc = DispatchProcess(run_ctx, DispatchConfig(), telemetry="", instruments=["BTC-USDT"],
                           discover_ns=10_000_000, exec_timeout_ns=300_000_000)
    stop = threading.Event()
    t = threading.Thread(target=proc.run, args=(stop,), kwargs={"max_nap_ns": 100_000})
    t.start()
    try:
        yield proc
    finally:
        stop.set()
        t.join(10)
        proc.close()
