"""A stream's current state: kept by the core, handed to late subscribers, and read back
from the ingest rings by a restarted dispatch (dispatch.state, dispatch.seed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dispatch import seed as seed_mod
from dispatch.config import DispatchConfig
from dispatch.process import DispatchProcess
from dispatch.seed import newest_state
from tests.synthetic import FakeClock, interleave, records
from events import EVENT, HeaderFlag, Kind, Provider, concat, instrument_id
from shm import RingReader, RingWriter

pytestmark = pytest.mark.timeout(30)
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC, ETH = "BTC-USDT", "ETH-USDT"
REPLAYED = int(HeaderFlag.REPLAYED)
MS = 1_000_000
REPO = Path(__file__).resolve().parents[2]


def seen(recs: np.ndarray) -> list[tuple]:
    """(provider, symbol, kind, seq, replayed) of every market-data record, in order."""
    names = {instrument_id(BTC): BTC, instrument_id(ETH): ETH}
    md = recs[recs["provider"] != 0]
    return [(int(r["provider"]), names[int(r["instrument"])], Kind(int(r["kind"])).name.lower(),
             int(r["seq_provider"]), bool(int(r["flags"]) & REPLAYED)) for r in md]


def history() -> np.ndarray:
    """What an ingest ring holds when dispatch starts: books, trades and tickers of two
    instruments, the newest book of BTC-USDT being 5 and of ETH-USDT 2."""
    return interleave(records(OKX, BTC, Kind.BOOK, range(1, 6)),
                      records(OKX, BTC, Kind.TRADE, range(1, 6)),
                      records(OKX, BTC, Kind.TICKER, range(1, 4)),
                      records(OKX, ETH, Kind.BOOK, range(1, 3)))


# -- the core: a new subscriber starts with the current state --------------------------

def test_a_new_subscriber_starts_with_the_newest_book_and_ticker_then_the_stream_goes_on(rig):
    r = rig()
    r.step(history())                                  # nobody subscribed yet
    sub = r.consumer("a")
    assert r.core.subscribe(sub, instrument_id(BTC))
    first = r.read("a")
    assert seen(first) == [(OKX, BTC, "book", 5, True), (OKX, BTC, "ticker", 3, True)]
    assert (first["routing_version"] == r.core.version).all()
    r.step(interleave(records(OKX, BTC, Kind.BOOK, [6]), records(OKX, BTC, Kind.TRADE, [6])))
    assert seen(r.read("a")) == [(OKX, BTC, "book", 6, False), (OKX, BTC, "trade", 6, False)]


def test_only_streams_a_subscription_adds_get_their_state_and_only_once(rig):
    r = rig()
    r.step(concat([history(), records(BIN, BTC, Kind.BOOK, [40])]))
    sub = r.consumer("a")
    btc = instrument_id(BTC)
    assert r.core.subscribe(sub, btc, providers=(OKX,), kinds=(Kind.BOOK,))
    assert seen(r.read("a")) == [(OKX, BTC, "book", 5, True)]
    assert not r.core.subscribe(sub, btc, providers=(OKX,), kinds=(Kind.BOOK,))  # repeated
    assert r.core.subscribe(sub, btc)                  # adds okx ticker and trades, binance
    assert seen(r.read("a")) == [(BIN, BTC, "book", 40, True), (OKX, BTC, "ticker", 3, True)]
    assert r.core.unsubscribe(sub, btc, providers=(BIN,))
    assert r.core.subscribe(sub, btc, providers=(BIN,))  # back: it starts again from its state
    assert seen(r.read("a")) == [(BIN, BTC, "book", 40, True)]


def test_an_ingest_restart_forgets_that_providers_state(rig):
    r = rig()
    r.step(concat([history(), records(BIN, BTC, Kind.BOOK, [40])]))
    r.core.reset_source(OKX)
    sub = r.consumer("a")
    r.core.subscribe(sub, instrument_id(BTC))
    assert seen(r.read("a")) == [(BIN, BTC, "book", 40, True)]


def test_a_subscriber_with_a_full_ring_gets_the_state_when_room_frees_newest_first(rig):
    r = rig()
    r.step(history())
    sub = r.consumer("a", capacity=2)
    r.core.deliver_critical(sub, records(OKX, ETH, Kind.TRADE, [1]))  # stands in for a result
    r.core.deliver_critical(sub, records(OKX, ETH, Kind.TRADE, [2]))
    r.core.subscribe(sub, instrument_id(BTC))
    assert r.core.outlets[sub.slot].backlogged
    r.step(records(OKX, BTC, Kind.BOOK, [6]))          # newer than the kept 5: replaces it
    got = []
    for _ in range(4):
        got += seen(r.read("a"))
        r.step()
    assert [g for g in got if g[2] != "trade"] == [(OKX, BTC, "book", 6, False),
                                                   (OKX, BTC, "ticker", 3, True)]


# -- the process: a restarted dispatch reads the ingest ring back ---------------------

@pytest.fixture
def md(run_ctx):
    w = RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64)
    w.write_batch(history())
    try:
        yield w
    finally:
        w.close()


def start_dispatch(run_ctx, subscribe_first: bool):
    """A DispatchProcess on a fake clock (nothing runs until `do_work`) and consumer "a"."""
    p = DispatchProcess(run_ctx, DispatchConfig(), telemetry="", discover_ns=10 * MS,
                        clock=FakeClock())
    w = RingWriter.create(run_ctx.namespace, "consumer.a.md", EVENT, 1024, policy="lossless",
                          reader_timeout_ns=None)
    sub = p.core.add_consumer("a", w)
    if subscribe_first:
        p.core.subscribe(sub, instrument_id(BTC))
    reader = RingReader.attach(run_ctx.namespace, "consumer.a.md", EVENT, start="oldest")
    return p, sub, w, reader


def drain(reader) -> np.ndarray:
    b = reader.try_read(1 << 12).copy()
    reader.release()
    return b


def test_a_restarted_dispatch_starts_each_stream_with_its_newest_book_and_ticker_only(run_ctx, md):
    p, sub, w, reader = start_dispatch(run_ctx, subscribe_first=True)
    try:
        p.do_work()                                    # the first scan: md.okx is there
        assert seen(drain(reader)) == [(OKX, BTC, "ticker", 3, True), (OKX, BTC, "book", 5, True)]
        md.write_batch(interleave(records(OKX, BTC, Kind.BOOK, [6, 7]),
                                  records(OKX, BTC, Kind.TRADE, [6])))
        p.do_work()                                    # then on from where it started
        assert seen(drain(reader)) == [(OKX, BTC, "book", 6, False), (OKX, BTC, "trade", 6, False),
                                       (OKX, BTC, "book", 7, False)]
        c = p.core.metrics()["counters"]
        assert c["late_event.dropped{stage=order}"] == 0 and c["dedup.dropped"] == 0
        assert p.sources["md.okx"].reader.lost == 0
    finally:
        reader.close()
        p.close()
        w.close()


def test_a_consumer_that_subscribes_after_the_restart_gets_the_books_read_back(run_ctx, md):
    p, sub, w, reader = start_dispatch(run_ctx, subscribe_first=False)
    try:
        p.do_work()
        assert seen(drain(reader)) == []
        p.core.subscribe(sub, instrument_id(ETH))
        assert seen(drain(reader)) == [(OKX, ETH, "book", 2, True)]
        md.write_batch(records(OKX, ETH, Kind.BOOK, [3]))
        p.do_work()
        assert seen(drain(reader)) == [(OKX, ETH, "book", 3, False)]
    finally:
        reader.close()
        p.close()
        w.close()


def test_a_ring_found_after_the_first_scan_is_read_from_its_oldest_record_not_seeded(run_ctx):
    p, sub, w, reader = start_dispatch(run_ctx, subscribe_first=True)
    try:
        p.do_work()
        with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64) as md:  # a new ingest
            md.write_batch(records(OKX, BTC, Kind.BOOK, [1, 2], flags=int(HeaderFlag.SNAPSHOT)))
            p.clock.advance(10 * MS)
            p.do_work()                                # finds it
            p.do_work()
            assert seen(drain(reader)) == [(OKX, BTC, "book", 1, False), (OKX, BTC, "book", 2, False)]
    finally:
        reader.close()
        p.close()
        w.close()


def test_a_dead_ingests_ring_is_not_read_back(run_ctx):
    code = ("import os; from shm import RingWriter; from events import EVENT, Kind; "
            "from tests.synthetic import records; "
            f"w = RingWriter.create({run_ctx.run_id!r}, 'md.okx', EVENT, 64); "
            f"w.write_batch(records({OKX}, {BTC!r}, Kind.BOOK, [1, 2])); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20, cwd=REPO)
    p, sub, w, reader = start_dispatch(run_ctx, subscribe_first=True)
    try:
        p.do_work()
        assert "md.okx" in p.sources and seen(drain(reader)) == []
    finally:
        reader.close()
        p.close()
        w.close()


class LappedAfterFirstRead(RingReader):
    """A reader whose writer publishes `LAP` more records after its first batch."""

    writer: RingWriter
    more: np.ndarray
    reads: list

    def try_read(self, max_n=1024):
        if len(self.reads) == 1:
            self.writer.write_batch(self.more)
        b = super().try_read(max_n)
        self.reads.append((self.position - len(b), len(b)))  # (first position, count)
        return b


def lapped_read_back(run_ctx, monkeypatch, more):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 16) as md:
        md.write_batch(records(OKX, ETH, Kind.BOOK, [1]))             # position 0: quiet
        md.write_batch(records(OKX, BTC, Kind.BOOK, range(1, 16)))    # positions 1..15
        until = md.position
        LappedAfterFirstRead.writer, LappedAfterFirstRead.more = md, more
        LappedAfterFirstRead.reads = []
        monkeypatch.setattr(seed_mod, "RingReader", LappedAfterFirstRead)
        got = newest_state(run_ctx.namespace, "md.okx", until, batch=4)
        return got, LappedAfterFirstRead.reads, until


def test_a_lap_during_the_read_back_drops_what_was_kept_before_it(run_ctx, monkeypatch):
    """Positions 4..11 are lost (the lapped reader goes on a quarter ring past the oldest
    left, shm.reader.lap_resume): ETH-USDT's book 1, read before, may have had a newer one
    there, so only what follows the lap is kept; nothing is torn."""
    got, reads, until = lapped_read_back(run_ctx, monkeypatch,
                                         records(OKX, BTC, Kind.BOOK, range(16, 24)))
    assert reads[:2] == [(0, 4), (12, 4)]
    assert seen(got) == [(OKX, BTC, "book", 15, False)]


def test_a_lap_past_the_end_of_the_read_back_leaves_nothing_to_start_from(run_ctx, monkeypatch):
    got, reads, until = lapped_read_back(run_ctx, monkeypatch,
                                         records(OKX, BTC, Kind.BOOK, range(16, 40)))
    assert reads[1][0] >= until                        # the main reader's records: ignored
    assert len(got) == 0


def test_the_read_back_returns_the_newest_state_of_each_stream_in_ring_order(run_ctx, md):
    got = newest_state(run_ctx.namespace, "md.okx", md.position, batch=3)
    assert seen(got) == [(OKX, ETH, "book", 2, False), (OKX, BTC, "ticker", 3, False),
                         (OKX, BTC, "book", 5, False)]
