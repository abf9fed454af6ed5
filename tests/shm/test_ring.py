"""Single-process ring behaviour: wraparound, full rings, lapping, attach checks, debug."""

import numpy as np
import pytest

from shm import (LayoutMismatch, NoReaderSlot, RingClosed, RingReader, RingTimeout, RingWriter,
                 SegmentExists, SegmentNotFound, UseAfterRelease)
from tests.shm.conftest import records
from tests.shm.workers import REC

pytestmark = pytest.mark.timeout(30)


def seqs_of(reader, n=10_000):
    batch = reader.try_read(n)
    out = batch["seq"].tolist()
    reader.release()
    return out


def drain(reader):
    out = []
    while part := seqs_of(reader):
        out += part
    return out


def test_records_cross_the_end_of_the_array_in_order(ns):
    with RingWriter.create(ns, "r", REC, 8, policy="lossless") as w, \
            RingReader.attach(ns, "r", REC) as r:
        got = []
        for start in range(0, 100, 5):
            assert w.write_batch(records(start, 5)) == 5
            while True:  # a batch never crosses the end: read until drained
                part = seqs_of(r)
                if not part:
                    break
                got += part
        assert got == list(range(100))
        assert r.lost == 0


def test_claim_stops_at_the_end_of_the_array(ns):
    with RingWriter.create(ns, "r", REC, 8) as w:
        w.write_batch(records(0, 6))
        slots = w.try_claim(5)
        assert len(slots) == 2  # slots 6 and 7; the rest after the wrap
        slots[:] = records(6, 2)
        w.publish()
        assert len(w.try_claim(5)) == 5
        w.abandon()
        assert w.position == 8


def test_lossless_full_ring_refuses_then_accepts_after_release(ns):
    with RingWriter.create(ns, "r", REC, 4, policy="lossless") as w, \
            RingReader.attach(ns, "r", REC) as r:
        assert [w.try_write(rec) for rec in records(0, 5)] == [True, True, True, True, False]
        assert len(w.try_claim(3)) == 0
        w.abandon()
        with pytest.raises(RingTimeout, match="lossless ring full"):
            w.write(records(4, 1)[0], timeout_s=0.05)
        assert seqs_of(r, 2) == [0, 1]
        assert w.write_batch(records(4, 3)) == 2
        assert seqs_of(r) == [2, 3]
        assert seqs_of(r) == [4, 5]


def test_lossless_writer_never_passes_the_slowest_live_reader(ns):
    with RingWriter.create(ns, "r", REC, 16, policy="lossless") as w, \
            RingReader.attach(ns, "r", REC) as fast, RingReader.attach(ns, "r", REC) as slow:
        written = 0
        rng = np.random.default_rng(3)
        slow_got, fast_got = [], []
        for _ in range(300):
            written += w.write_batch(records(written, int(rng.integers(1, 10))))
            assert w.position - slow.position <= 16 and w.position - fast.position <= 16
            fast_got += seqs_of(fast)
            if rng.random() < 0.3:
                slow_got += seqs_of(slow, int(rng.integers(1, 6)))
        fast_got += seqs_of(fast)
        while len(slow_got) < written:
            slow_got += seqs_of(slow)
        assert fast_got == slow_got == list(range(written))


def test_lossless_with_no_reader_never_blocks(ns):
    with RingWriter.create(ns, "r", REC, 4, policy="lossless") as w:
        assert w.write_batch(records(0, 100)) == 100


def test_overwrite_writer_never_waits_and_a_lapped_reader_counts_exactly_what_it_lost(ns):
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        assert w.write_batch(records(0, 30)) == 30
        got = seqs_of(r)
        assert got == [24, 25, 26, 27, 28, 29]  # a quarter ring past the oldest still present
        assert r.lost == 24
        assert seqs_of(r) == []
        w.write_batch(records(30, 3))
        assert drain(r) == [30, 31, 32]
        assert r.lost == 24


def test_overwrite_reader_drops_a_slot_rewritten_after_its_position_was_read(ns):
    """The validate-after-copy check: simulate the writer lapping during the copy."""
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        w.write_batch(records(0, 8))
        # The writer starts rewriting slot 0 (position 8): odd sequence, payload half written.
        slots = w.try_claim(1)
        slots[:] = records(8, 1)
        got = seqs_of(r)
        assert got == list(range(1, 8))  # position 0's slot is being rewritten: lost, not torn
        assert r.lost == 1
        w.publish()
        assert seqs_of(r) == [8]


def test_try_read_one_and_read_into(ns):
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        assert r.try_read_one() is None
        w.write_batch(records(0, 3))
        assert int(r.try_read_one()["seq"]) == 0
        out = np.zeros(4, REC)
        assert r.read_into(out) == 2
        assert out["seq"][:2].tolist() == [1, 2]


def test_attach_with_another_dtype_fails_naming_both(ns):
    other = np.dtype([("seq", "<i8"), ("check", "<i4"), ("pad", "V52")])
    with RingWriter.create(ns, "r", REC, 8):
        with pytest.raises(LayoutMismatch, match=r"segment has .*check.*<i8.*caller expects .*<i4"):
            RingReader.attach(ns, "r", other)
        with RingReader.attach(ns, "r") as r:  # no dtype: take the segment's own
            assert r.dtype == REC


def test_attach_to_a_missing_ring_and_create_twice_fail_clearly(ns):
    with pytest.raises(SegmentNotFound, match="no segment"):
        RingReader.attach(ns, "nothing", REC)
    with RingWriter.create(ns, "r", REC, 8):
        with pytest.raises(SegmentExists):
            RingWriter.create(ns, "r", REC, 8)


