"""Rings between real processes: broadcast, dead readers, dead writers, torn reads."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from shm import RingReader, RingTimeout, RingWriter
from shm.cleanup import sweep_stale
from tests.conftest import REPO
from tests.shm.conftest import records
from tests.shm.workers import REC

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(90)]


def spawn(reap, *args) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "tests.shm.workers", *map(str, args)], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    reap.append(p)
    return p


def expect(p: subprocess.Popen, key: str) -> dict:
    line = p.stdout.readline()
    assert line, f"worker exited early with {p.wait()}"
    msg = orjson.loads(line)
    assert msg.get(key), msg
    return msg


def test_broadcast_to_three_reader_processes_delivers_every_record_in_order(ns, reap):
    count = 200_000
    with RingWriter.create(ns, "b", REC, 1024, policy="lossless") as w:
        readers = [spawn(reap, "read_all", ns.run, "b", count) for _ in range(3)]
        for p in readers:
            expect(p, "ready")
        w.write_all(records(0, count), timeout_s=60)
        results = [expect(p, "done") for p in readers]
    assert all(r == {"done": True, "received": count, "bad_batches": 0, "lost": 0} for r in results)


def test_a_sigkilled_reader_stops_holding_a_lossless_writer_back(ns, reap):
    with RingWriter.create(ns, "k", REC, 64, policy="lossless") as w:
        hung = spawn(reap, "attach_and_hang", ns.run, "k")
        expect(hung, "ready")
        assert w.write_batch(records(0, 100)) == 64  # held back by the hung reader
        with pytest.raises(RingTimeout):
            w.write_all(records(64, 1), timeout_s=0.05)
        hung.send_signal(signal.SIGKILL)
        hung.wait()  # reaped: its pid is gone
        w.write_all(records(64, 1000), timeout_s=10)
        assert w.position == 1064
        assert [e["reason"] for e in w.evicted] == ["pid_dead"]


def test_an_unreaped_sigkilled_reader_counts_as_dead_too(ns, reap):
    with RingWriter.create(ns, "z", REC, 64, policy="lossless") as w:
        hung = spawn(reap, "attach_and_hang", ns.run, "z")
        expect(hung, "ready")
        w.write_batch(records(0, 64))
        os.kill(hung.pid, signal.SIGKILL)
        # Not waited for: a zombie until the test's teardown reaps it.
        deadline = time.monotonic() + 10
        while not w.write_batch(records(64, 1)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.position == 65


def test_a_stale_heartbeat_evicts_a_live_reader_that_stopped_reading(ns):
    with RingWriter.create(ns, "s", REC, 8, policy="lossless", reader_timeout_ns=1) as w:
        r = RingReader.attach(ns, "s", REC)
        assert w.write_batch(records(0, 20)) == 20
        assert w.evicted[0]["reason"] == "heartbeat_stale"
        with pytest.raises(Exception, match="evicted"):
            r.try_read()
        r.close()


def test_readers_detect_a_killed_writer_and_a_sweep_removes_its_segment(ns, reap):
    writer = spawn(reap, "write_forever", ns.run, "dead", 1024)
    expect(writer, "ready")
    r = RingReader.attach(ns, "dead", REC)
    assert len(r.wait_read(10, timeout_s=5)) > 0
    r.release()
    assert r.writer_state() == "alive"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert r.writer_state() == "dead"
    r.close()
    removed, _ = sweep_stale()
    assert ns.full_name("dead") in removed
    assert ns.names() == []


def test_a_recreated_segment_is_seen_as_replaced_by_old_readers(ns):
    w = RingWriter.create(ns, "x", REC, 8)
    r = RingReader.attach(ns, "x", REC)
    w.close()
    w2 = RingWriter.create(ns, "x", REC, 8)
    assert r.writer_state() == "replaced"
    r.close()
    w2.close()


def test_overwrite_readers_never_see_a_torn_record_under_a_racing_writer(ns, reap):
    count = 400_000
    writer = spawn(reap, "write_overwrite_burst", ns.run, "t", 256, count)
    expect(writer, "ready")
    readers = [spawn(reap, "read_overwrite_validate", ns.run, "t", count) for _ in range(2)]
    for p in readers:
        expect(p, "ready")
    writer.stdin.write("go\n")
    writer.stdin.flush()
    expect(writer, "done")
    results = [expect(p, "done") for p in readers]
    writer.stdin.write("close\n")
    writer.stdin.flush()
    writer.wait(timeout=10)
    for res in results:
        assert res["torn"] == 0 and res["disorder"] == 0, res
        assert res["last"] == count - 1
        assert res["received"] + res["lost"] == count, res  # every position accounted for


def test_a_reader_process_exiting_does_not_remove_the_segment(ns, reap):
    with RingWriter.create(ns, "keep", REC, 1024, policy="lossless") as w:
        p = spawn(reap, "read_all", ns.run, "keep", 10)
        expect(p, "ready")
        w.write_batch(records(0, 10))
        expect(p, "done")
        assert p.wait(timeout=10) == 0
        assert ns.names() == ["keep"]
        assert w.write_batch(records(10, 5)) == 5
    assert ns.names() == []


def test_a_restarted_writer_replaces_the_segment_of_its_dead_predecessor(ns, reap):
    first = spawn(reap, "write_forever", ns.run, "again", 1024)
    expect(first, "ready")
    r = RingReader.attach(ns, "again", REC)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = spawn(reap, "write_forever", ns.run, "again", 1024)
    expect(second, "ready")
    assert r.writer_state() == "replaced"
    r.close()
    with RingReader.attach(ns, "again", REC) as fresh:
        assert fresh.writer_state() == "alive"
        assert len(fresh.wait_read(10, timeout_s=5)) > 0
        fresh.release()
    with pytest.raises(Exception, match="exists"):
        RingWriter.create(ns, "again", REC, 8)  # a live writer's segment is never replaced
