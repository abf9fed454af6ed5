"""Per-stream ordering and de-dup through the core, on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from dispatch.dedup import Deduper
from tests.synthetic import interleave, records
from events import HeaderFlag, Kind, Provider, instrument_id

from .conftest import seqs_of

pytestmark = pytest.mark.timeout(30)
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC = "BTC-USDT"
MS = 1_000_000


def subscribed(rig, **config):
    r = rig(**config)
    sub = r.consumer("a")
    r.core.subscribe(sub, instrument_id(BTC))
    return r


def test_in_order_batches_pass_at_once_without_holding(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.BOOK, range(1, 101)))
    r.step(records(OKX, BTC, Kind.BOOK, range(101, 201)))
    assert seqs_of(r.read("a")) == list(range(1, 201))
    assert r.core.orderer.counts["reordered"] == 0
    assert r.core.orderer.depth() == {}


def test_out_of_order_within_lateness_is_delivered_in_seq_order(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2, 5, 3, 4, 6]))
    assert seqs_of(r.read("a")) == [1, 2, 3, 4, 5, 6]
    assert r.core.orderer.counts["reordered"] == 1  # only 5 waited
    assert r.core.orderer.counts["gap_unresolved"] == 0


def test_gap_that_resolves_in_a_later_batch_releases_what_waited_behind_it(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2, 4, 5]))
    assert seqs_of(r.read("a")) == [1, 2]
    assert r.core.orderer.depth() != {}
    r.step(records(OKX, BTC, Kind.TRADE, [3]), advance_ns=100 * MS)  # within 150 ms
    assert seqs_of(r.read("a")) == [3, 4, 5]
    assert r.core.orderer.counts["gap_unresolved"] == 0


def test_gap_that_never_resolves_is_released_in_ingest_ts_order_after_the_lateness(rig):
    r = subscribed(rig, lateness_ns=150 * MS, flush_ns=50 * MS)
    t0 = r.clock.now
    late_ts = records(OKX, BTC, Kind.TRADE, [5], ingest_ts_ns=t0 + 2)
    early_ts = records(OKX, BTC, Kind.TRADE, [6], ingest_ts_ns=t0 + 1)
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2], ingest_ts_ns=t0))
    r.step(interleave(late_ts, early_ts))
    assert seqs_of(r.read("a")) == [1, 2]
    r.step(advance_ns=100 * MS)
    assert seqs_of(r.read("a")) == []                  # still waiting for 3 and 4
    r.step(advance_ns=60 * MS)                         # 160 ms: the gap is given up
    assert seqs_of(r.read("a")) == [6, 5]              # ingest_ts order, not seq order
    assert r.core.orderer.counts["gap_unresolved"] == 1
    r.step(records(OKX, BTC, Kind.TRADE, [3, 7]))      # 3 is now late; 7 continues
    assert seqs_of(r.read("a")) == [7]
    r.step()                                           # the next tick reports it
    r.core.publish_metrics()
    assert r.core.tel.counters["late_event.dropped{stage=order}"] == 1
    assert r.core.tel.counters["late_event.dropped.events"] == 1
    assert [d["seq_provider"] for d in r.dlq.read_all() if d["reason"] == "late_event.dropped"] == [3]


def test_a_full_reorder_buffer_releases_at_once(rig):
    r = subscribed(rig, max_held=200)
    r.step(records(OKX, BTC, Kind.TRADE, [1]))
    r.step(records(OKX, BTC, Kind.TRADE, range(3, 203)))  # 200 held behind the missing 2
    assert seqs_of(r.read("a")) == [1] + list(range(3, 203))
    assert r.core.orderer.counts["gap_unresolved"] == 1


def test_a_new_stream_starts_at_the_lowest_seq_of_its_first_batch(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.TRADE, [12, 10, 11]))
    assert seqs_of(r.read("a")) == [10, 11, 12]


def test_a_snapshot_restarts_the_stream_sequence(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.BOOK, [100, 101]))
    r.step(records(OKX, BTC, Kind.BOOK, [7], flags=int(HeaderFlag.SNAPSHOT)))
    r.step(records(OKX, BTC, Kind.BOOK, [8, 9]))
    assert seqs_of(r.read("a")) == [100, 101, 7, 8, 9]


def test_streams_are_ordered_independently_a_gap_holds_only_its_own_stream(rig):
    r = subscribed(rig)
    books = records(OKX, BTC, Kind.BOOK, [1, 3])            # gap at 2
    trades = records(OKX, BTC, Kind.TRADE, [1, 2, 3])
    other = records(BIN, BTC, Kind.BOOK, [1, 2, 3])
    r.step(interleave(books, trades, other))
    got = r.read("a")
    assert seqs_of(got, Kind.BOOK, OKX) == [1]
    assert seqs_of(got, Kind.TRADE, OKX) == [1, 2, 3]
    assert seqs_of(got, Kind.BOOK, BIN) == [1, 2, 3]


def test_duplicates_are_dropped_within_a_batch_and_across_batches(rig):
    r = subscribed(rig)
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2, 2, 3]))
    r.step(records(OKX, BTC, Kind.TRADE, [3, 4]))
    assert seqs_of(r.read("a")) == [1, 2, 3, 4]
    assert r.core.dedup.dropped == 2
    assert r.core.metrics()["counters"]["late_event.dropped{stage=order}"] == 0


def test_dedup_memory_is_bounded_and_forgets_the_oldest_ids():
    d = Deduper(bits=8)
    ids = np.arange(1, 1001, dtype=np.uint64)
    assert d.fresh(ids) is None
    assert d.table.nbytes == 256 * 8
    again = d.fresh(ids[-256:])          # the newest 256 are remembered
    assert again is not None and not again.any()
    assert d.fresh(ids[:1]) is None      # the oldest was overwritten: passes (ordering drops it)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # rig rebuilt per example
@given(hs.data())
def test_any_shuffle_within_the_lateness_is_delivered_complete_and_in_order(run_ctx, data):
    from .conftest import CoreRig

    r = CoreRig(run_ctx.namespace, run_ctx.run_dir)
    try:
        sub = r.consumer("a", capacity=4096)
        r.core.subscribe(sub, instrument_id(BTC))
        n = data.draw(hs.integers(1, 120))
        seqs = list(range(1, n + 1))
        r.step(records(OKX, BTC, Kind.TRADE, [0]))  # the stream's baseline
        shuffled = data.draw(hs.permutations(seqs))
        dups = data.draw(hs.lists(hs.sampled_from(seqs), max_size=10))
        stream = shuffled + dups
        cuts = sorted(data.draw(hs.lists(hs.integers(0, len(stream)), max_size=6)))
        prev = 0
        for c in cuts + [len(stream)]:
            if c > prev:
                r.step(records(OKX, BTC, Kind.TRADE, stream[prev:c]), advance_ns=MS)
            prev = c
        r.step(advance_ns=10 * MS)
        assert seqs_of(r.read("a")) == [0] + seqs
    finally:
        r.close()


def test_auto_mode_finds_a_sparse_stream_by_its_first_unresolved_gap(rig):
    from dispatch.ordering import SPARSE

    r = subscribed(rig)                                    # order_mode="auto"
    r.step(records(OKX, BTC, Kind.BOOK, [100, 107, 115]))  # venue update ids skip
    assert seqs_of(r.read("a")) == [100]
    r.step(advance_ns=160 * MS)                            # the first gap costs the lateness
    assert seqs_of(r.read("a")) == [107, 115]
    s = r.core.streams.find(r.core.streams.keys[0])
    assert r.core.streams.mode[s] == SPARSE
    r.step(records(OKX, BTC, Kind.BOOK, [130, 122, 141]))  # then: sorted per batch, no waiting
    assert seqs_of(r.read("a")) == [122, 130, 141]
    r.step(records(OKX, BTC, Kind.BOOK, [135, 150]))       # 135 is older than 141: late
    assert seqs_of(r.read("a")) == [150]
    assert r.core.orderer.counts["sparse_streams"] == 1


def test_a_stream_ingest_declares_sparse_passes_at_once_without_a_probe(rig):
    from dispatch.ordering import SPARSE

    r = subscribed(rig)                                    # order_mode="auto"
    sparse = int(HeaderFlag.SPARSE_SEQ)
    r.step(records(OKX, BTC, Kind.BOOK, [100, 107, 115], flags=sparse))
    assert seqs_of(r.read("a")) == [100, 107, 115]         # no lateness paid
    s = r.core.streams.find(r.core.streams.keys[0])
    assert r.core.streams.mode[s] == SPARSE and r.core.orderer.counts["gap_unresolved"] == 0
    r.step(records(OKX, BTC, Kind.TRADE, [1, 3]))          # an undeclared stream still probes
    assert seqs_of(r.read("a")) == [1]


def test_auto_mode_keeps_waiting_for_gaps_in_a_gap_free_stream(rig):
    from dispatch.ordering import GAPLESS

    r = subscribed(rig, probe_records=64)
    r.step(records(OKX, BTC, Kind.TRADE, range(1, 65)))
    assert r.core.streams.mode[0] == GAPLESS
    r.step(records(OKX, BTC, Kind.TRADE, [66, 65]))
    assert seqs_of(r.read("a"))[-2:] == [65, 66]


def test_monotonic_mode_never_holds_a_record(rig):
    r = subscribed(rig, order_mode="monotonic")
    r.step(records(OKX, BTC, Kind.TICKER, [5, 9, 7]))
    r.step(records(OKX, BTC, Kind.TICKER, [8, 12]))
    assert seqs_of(r.read("a")) == [5, 7, 9, 12]
    assert r.core.orderer.depth() == {} and r.core.orderer.counts["late"] == 1
