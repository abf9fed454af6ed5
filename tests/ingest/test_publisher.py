"""Canonical records: layout, ids, and the batch into a real ring."""

from __future__ import annotations

import numpy as np
import pytest

from events import EVENT, SCHEMA_VERSION, HeaderFlag, Kind, Provider, Side, event_id, stamp_header, to_dict
from events.codec import byte_rows
from ingest.publisher import SMALL, Publisher
from marketdata.book import Book
from shm import RingReader, RingWriter

from .helpers import Collector

pytestmark = pytest.mark.timeout(60)


def _book():
    b = Book(2, 4)
    b.load([[f"{100 - i}.00", "1.5"] for i in range(30)], [["101.25", "0.0001"]], 42)
    return b


def test_records_carry_the_header_contract_and_payloads():
    sink = Collector()
    pub = Publisher(Provider.OKX, sink=sink, batch=4)
    pub.book(7, 2, 4, 42, 111, 222, _book(), 20, int(HeaderFlag.SNAPSHOT))
    pub.trade(7, 2, 4, 9001, 112, 223, 9001, 10125, 15000, int(Side.SELL))
    pub.ticker(7, 2, 4, 555, 113, 224, 10000, 15000, 10125, 1, 555)
    assert pub.flush() == 3
    recs = sink.records
    assert list(recs["kind"]) == [Kind.BOOK, Kind.TRADE, Kind.TICKER]
    assert set(recs["schema_version"]) == {SCHEMA_VERSION}
    assert set(recs["provider"]) == {Provider.OKX}
    assert set(recs["routing_version"]) == {0}
    assert list(recs["seq_provider"]) == [42, 9001, 555]
    assert list(recs["ingest_ts_ns"]) == [111, 112, 113]
    assert list(recs["event_ts_ns"]) == [222, 223, 224]
    for r in recs:
        assert int(r["event_id"]) == event_id(Provider.OKX, int(r["kind"]), 7, int(r["seq_provider"]))
    traces = [int(t) for t in recs["trace_id"]]
    assert traces == sorted(traces) and len(set(traces)) == 3
    book = to_dict(recs[0])
    assert recs[0]["flags"] == HeaderFlag.SNAPSHOT
    assert recs[0]["book"]["depth"] == 20 and recs[0]["book"]["n_bids"] == 20
    assert book["book"]["bids"][0] == ["100", "1.5"] and book["book"]["bids"][-1] == ["81", "1.5"]
    assert book["book"]["asks"] == [["101.25", "0.0001"]]
    assert book["book"]["last_update_id"] == 42
    assert to_dict(recs[1])["trade"] == {"trade_id": 9001, "px": "101.25", "sz": "1.5", "side": "SELL"}
    assert to_dict(recs[2])["ticker"]["ask_px"] == "101.25"


def test_reused_slots_hold_no_bytes_of_older_longer_records():
    sink = Collector()
    pub = Publisher(Provider.BINANCE_SPOT, sink=sink, batch=2)
    pub.book(1, 2, 4, 1, 1, 1, _book(), 20)
    pub.book(1, 2, 4, 2, 1, 1, _book(), 20)     # fills the stage: flushed
    pub.trade(1, 2, 4, 3, 1, 1, 3, 100, 1, 1)   # same slots again
    pub.ticker(1, 2, 4, 4, 1, 1, 1, 1, 2, 1, 4)
    pub.flush()
    raw = sink.records.view(np.uint8).reshape(-1, EVENT.itemsize)
    assert raw[0, 64 + 48:].any()              # the books were there
    assert not raw[2, 64 + 32:].any()          # trade payload: 32 bytes
    assert not raw[3, 64 + 48:].any()          # ticker payload: 48 bytes


def test_depth_limits_the_levels_and_pads_with_zeros():
    sink = Collector()
    pub = Publisher(Provider.BINANCE_SPOT, sink=sink)
    pub.book(1, 2, 4, 1, 1, 1, _book(), 5)
    pub.flush()
    b = sink.records[0]["book"]
    assert (b["depth"], b["n_bids"], b["n_asks"]) == (5, 5, 1)
    assert list(b["bid_px"][:6]) == [10000, 9900, 9800, 9700, 9600, 0]
    assert not b["ask_px"][1:].any()