def test_bad_geometry_is_refused_with_the_value():
    with pytest.raises(ValueError, match="capacity=1000"):
        RingWriter.create("x", "r", REC, 1000)
    with pytest.raises(ValueError, match="policy='sometimes'"):
        RingWriter.create("x", "r", REC, 8, policy="sometimes")


def test_reader_slots_run_out_and_come_back(ns):
    with RingWriter.create(ns, "r", REC, 8, max_readers=2):
        a = RingReader.attach(ns, "r", REC)
        b = RingReader.attach(ns, "r", REC)
        with pytest.raises(NoReaderSlot, match="all 2 reader slots"):
            RingReader.attach(ns, "r", REC)
        a.close()
        RingReader.attach(ns, "r", REC).close()
        b.close()


def test_start_positions_latest_oldest_and_resume(ns):
    with RingWriter.create(ns, "r", REC, 8) as w:
        w.write_batch(records(0, 12))
        with RingReader.attach(ns, "r", REC, start="latest") as r:
            assert seqs_of(r) == []
        with RingReader.attach(ns, "r", REC, start="oldest") as r:
            assert seqs_of(r) == list(range(4, 8))
        with RingReader.attach(ns, "r", REC, start=10) as r:
            assert seqs_of(r) == [10, 11]


def test_closed_ring_is_reported_to_a_waiting_reader_after_it_drained(ns):
    w = RingWriter.create(ns, "r", REC, 8)
    r = RingReader.attach(ns, "r", REC)
    w.write_batch(records(0, 2))
    w.close(unlink=False)
    assert r.wait_read(10, timeout_s=1)["seq"].tolist() == [0, 1]
    r.release()
    with pytest.raises(RingClosed):
        r.wait_read(10, timeout_s=1)
    assert r.writer_state() == "closed"
    r.close()


def test_wait_read_times_out_with_an_empty_batch(ns):
    with RingWriter.create(ns, "r", REC, 8), RingReader.attach(ns, "r", REC) as r:
        assert len(r.wait_read(10, timeout_s=0.01)) == 0


def test_debug_mode_poisons_released_batches(ns):
    with RingWriter.create(ns, "r", REC, 8, policy="lossless", debug=True) as w, \
            RingReader.attach(ns, "r", REC) as r:
        w.write_batch(records(0, 4))
        batch = r.try_read(4)
        assert r.check(batch)["seq"].tolist() == [0, 1, 2, 3]
        r.release()
        with pytest.raises(UseAfterRelease):
            r.check(batch)
        assert batch["seq"][0] != 0  # the memory really is poisoned
        w.write_batch(records(4, 1))
        assert seqs_of(r) == [4]  # and the ring itself is untouched


def test_reading_again_before_release_is_an_error(ns):
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        w.write_batch(records(0, 2))
        r.try_read(1)
        with pytest.raises(Exception, match="release"):
            r.try_read(1)
        r.release()


def test_close_unlinks_and_leaves_nothing(ns):
    w = RingWriter.create(ns, "a", REC, 8)
    r = RingReader.attach(ns, "a", REC)
    assert ns.names() == ["a"]
    r.close()
    assert ns.names() == ["a"]  # a reader never removes the name
    w.close()
    assert ns.names() == []


def test_single_record_byte_paths_round_trip_and_respect_a_full_lossless_ring(ns):
    with RingWriter.create(ns, "r", REC, 4, policy="lossless") as w, \
            RingReader.attach(ns, "r", REC) as r:
        raw = records(0, 6).tobytes()
        sent = [w.try_write_bytes(raw[i * 64 : (i + 1) * 64]) for i in range(6)]
        assert sent == [True] * 4 + [False] * 2
        got = [np.frombuffer(r.try_read_bytes(), REC)["seq"][0] for _ in range(4)]
        assert got == [0, 1, 2, 3] and r.try_read_bytes() is None
        assert w.try_write_bytes(raw[4 * 64 : 5 * 64])  # the reader's progress freed the ring
        assert np.frombuffer(r.try_read_bytes(), REC)["seq"][0] == 4


def test_byte_reads_of_an_overwrite_ring_count_lapped_records(ns):
    with RingWriter.create(ns, "r", REC, 4) as w, RingReader.attach(ns, "r", REC) as r:
        raw = records(0, 10).tobytes()
        for i in range(10):
            w.try_write_bytes(raw[i * 64 : (i + 1) * 64])
        got = []
        while (data := r.try_read_bytes()) is not None:
            got.append(int(np.frombuffer(data, REC)["seq"][0]))
        assert got == [7, 8, 9] and r.lost == 7  # lap_resume: a quarter ring past the oldest


def test_wait_says_whether_there_is_a_record_and_reads_nothing(ns):
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        assert r.wait(0.01) is False  # nothing published: times out
        w.write_batch(records(0, 2))
        assert r.wait(1.0) is True
        assert r.position == 0 and seqs_of(r) == [0, 1]  # wait read nothing
        w.close()
        assert r.wait(1.0) is False  # closed and read to the end: nothing will come


def test_wait_read_bytes_returns_records_one_at_a_time_then_times_out_then_says_closed(ns):
    w = RingWriter.create(ns, "r", REC, 8)
    r = RingReader.attach(ns, "r", REC)
    try:
        assert r.wait_read_bytes(0.01) is None
        w.write_batch(records(0, 2))
        got = [np.frombuffer(r.wait_read_bytes(1.0), REC)["seq"][0] for _ in range(2)]
        assert got == [0, 1] and r.wait_read_bytes(0.01) is None
        w.close(unlink=False)
        with pytest.raises(RingClosed):
            r.wait_read_bytes(1.0)
    finally:
        r.close()
        w.close()
