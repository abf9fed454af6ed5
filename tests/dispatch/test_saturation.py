"""Saturation found by dispatch itself, and fair share under it, on a fake clock.

The loop is modelled: each 10 ms step it can fan out `capacity` records; each record
it delivers beyond that leaves BEHIND input records unread, which it then reports as
waiting (as `DispatchProcess.do_work` does after its reads), and spare capacity
reads them. Nothing else tells the core that it is saturated: no `fanout_rate` is
configured.
"""

from __future__ import annotations

import pytest

from dispatch.protocol import ack_record
from dispatch.saturation import Saturation
from tests.synthetic import records
from events import Kind, Provider, concat, instrument_id

pytestmark = pytest.mark.timeout(60)
OKX = int(Provider.OKX)
MS = 1_000_000
STEP = 10 * MS
PER_STEP = 5  # records of each kind per symbol and step: 500/s per stream
BEHIND = 20   # input records left unread per record delivered beyond the capacity
APPETITE = {"small": ["S0-USDT"], "medium": [f"M{i}-USDT" for i in range(4)],
            "large": [f"L{i}-USDT" for i in range(10)]}


class Feed:
    """Books and trades of every symbol, PER_STEP of each per step, prebuilt."""

    def __init__(self, steps: int):
        self.parts = {(s, k): records(OKX, s, k, range(1, steps * PER_STEP + 1))
                      for syms in APPETITE.values() for s in syms for k in (Kind.BOOK, Kind.TRADE)}

    def step(self, i: int):
        return concat(p[i * PER_STEP : (i + 1) * PER_STEP] for p in self.parts.values())


def saturated_rig(rig, capacity_per_step: int | None, steps: int, steady_waiting: int = 0):
    """Run `steps` steps of three unequal consumers; return per-consumer md counts and rig.

    Without a capacity the loop keeps up, leaving `steady_waiting` records after each round.
    """
    r = rig()
    subs = {n: r.consumer(n, capacity=1 << 14) for n in APPETITE}
    for n, syms in APPETITE.items():
        for s in syms:
            r.core.subscribe(subs[n], instrument_id(s))
    feed = Feed(steps)
    got = {n: [] for n in APPETITE}
    offered = {n: 0 for n in APPETITE}
    waiting = 0
    for i in range(steps):
        before = r.core.events_out
        r.step(feed.step(i), advance_ns=STEP)
        for n, syms in APPETITE.items():
            offered[n] += 2 * PER_STEP * len(syms)
            recs = r.read(n)
            got[n].append(recs[recs["kind"] <= Kind.TICKER])
        out = r.core.events_out - before
        if capacity_per_step is None:
            waiting = steady_waiting
        else:  # the modelled loop: delivering more leaves input unread
            waiting = max(0, waiting + BEHIND * (out - capacity_per_step))
        r.core.note_input(waiting)
    return r, subs, got, offered


def shares(got, offered, first_step: int) -> dict:
    steps = len(next(iter(got.values())))
    return {n: sum(len(b) for b in got[n][first_step:]) /
               (offered[n] * (steps - first_step) / steps) for n in got}


def test_a_saturated_dispatch_gives_three_unequal_consumers_the_same_share_above_a_quarter(rig):
    demand = 2 * PER_STEP * sum(len(s) for s in APPETITE.values())      # 150 per step
    r, subs, got, offered = saturated_rig(rig, capacity_per_step=60, steps=600)
    share = shares(got, offered, first_step=300)                        # after 3 s
    assert all(s >= 0.25 for s in share.values()), share
    assert max(share.values()) - min(share.values()) < 0.1, share       # the same fraction
    assert r.core.saturation.saturated and r.core.saturation.intervals_behind > 0
    assert r.core.fair.rate >= 0.25 * r.core.fair.total_demand
    assert r.core.fair.total_demand == pytest.approx(demand * 100, rel=0.05)
    m = r.core.metrics()
    for n in APPETITE:
        assert m["counters"][f"fanout.dropped{{consumer={n},kind=trade}}"] > 0
        assert m["counters"][f"fanout.coalesced{{consumer={n}}}"] > 0
        assert m["counters"][f"fanout.offered{{consumer={n}}}"] == offered[n]
    assert m["gauges"]["dispatch.saturated"] == 1


def test_a_saturated_dispatch_keeps_the_floor_even_when_it_cannot_catch_up(rig):
    r, subs, got, offered = saturated_rig(rig, capacity_per_step=10, steps=600)  # 7% of demand
    share = shares(got, offered, first_step=300)
    assert all(s >= 0.25 for s in share.values()), share
    assert r.core.fair.rate == pytest.approx(0.275 * r.core.fair.total_demand, rel=0.05)


def test_books_arrive_at_their_latest_state_and_critical_records_all_arrive_under_saturation(rig):
    r, subs, got, offered = saturated_rig(rig, capacity_per_step=40, steps=300)
    for i in range(50):
        r.core.deliver_critical(subs["large"], ack_record(i, "subscribe"))
    for _ in range(20):  # the input stops: backlogs drain within the budget
        r.step(advance_ns=STEP)
        got["large"].append(r.read("large"))
    large = concat(got["large"])
    acks = large[large["kind"] == Kind.CONTROL_ACK]["ack"]["request_id"].tolist()
    assert acks == list(range(50))
    for s in APPETITE["large"]:
        books = large[(large["kind"] == Kind.BOOK) & (large["instrument"] == instrument_id(s))]
        assert books["seq_provider"][-1] == 300 * PER_STEP                 # the newest book
        assert (books["seq_provider"][1:] > books["seq_provider"][:-1]).all()


def test_a_dispatch_that_keeps_up_never_meters_even_with_a_steady_small_input_queue(rig):
    r, subs, got, offered = saturated_rig(rig, capacity_per_step=None, steps=200,
                                          steady_waiting=500)
    assert not r.core.saturation.saturated and r.core.fair.rate == 0
    assert {n: sum(len(b) for b in got[n]) for n in got} == offered
    assert all(o.trades_dropped == 0 and o.coalesced == 0 for o in r.core.outlets.values())


def test_metering_is_lifted_once_the_input_drains():
    sat = Saturation(interval_ns=100 * MS, min_share=0.25, behind_records=1024)
    t, delivered = 0, 0
    assert sat.update(t, delivered, demand=10_000.0) is None
    for _ in range(5):  # behind: the budget falls from the measured rate towards the floor
        t += 100 * MS
        delivered += 800
        sat.observe(waiting=5_000)
        sat.update(t, delivered, demand=10_000.0)
    assert sat.budget == pytest.approx(max(2_750.0, 8_000 * 0.7 ** 5))  # floor: 25% + headroom
    budgets = []
    while sat.budget is not None:  # caught up: the budget grows until the demand fits
        t += 100 * MS
        sat.observe(waiting=0)
        budgets.append(sat.update(t, delivered, demand=10_000.0))
    assert budgets[:-1] == sorted(budgets[:-1]) and budgets[-1] is None
    assert sat.saturated_ns > 0


def test_a_backlog_without_demand_is_not_metered():
    sat = Saturation(interval_ns=100 * MS, behind_records=1024)
    sat.update(0, 0, demand=0.0)
    sat.observe(waiting=50_000)
    assert sat.update(100 * MS, 0, demand=0.0) is None  # nobody subscribed: nothing to trim