def test_flushed_batches_reach_a_ring_reader(run_ctx):
    ns = run_ctx.namespace
    with RingWriter.create(ns, "md.test", EVENT, 64, policy="overwrite") as w:
        r = RingReader.attach(ns, "md.test", EVENT, start="oldest")
        try:
            pub = Publisher(Provider.BINANCE_SPOT, w, batch=16)
            for i in range(40):
                pub.trade(3, 8, 8, i, i, i, i, 100 + i, 1, int(Side.BUY))
            pub.flush()
            got = []
            while True:
                batch = r.try_read(64)
                if not len(batch):
                    r.release()
                    break
                got += [int(x) for x in batch["seq_provider"]]
                r.release()
            assert got == list(range(40))
        finally:
            r.close()


def test_records_match_the_same_values_written_field_by_field_with_numpy():
    """The packers follow events.EVENT: each record equals one built through numpy's fields."""
    sink = Collector()
    pub = Publisher(Provider.KRAKEN, sink=sink, batch=8, flags=int(HeaderFlag.REPLAYED))
    pub.book(7, 2, 4, 42, 111, 222, _book(), 20, int(HeaderFlag.SNAPSHOT))
    pub.trade(8, 3, 5, 9001, 112, 223, 9002, -10125, 15000, int(Side.SELL))
    pub.ticker(9, 1, 6, 555, 113, 224, 10000, 15000, 10125, 1, 556)
    pub.flush()
    want = np.zeros(3, EVENT)
    for rec, (kind, inst, seq, ingest, event, flags) in zip(want, [
            (Kind.BOOK, 7, 42, 111, 222, int(HeaderFlag.SNAPSHOT)), (Kind.TRADE, 8, 9001, 112, 223, 0),
            (Kind.TICKER, 9, 555, 113, 224, 0)]):
        stamp_header(rec, kind, Provider.KRAKEN, inst, seq_provider=seq, ingest_ts_ns=ingest,
                     event_ts_ns=event, flags=flags | int(HeaderFlag.REPLAYED))
    b = want[0]["book"]
    b["depth"], b["n_bids"], b["n_asks"], b["last_update_id"] = 20, 20, 1, 42
    b["px_scale"], b["sz_scale"] = 2, 4
    b["bid_px"], b["bid_sz"] = [10000 - 100 * i for i in range(20)], [15000] * 20
    b["ask_px"][0], b["ask_sz"][0] = 10125, 1
    t = want[1]["trade"]
    t["trade_id"], t["px"], t["sz"], t["side"] = 9002, -10125, 15000, Side.SELL
    t["px_scale"], t["sz_scale"] = 3, 5
    k = want[2]["ticker"]
    k["bid_px"], k["bid_sz"], k["ask_px"], k["ask_sz"], k["update_id"] = 10000, 15000, 10125, 1, 556
    k["px_scale"], k["sz_scale"] = 1, 6
    got = sink.records
    want["event_id"], want["trace_id"] = got["event_id"], got["trace_id"]   # stamped at flush
    assert byte_rows(got).tobytes() == byte_rows(want).tobytes()


def test_fill_writes_the_same_bytes_as_one_record_at_a_time():
    columns = {Kind.TICKER: ([10, 11, 12], [7, 0, 9], [13, 14, 15], [4, 5, 6], [3, 4, 5]),
               Kind.TRADE: ([7, 8, 9], [100, 101, 102], [-5, 6, 7], [1, 2, 1])}
    for kind, payload in columns.items():
        one, many = Collector(), Collector()
        pubs = Publisher(Provider.OKX, sink=one), Publisher(Provider.OKX, sink=many)
        for p in pubs:
            p.declare_sparse([kind])
        rows: list[int] = []
        for p in pubs:
            rows.clear()
            for _ in range(3):
                p.claim(rows)
        write = pubs[0].ticker if kind == Kind.TICKER else pubs[0].trade
        seq, ingest = [5, 6, 7], [50, 60, 70]
        for r in rows:
            write(3, 2, 4, seq[r], ingest[r], 99, *(c[r] for c in payload), row=r)
        pubs[1].fill(kind, rows, 3, 2, 4, seq, ingest, 99, *payload)
        for p in pubs:
            p.flush()
        a, b = one.records, many.records
        a["trace_id"] = b["trace_id"]   # per-process counters: the only difference
        assert byte_rows(a).tobytes() == byte_rows(b).tobytes()
        assert pubs[0].counts == pubs[1].counts


