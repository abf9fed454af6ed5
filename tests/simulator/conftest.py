"""Fixtures for the venue simulator tests: simulators that always stop."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from simulator import Simulator


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    """Start simulators (rate 0 unless asked: tests step the market themselves)."""
    started: list[Simulator] = []

    def make(**kwargs: Any) -> Simulator:
        kwargs.setdefault("rate", 0)
        kwargs.setdefault("instruments", 2)
        sim = Simulator(**kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    """A stepped simulator with all three venues and two instruments."""
    return make_sim()
