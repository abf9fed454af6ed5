"""Windowed merge through the core, on a fake clock."""

from __future__ import annotations

import pytest

from tests.synthetic import interleave, records
from events import Kind, Provider, instrument_id

pytestmark = pytest.mark.timeout(30)
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC = "BTC-USDT"
MS = 1_000_000


def merged_rig(rig, **config):
    r = rig(merge_window_ns=1000 * MS, merge_max_events=1000, **config)
    sub = r.consumer("m")
    r.core.merged_subscribe(sub, instrument_id(BTC), (OKX, BIN))
    return r


def merged_of(recs):
    return recs[recs["kind"] == Kind.MERGED]


def events_named(rig_, name):
    return rig_.core.tel.counters.get(name + ".events", 0)


def test_a_window_closes_by_time_into_one_event_with_each_providers_latest_state(rig):
    r = merged_rig(rig)
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [1, 2, 3], ingest_ts_ns=t, px=500),
                      records(BIN, BTC, Kind.TICKER, [7, 8], ingest_ts_ns=t, px=900)))
    assert len(merged_of(r.read("m"))) == 0
    r.step(advance_ns=999 * MS)
    assert len(merged_of(r.read("m"))) == 0
    r.step(advance_ns=1 * MS)
    (m,) = merged_of(r.read("m"))
    p = m["merged"]
    assert p["n_legs"] == 2 and p["event_count"] == 5
    legs = {int(leg["provider"]): leg for leg in p["legs"][:2]}
    assert legs[OKX]["seq_provider"] == 3 and legs[OKX]["bid_px"] == 503
    assert legs[BIN]["seq_provider"] == 8 and legs[BIN]["bid_px"] == 908
    assert p["merge_id"] == m["event_id"] != 0
    assert p["window_close_ns"] - p["window_open_ns"] == 1000 * MS
    assert r.core.merger.counts["closed_time"] == 1


def test_a_window_closes_by_count(rig):
    r = merged_rig(rig)
    r.core.merger.max_events = 4
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [1, 2, 3], ingest_ts_ns=t),
                      records(BIN, BTC, Kind.BOOK, [1, 2, 3], ingest_ts_ns=t + 1)))
    got = merged_of(r.read("m"))
    assert len(got) == 1 and got[0]["merged"]["event_count"] == 4
    assert r.core.merger.counts["closed_count"] == 1
    assert r.core.merger.counts["opened"] == 2  # the 5th record opened the next window


def test_a_late_fragment_is_dropped_and_reported(rig):
    r = merged_rig(rig)
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [1], ingest_ts_ns=t),
                      records(BIN, BTC, Kind.BOOK, [1], ingest_ts_ns=t)))
    r.step(advance_ns=1000 * MS)
    assert len(merged_of(r.read("m"))) == 1
    r.step(records(BIN, BTC, Kind.BOOK, [2], ingest_ts_ns=t + 10 * MS))  # belonged to it
    r.step()
    assert r.core.merger.counts["late"] == 1
    assert r.core.merger.counts["opened"] == 1
    assert events_named(r, "late_event.dropped") == 1


def test_a_partial_window_is_suppressed_and_reported_with_the_missing_provider(rig):
    r = merged_rig(rig)
    sent = []
    r.core.tel.event = lambda name, **f: sent.append((name, f))
    r.step(records(OKX, BTC, Kind.BOOK, [1, 2], ingest_ts_ns=r.clock.now))
    r.step(advance_ns=1000 * MS)
    r.step()
    assert len(merged_of(r.read("m"))) == 0
    assert r.core.merger.counts["suppressed"] == 1
    (name, fields), = [s for s in sent if s[0] == "merge.suppressed_partial"]
    assert fields["missing_providers"] == ["binance-spot"]
    assert fields["merge_key"] and fields["decision_id"] and "trace_id" in fields


def test_trades_and_other_instruments_do_not_feed_the_window(rig):
    r = merged_rig(rig)
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.TRADE, [1], ingest_ts_ns=t),
                      records(BIN, "ETH-USDT", Kind.BOOK, [1], ingest_ts_ns=t)))
    assert r.core.merger.counts["opened"] == 0


def test_consumers_of_one_merge_key_share_its_windows_and_each_get_the_event(rig):
    r = merged_rig(rig)
    other = r.consumer("n")
    r.core.merged_subscribe(other, instrument_id(BTC), (BIN, OKX))
    t = r.clock.now
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [1], ingest_ts_ns=t),
                      records(BIN, BTC, Kind.BOOK, [1], ingest_ts_ns=t)))
    r.step(advance_ns=1000 * MS)
    a, b = merged_of(r.read("m")), merged_of(r.read("n"))
    assert len(a) == len(b) == 1 and a[0]["event_id"] == b[0]["event_id"]
    assert a[0]["consumer_id"] != b[0]["consumer_id"]


def test_the_last_unsubscribe_discards_the_in_flight_window(rig):
    r = merged_rig(rig)
    sub = r.subs["m"]
    r.step(records(OKX, BTC, Kind.BOOK, [1], ingest_ts_ns=r.clock.now))
    assert r.core.merged_unsubscribe(sub, instrument_id(BTC), (OKX, BIN))
    assert r.core.merger.keys == {}
    r.step(advance_ns=2000 * MS)
    assert r.core.merger.counts["suppressed"] == 0
