"""Fixtures for execution tests: the engine rig, the simulator and `python -m execution` on top of it."""

from __future__ import annotations

import pytest


@pytest.fixture
def sim():
    from simulator.server import Simulator
    s = Simulator(venues=["binance-spot"], instruments=2, rate=20, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def execution(run_ctx, sim, reap):
    """A started execution process (factory args: extra CLI flags) for this test's run."""
    from .harness import ExecProc
    procs = []

    def start(*args):
        p = ExecProc(run_ctx, sim, reap, *args).start()
        procs.append(p)
        return p

    yield start


@pytest.fixture
def rig(run_ctx):
    """An engine over a recording venue and a manual clock (rig.py), closed at teardown."""
    from .rig import Rig
    r = Rig(run_ctx)
    try:
        yield r
    finally:
        r.close()
