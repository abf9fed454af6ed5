"""Binance bookTicker and trade frames written a run at a time give the records one at a time would."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from events import EVENT, Kind, Provider
from venues.binance.md.deferred import MIN_RUN, RUN

from .helpers import Rig, depth_update

pytestmark = pytest.mark.timeout(60)

SNAP = {"lastUpdateId": 100, "bids": [["10.00000000", "1.00000000"]], "asks": [["11.00000000", "1.00000000"]]}


def spot_ticker(i: int, sym: str = "BTCUSDT", **extra) -> bytes:
    d = {"u": 1000 + i, "s": sym, "b": f"10.{i % 7:08d}", "B": f"{i}.{i * 37 % 10**8:08d}",
         "a": f"11.{i % 5:08d}", "A": f"{2 * i}.50000000", **extra}
    return orjson.dumps({"stream": f"{sym.lower()}@bookTicker", "data": d})


def spot_trade(i: int, sym: str = "BTCUSDT") -> bytes:
    d = {"e": "trade", "E": 1723161255612 + i, "s": sym, "t": 5000 + i, "p": f"10.{i:08d}",
         "q": f"0.{i * 13:08d}", "T": 1723161255611 + i, "m": i % 2 == 0, "M": True}
    return orjson.dumps({"stream": f"{sym.lower()}@trade", "data": d})


def usdm_ticker(i: int) -> bytes:
    d = {"e": "bookTicker", "u": 400 + i, "s": "BTCUSDT", "b": f"10.{i:03d}", "B": f"{i + 1}",
         "a": f"11.{i:03d}", "A": "2", "T": 1626992741000 + i, "E": 1626992741005 + i}
    return orjson.dumps({"stream": "btcusdt@bookTicker", "data": d})


def usdm_agg(i: int, **extra) -> bytes:
    d = {"e": "aggTrade", "E": 1626992741065 + i, "s": "BTCUSDT", "a": 57871185 + i, "p": "7.6110",
         "q": f"{i + 1}", "f": 1, "l": 2, "T": 1626992741011 + i, "m": i % 3 == 0, **extra}
    return orjson.dumps({"stream": "btcusdt@aggTrade", "data": d})


def mixed_frames(n: int) -> list[bytes]:
    """Tickers and trades of two symbols with depth diffs between them."""
    out, u = [], 101
    for i in range(n):
        out.append(spot_ticker(i, "BTCUSDT" if i % 3 else "ETHUSDT"))
        if i % 4 == 0:
            out.append(spot_trade(i))
        if i % 10 == 0:
            out.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": depth_update(
                "BTCUSDT", u, u, [[f"10.{i % 7:08d}", "2.00000000"]], [])}))
            u += 1
    return out


def feed(rig: Rig, frames, *, flush_each: bool) -> np.ndarray:
    for k, f in enumerate(frames):
        rig.adapter.on_frame(f, 1_700_000_000_000_000_000 + k)
        if flush_each:
            rig.pub.flush()
    recs = rig.records().copy()
    recs["trace_id"] = 0          # per-process counters: differ between two publishers
    return recs


def two_rigs(provider=Provider.BINANCE_SPOT, symbols=("BTCUSDT", "ETHUSDT")):
    rigs = []
    for _ in range(2):
        rig = Rig(provider, list(symbols))
        for s in symbols:
            rig.adapter.on_snapshot(s, SNAP, 1)
        rigs.append(rig)
    return rigs


def raw(recs: np.ndarray) -> np.ndarray:
    return recs.view(np.uint8).reshape(len(recs), EVENT.itemsize)


def test_runs_of_tickers_and_trades_give_the_records_of_one_frame_at_a_time():
    batched, single = two_rigs()
    frames = mixed_frames(3 * RUN // 2)            # a run written early, one at the flush
    got = feed(batched, frames, flush_each=False)
    want = feed(single, frames, flush_each=True)   # runs of one: the per-frame path
    assert len(got) == len(want) == len(frames)
    assert (raw(got) == raw(want)).all()
    assert list(got["kind"]) == [Kind.TICKER if b"bookTicker" in f else Kind.TRADE if b"@trade" in f
                                 else Kind.BOOK for f in frames]
    t = got[got["kind"] == Kind.TRADE][0]
    assert int(t["seq_provider"]) == 5000 and int(t["event_ts_ns"]) == 1723161255612_000000
    assert int(t["trade"]["side"]) == 2 and int(t["trade"]["px"]) == 1_000_000_000
    k = got[got["kind"] == Kind.TICKER][1]
    assert int(k["seq_provider"]) == 1001 and int(k["ticker"]["bid_sz"]) == 1_00000037
    assert batched.streams[0].messages == single.streams[0].messages > 0
    assert batched.pub.counts == single.pub.counts


def test_futures_tickers_and_agg_trades_in_runs_carry_event_times():
    batched, single = two_rigs(Provider.BINANCE_USDM, ("BTCUSDT",))
    frames = [f for i in range(MIN_RUN + 4) for f in (usdm_ticker(i), usdm_agg(i))]
    got = feed(batched, frames, flush_each=False)
    want = feed(single, frames, flush_each=True)
    assert (raw(got) == raw(want)).all() and len(got) == len(frames)
    k = got[got["kind"] == Kind.TICKER]
    assert [int(x) for x in k["event_ts_ns"][:2]] == [1626992741005_000000, 1626992741006_000000]
    a = got[got["kind"] == Kind.TRADE]
    assert [int(x) for x in a["seq_provider"][:2]] == [57871185, 57871186]


def test_a_bad_frame_inside_a_run_goes_to_the_dlq_and_the_rest_keep_their_order():
    rig = two_rigs()[0]
    frames = [spot_ticker(i) for i in range(MIN_RUN * 2)]
    frames[7] = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 1007, "s": "BTCUSDT", "b": "10.5.1", "B": "1", "a": "11", "A": "1"}})   # bad price
    frames[9] = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": True, "s": "BTCUSDT", "b": "10", "B": "1", "a": "11", "A": "1"}})      # bool id
    frames[11] = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 1011, "s": "ETHUSDT", "b": "10", "B": "1", "a": "11", "A": "1"}})      # other symbol
    recs = feed(rig, frames, flush_each=False)
    assert rig.report.bad_frames == 3
    assert [int(s) for s in recs["seq_provider"]] == [1000 + i for i in range(len(frames))
                                                      if i not in (7, 9, 11)]


def test_documented_new_fields_keep_usdm_frames_on_the_run_path(monkeypatch):
    """USD-M aggTrade as documented today carries "nq" (quantity without RPI orders);
    new fields ("st", "ps") must not send a run down the row-by-row path."""
    from venues.binance.md.deferred import Deferred
    row_by_row = []
    one_by_one = Deferred._one_by_one
    monkeypatch.setattr(Deferred, "_one_by_one", lambda self, *a: (row_by_row.append(self.name),
                                                                    one_by_one(self, *a)))
    batched, single = two_rigs(Provider.BINANCE_USDM, ("BTCUSDT",))
    frames = [f for i in range(MIN_RUN + 4) for f in (
        usdm_ticker(i), usdm_agg(i, nq=f"{i + 1}", st="x", ps="BTCUSDT"))]
    got = feed(batched, frames, flush_each=False)
    assert row_by_row == []
    want = feed(single, frames, flush_each=True)
    assert (raw(got) == raw(want)).all() and len(got) == len(frames)
    assert batched.report.bad_frames == 0


def test_a_frame_with_other_keys_sends_its_run_row_by_row_with_the_same_result():
    batched, single = two_rigs()
    frames = [spot_ticker(i) for i in range(MIN_RUN * 2)]
    frames[5] = spot_ticker(5, E=1723161255000)    # an event time on spot: used, as one at a time
    frames[6] = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {"e": "trade", "s": "BTCUSDT"}})
    got = feed(batched, frames, flush_each=False)
    want = feed(single, frames, flush_each=True)
    assert (raw(got) == raw(want)).all() and len(got) == len(frames) - 1
    assert int(got[5]["event_ts_ns"]) == 1723161255000_000000
    assert batched.report.bad_frames == single.report.bad_frames == 1


def test_a_bug_in_the_run_path_costs_no_record(monkeypatch):
    from venues.binance.md.deferred import Deferred

    def broken(self, pub):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(Deferred, "_tickers", broken)
    rig = two_rigs()[0]
    frames = [spot_ticker(i) for i in range(MIN_RUN + 1)]
    recs = feed(rig, frames, flush_each=False)
    assert [int(s) for s in recs["seq_provider"]] == [1000 + i for i in range(len(frames))]
    assert rig.report.bad_frames == 0