def test_a_dropped_claimed_row_is_skipped_and_later_short_records_carry_no_older_bytes():
    sink = Collector()
    pub = Publisher(Provider.BINANCE_SPOT, sink=sink, batch=4)
    pub.book(1, 2, 4, 1, 1, 1, _book(), 20)
    pub.ticker(1, 2, 4, 2, 1, 1, 1, 1, 2, 1, 2)
    rows: list[int] = []
    pub.claim(rows)                             # a frame that turns out bad
    pub.drop(rows[0])
    pub.trade(1, 2, 4, 3, 1, 1, 3, 100, 1, 1)   # fills the stage: flushed without the gap
    pub.trade(1, 2, 4, 4, 1, 1, 4, 100, 1, 1)   # row 0 held the book, row 1 the ticker
    pub.trade(1, 2, 4, 5, 1, 1, 5, 100, 1, 1)
    pub.trade(1, 2, 4, 6, 1, 1, 6, 100, 1, 1)   # row 3: held a moved record
    pub.flush()
    recs = sink.records
    assert [int(s) for s in recs["seq_provider"]] == [1, 2, 3, 4, 5, 6]
    raw = recs.view(np.uint8).reshape(-1, EVENT.itemsize)
    assert not raw[3:, 64 + 32:].any()          # trade payloads are 32 bytes


@pytest.mark.parametrize("n", [1, SMALL - 1, SMALL, 100])
def test_ids_are_the_same_one_by_one_and_by_numpy(n):
    sink = Collector()
    pub = Publisher(Provider.OKX, sink=sink, batch=256)
    for i in range(n):
        pub.trade(7 + i % 3, 2, 4, 10**15 + i * 7919, 1, 1, i, 100, 1, 1)
    pub.flush()
    pub.ticker(9, 2, 4, 5, 1, 1, 1, 1, 2, 1, 5)
    pub.flush()
    recs = sink.records
    assert [int(x) for x in recs["event_id"]] == [
        event_id(int(Provider.OKX), int(r["kind"]), int(r["instrument"]), int(r["seq_provider"])) for r in recs]
    trace = [int(x) for x in recs["trace_id"]]
    assert trace == list(range(trace[0], trace[0] + n + 1))


def test_declared_sparse_kinds_carry_the_flag_on_every_path():
    sink = Collector()
    pub = Publisher(Provider.BINANCE_SPOT, sink=sink, batch=64, flags=int(HeaderFlag.REPLAYED))
    pub.declare_sparse((Kind.BOOK, Kind.TICKER))
    pub.book(1, 2, 4, 1, 1, 1, _book(), 20, int(HeaderFlag.SNAPSHOT))
    pub.ticker(1, 2, 4, 2, 1, 1, 1, 1, 2, 1, 2)
    pub.trade(1, 2, 4, 3, 1, 1, 3, 100, 1, 1)
    rows: list[int] = []
    for _ in range(3):
        pub.claim(rows)
    pub.fill(Kind.TICKER, rows[:2], 1, 2, 4, [4, 5], [1, 1], 0, [1, 1], [1, 1], [2, 2], [1, 1], [4, 5])
    pub.trade(1, 2, 4, 6, 1, 1, 6, 100, 1, 1, row=rows[2])
    pub.flush()
    sparse, replayed = int(HeaderFlag.SPARSE_SEQ), int(HeaderFlag.REPLAYED)
    got = [(int(r["kind"]), int(r["flags"])) for r in sink.records]
    assert got == [(Kind.BOOK, sparse | replayed | int(HeaderFlag.SNAPSHOT)), (Kind.TICKER, sparse | replayed),
                   (Kind.TRADE, replayed), (Kind.TICKER, sparse | replayed), (Kind.TICKER, sparse | replayed),
                   (Kind.TRADE, replayed)]
