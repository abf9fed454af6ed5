"""The dispatch process loop: input rings read by `do_work`, parking on their futexes."""

from __future__ import annotations

import threading

import pytest

from dispatch.config import DispatchConfig
from dispatch.park import HAVE_WAITV, Parker
from dispatch.process import DispatchProcess
from tests.synthetic import FakeClock, records
from events import EVENT, Kind, Provider, instrument_id
from shm import RingReader, RingWriter

from .conftest import seqs_of

pytestmark = pytest.mark.timeout(30)
OKX = int(Provider.OKX)
BTC = "BTC-USDT"
MS = 1_000_000


@pytest.fixture
def proc(run_ctx):
    """A DispatchProcess on a fake clock, driven by calling `do_work` (no thread)."""
    p = DispatchProcess(run_ctx, DispatchConfig(), telemetry="", discover_ns=10 * MS,
                        clock=FakeClock())
    p.do_work()  # the first scan: rings found later are read from their oldest record
    try:
        yield p
    finally:
        p.close()


def consumer(proc, ns, name="a"):
    w = RingWriter.create(ns, f"consumer.{name}.md", EVENT, 1024, policy="lossless",
                          reader_timeout_ns=None)
    proc.core.subscribe(proc.core.add_consumer(name, w), instrument_id(BTC))
    return w, RingReader.attach(ns, f"consumer.{name}.md", EVENT, start="oldest")


def drained(reader) -> list[int]:
    b = reader.try_read(1 << 12)
    seqs = seqs_of(b)
    reader.release()
    return seqs


def test_a_lapped_ingest_ring_does_not_hold_its_streams_for_the_lost_records(proc, run_ctx):
    w_out, r_out = consumer(proc, run_ctx.namespace)
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64) as md:
        proc.clock.advance(10 * MS)
        proc.do_work()                                   # finds md.okx
        md.write_batch(records(OKX, BTC, Kind.TRADE, range(1, 65)))
        proc.do_work()
        assert drained(r_out) == list(range(1, 65))      # probed gap-free: gaps wait from now on
        md.write_batch(records(OKX, BTC, Kind.TRADE, range(65, 301)))  # laps dispatch by 172
        while proc.do_work():                            # the clock stands still
            pass
        # it goes on a quarter ring past the oldest left (shm.reader.lap_resume), at once,
        # not after the lateness
        assert drained(r_out) == list(range(237 + 16, 301))
        assert proc.core.orderer.depth() == {}
        counters = proc.core.metrics()["counters"]
        assert counters["order.lapped"] == 1 and counters["order.gap_unresolved"] == 0
    r_out.close()
    w_out.close()


def test_a_parked_loop_wakes_when_any_of_its_rings_publishes(run_ctx):
    rings = [RingWriter.create(run_ctx.namespace, f"md.t{i}", EVENT, 64) for i in range(3)]
    readers = [RingReader.attach(run_ctx.namespace, f"md.t{i}", EVENT) for i in range(3)]
    parker = Parker(readers)
    tokens = parker.tokens()
    woke = threading.Event()

    def park():
        parker.park(tokens, 20_000_000_000)  # 20 s: only a publish ends it within the test
        woke.set()

    t = threading.Thread(target=park)
    t.start()
    rings[2].write_batch(records(OKX, BTC, Kind.TRADE, [1]))
    assert woke.wait(10)
    t.join(10)
    if HAVE_WAITV:  # one futex_waitv on all three rings, not one ring in turn
        assert parker.parks == 1
    for r in readers:
        r.close()
    for w in rings:
        w.close()


def test_a_park_returns_at_once_when_a_ring_published_after_the_tokens_were_taken(run_ctx):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64) as md:
        reader = RingReader.attach(run_ctx.namespace, "md.okx", EVENT)
        parker = Parker([reader])
        tokens = parker.tokens()
        md.write_batch(records(OKX, BTC, Kind.TRADE, [1]))  # after the look, before the park
        done = threading.Event()
        t = threading.Thread(target=lambda: (parker.park(tokens, 20_000_000_000), done.set()))
        t.start()
        assert done.wait(10)
        t.join(10)
        reader.close()


def test_the_loop_parks_no_longer_than_its_next_timer(proc, run_ctx):
    w_out, r_out = consumer(proc, run_ctx.namespace)
    assert proc.idle_ns(1_000_000, 100_000) == 1_000_000
    proc.core.process(records(OKX, BTC, Kind.TRADE, [1]))
    proc.core.process(records(OKX, BTC, Kind.TRADE, [3]))  # 3 waits for 2: the flush timer
    proc.clock.advance(45 * MS)                            # the flush is due 50 ms after start
    proc.do_work()
    assert proc.idle_ns(10**12, 100_000) == proc.core.next_due_ns() - proc.clock() == 5 * MS
    r_out.close()
    w_out.close()


def test_input_left_unread_round_after_round_makes_dispatch_meter_its_fan_out(proc, run_ctx):
    w_out = RingWriter.create(run_ctx.namespace, "consumer.a.md", EVENT, 1 << 15,
                              policy="lossless", reader_timeout_ns=None)
    proc.core.subscribe(proc.core.add_consumer("a", w_out), instrument_id(BTC))
    r_out = RingReader.attach(run_ctx.namespace, "consumer.a.md", EVENT, start="oldest")
    seq = 1
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 1 << 15) as md:
        proc.clock.advance(10 * MS)
        proc.do_work()                                    # finds md.okx
        md.write_batch(records(OKX, BTC, Kind.BOOK, range(seq, seq + 2048)))
        seq += 2048
        for _ in range(15):  # each round reads 4096 and leaves 2048 behind: it never catches up
            md.write_batch(records(OKX, BTC, Kind.BOOK, range(seq, seq + 4096)))
            seq += 4096
            proc.clock.advance(20 * MS)
            proc.do_work()
            drained(r_out)
        assert proc.core.saturation.saturated
        gauges = proc.core.metrics()["gauges"]
        assert gauges["dispatch.saturated"] == 1 and 0 < gauges["fanout.budget"]
        assert proc.core.outlets[0].coalesced > 0         # books over the budget: latest wins
        for _ in range(100):  # the input drains: metering is lifted again
            proc.clock.advance(20 * MS)
            proc.do_work()
            drained(r_out)
        assert not proc.core.saturation.saturated and proc.core.fair.rate == 0
        assert proc.core.metrics()["counters"]["dispatch.saturated_ns"] > 0
    r_out.close()
    w_out.close()


def test_a_park_after_a_partial_read_returns_at_once(run_ctx):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64) as md:
        reader = RingReader.attach(run_ctx.namespace, "md.okx", EVENT)
        parker = Parker([reader])
        md.write_batch(records(OKX, BTC, Kind.TRADE, [1, 2, 3]))
        assert len(reader.try_read(2)) == 2                  # one record left behind
        reader.release()
        done = threading.Event()
        t = threading.Thread(target=lambda: (parker.park(parker.read_up_to(), 20_000_000_000),
                                             done.set()))
        t.start()
        assert done.wait(10)
        t.join(10)
        reader.close()
