"""The pipeline of stages: the drawing is the code, and released records take the same
later stages as any batch (dispatch.pipeline)."""

from __future__ import annotations

import re

import pytest

from dispatch import pipeline
from events import HeaderFlag, Kind, Provider, instrument_id
from tests.synthetic import interleave, records

from .conftest import seqs_of

pytestmark = pytest.mark.timeout(30)
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC = "BTC-USDT"
MS = 1_000_000


def test_the_routes_drawn_in_the_docstring_are_the_routes_the_pipeline_runs(rig):
    pipe = rig().core.pipeline
    drawn = {}
    for line in pipeline.__doc__.splitlines():
        m = re.match(r"\s+(\w+) route\s+(.*)$", line)
        if m:
            drawn[m[1]] = [re.sub(r"\W", "", part.split()[-1])
                           for part in re.split(r"─+►", m[2]) if part.strip()]
    drawn["small"] = drawn["small"][1:]  # small.admit gates the small route: not one of its stages
    routes = {name: [stage.__name__ for stage in getattr(pipe, f"{name}_route")]
              for name in ("vector", "small", "released", "closed")}
    assert drawn == routes


def test_a_batch_hands_on_its_passing_rows_then_what_they_released_from_the_reorder_buffer(rig):
    r = rig()
    r.core.subscribe(r.consumer("a"), instrument_id(BTC))
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2, 4, 5]))    # 4 and 5 wait for 3
    r.step(records(OKX, BTC, Kind.BOOK, [1]))
    r.read("a")
    r.step(interleave(records(OKX, BTC, Kind.TRADE, [3]), records(OKX, BTC, Kind.BOOK, [2])))
    got = r.read("a")
    assert [(Kind(int(k)).name.lower(), int(s)) for k, s in
            zip(got["kind"], got["seq_provider"])] == [
        ("book", 2), ("trade", 3), ("trade", 4), ("trade", 5)]


def test_records_a_timer_releases_become_state_and_feed_the_merge_window(rig):
    r = rig(lateness_ns=150 * MS, flush_ns=50 * MS, merge_window_ns=1000 * MS,
            merge_max_events=1000)
    m = r.consumer("m")
    r.core.merged_subscribe(m, instrument_id(BTC), (OKX, BIN))
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [1], ingest_ts_ns=t, px=500),
                      records(BIN, BTC, Kind.TICKER, [1], ingest_ts_ns=t, px=900)))
    r.step(records(OKX, BTC, Kind.BOOK, [3], ingest_ts_ns=t + 1, px=500))  # 2 never comes
    assert r.core.orderer.depth() != {}
    r.step(advance_ns=200 * MS)                                           # the timer releases 3
    assert r.core.orderer.depth() == {}
    late = r.consumer("late")
    r.core.subscribe(late, instrument_id(BTC), kinds=(int(Kind.BOOK),))
    (book,) = r.read("late")                                              # kept as the state
    assert int(book["seq_provider"]) == 3 and int(book["flags"]) & int(HeaderFlag.REPLAYED)
    r.step(advance_ns=800 * MS)                                           # the window closes
    (merged,) = r.read("m")
    legs = {int(leg["provider"]): leg for leg in merged["merged"]["legs"][:2]}
    assert legs[OKX]["seq_provider"] == 3 and merged["merged"]["event_count"] == 3
    assert seqs_of(r.read("late")) == []
