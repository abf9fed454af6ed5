"""The scalar fast path for tiny batches decides exactly what the vector path decides."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tests.synthetic import records
from events import HeaderFlag, Kind, Provider, instrument_id
from events.codec import concat, words

from .conftest import CoreRig, seqs_of

pytestmark = pytest.mark.timeout(120)  # hang guard; ~3 s on an idle machine
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC = "BTC-USDT"
MS = 1_000_000
STREAMS = [(p, k) for p in (OKX, BIN) for k in (Kind.BOOK, Kind.TRADE, Kind.TICKER)]


def twin_rigs(run_ctx, **config):
    """Two cores fed alike: `fast` tries the scalar path, `ref` never does."""
    rigs = {}
    for name, limit in (("fast", 16), ("ref", 0)):
        r = CoreRig(run_ctx.namespace, run_ctx.run_dir / name, **config)
        r.core.small.limit = limit
        r.name = name
        everything = r.consumer(f"{name}_all", capacity=16)         # small: it backlogs
        trades = r.consumer(f"{name}_trades", capacity=1024)
        r.core.subscribe(everything, instrument_id(BTC))
        r.core.subscribe(trades, instrument_id(BTC), kinds=(int(Kind.TRADE),))
        rigs[name] = r
    return rigs["fast"], rigs["ref"]


def state(r: CoreRig) -> dict:
    st, n = r.core.streams, len(r.core.streams)
    m = r.core.metrics()
    return {"last_seq": st.last_seq[:n].tolist(), "seen": st.seen[:n].tolist(),
            "mode": st.mode[:n].tolist(), "held": st.held[:n].tolist(),
            "dedup": r.core.dedup.table.tobytes(), "orderer": dict(r.core.orderer.counts),
            "counters": {k.replace(f"consumer={r.name}_", "consumer="): v
                         for k, v in m["counters"].items()}}


def ring_words(r: CoreRig, name: str) -> np.ndarray:
    got = r.read(name)
    w = words(got).copy()
    w[:, 1] &= np.uint64(0xFFFFFFFF)  # consumer_id: the same slot, but compare payloads only
    return w


record_plan = hs.tuples(hs.integers(0, len(STREAMS) - 1),
                        hs.sampled_from(["next", "next", "next", "skip", "repeat", "old", "reset"]))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hs.data())
def test_tiny_batches_through_the_fast_path_match_the_vector_path(run_ctx, data):
    mode = data.draw(hs.sampled_from(["auto", "gapless", "monotonic"]))
    fast, ref = twin_rigs(run_ctx, order_mode=mode, probe_records=4, dedup_bits=10)  # compared often
    try:
        nxt = {s: 1 for s in range(len(STREAMS))}
        ts = 1
        for _ in range(data.draw(hs.integers(5, 25))):
            plan = data.draw(hs.lists(record_plan, min_size=1, max_size=12))
            parts = []
            for s, how in plan:
                p, k = STREAMS[s]
                flags = 0
                if how == "next":
                    seq = nxt[s]
                elif how == "skip":
                    seq = nxt[s] + 3
                elif how == "repeat":
                    seq = max(1, nxt[s] - 1)
                elif how == "old":
                    seq = max(1, nxt[s] - 5)
                else:  # a resync back in time: the ids that follow were seen before
                    seq, flags = max(1, nxt[s] - 3), int(HeaderFlag.SNAPSHOT)
                nxt[s] = seq + 1 if flags else max(nxt[s], seq + 1)
                parts.append(records(p, BTC, k, [seq], flags=flags, ingest_ts_ns=ts))
                ts += 1
            batch = concat(parts)
            advance = data.draw(hs.sampled_from([0, 0, MS, 60 * MS]))
            for r in (fast, ref):
                r.step(batch.copy(), advance_ns=advance)
            if data.draw(hs.booleans()):  # the small ring is read only now and then
                assert np.array_equal(ring_words(fast, "fast_all"), ring_words(ref, "ref_all"))
            assert np.array_equal(ring_words(fast, "fast_trades"), ring_words(ref, "ref_trades"))
            assert state(fast) == state(ref)
    finally:
        fast.close()
        ref.close()


def test_in_order_single_records_take_the_fast_path_and_arrive_stamped(rig):
    r = rig()
    a = r.consumer("a")
    r.core.subscribe(a, instrument_id(BTC))
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2]))       # a new stream: the vector path
    for seq in range(3, 13):
        r.step(records(OKX, BTC, Kind.TRADE, [seq]))
    got = r.read("a")
    assert seqs_of(got) == list(range(1, 13))
    assert set(got["consumer_id"].tolist()) == {a.consumer_id}
    assert set(got["routing_version"].tolist()) == {r.core.version}
    assert r.core.small.admitted == 10


def test_a_gap_or_a_duplicate_leaves_the_fast_path_without_changing_anything(rig):
    r = rig()
    a = r.consumer("a")
    r.core.subscribe(a, instrument_id(BTC))
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2]))
    table = r.core.dedup.table.copy()
    last = r.core.streams.last_seq.copy()
    assert r.core.small.admit(records(OKX, BTC, Kind.TRADE, [3, 5])) is None   # a gap
    assert r.core.small.admit(records(OKX, BTC, Kind.TRADE, [3, 3])) is None   # a duplicate
    assert r.core.small.admit(records(OKX, BTC, Kind.BOOK, [1])) is None       # a new stream
    assert np.array_equal(r.core.dedup.table, table)
    assert np.array_equal(r.core.streams.last_seq, last)
    r.step(records(OKX, BTC, Kind.TRADE, [3, 5, 4]))
    assert seqs_of(r.read("a")) == [1, 2, 3, 4, 5]
