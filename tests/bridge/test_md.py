"""Market data across hosts: raw batches over core NATS into local rings of the same names.

The receiving side's accounting is checked on hand-made batches (exact loss counts,
the first book of each instrument after a loss marked RESYNCED, bad batches dropped
and counted); then through real processes: a stand-in ingest on one host, md-out
there, md-in on the other, and a ring reader there that gets the same bytes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np
import orjson
import pytest

from bridge.md import MdIn, MdOut, decode, encode_header, subject
from events import EVENT, HeaderFlag
from shm import RingReader

from .conftest import kill, spawn, wait_until
from .md_writer import books

RESYNCED = int(HeaderFlag.RESYNCED)


def batch(epoch: int, first_pos: int, recs: np.ndarray) -> bytes:
    return encode_header(len(recs), epoch, first_pos) + recs.tobytes()


def test_loss_counted_exactly_and_first_books_marked(run_ctx):
    sink = MdIn(run_ctx.namespace, capacity=1024)
    subj = subject("md.testvenue")
    sink.on_message(subj, batch(7, 100, books(1, 6)))
    reader = RingReader.attach(run_ctx.namespace, "md.testvenue", EVENT, start="oldest")
    try:
        got = np.array(reader.try_read())
        reader.release()
        assert got.tobytes() == books(1, 6).tobytes()

        sink.on_message(subj, batch(7, 106, books(7, 3)))      # in order: nothing lost, nothing marked
        sink.on_message(subj, batch(7, 114, books(15, 6)))     # positions 109..113 never came
        st = sink.statistics()["rings"]["md.testvenue"]
        assert (st["received"], st["lost"], st["resets"]) == (15, 5, 0)
        got = np.array(reader.try_read())
        reader.release()
        flags = got["flags"] & RESYNCED
        assert flags[:3].tolist() == [0, 0, 0]
        assert flags[3:].tolist() == [RESYNCED] * 3 + [0] * 3  # one per instrument, the first after the loss
        plain = got.copy()
        plain["flags"] = 0
        assert plain.tobytes() == books(7, 3).tobytes() + books(15, 6).tobytes()

        sink.on_message(subj, batch(9, 0, books(21, 2)))       # the sender restarted: unknown loss
        st = sink.statistics()["rings"]["md.testvenue"]
        assert (st["lost"], st["resets"], st["marked"]) == (5, 1, 5)
        got = np.array(reader.try_read())
        reader.release()
        assert (got["flags"] & RESYNCED).tolist() == [RESYNCED, RESYNCED]
    finally:
        reader.close()
        for s in sink.sinks.values():
            s.writer.close()


def test_bad_batches_are_dropped_and_counted(run_ctx):
    sink = MdIn(run_ctx.namespace, capacity=1024)
    good = batch(1, 0, books(1, 2))
    wrong_schema = bytearray(good)
    wrong_schema[6] ^= 0xFF
    for data in (b"", b"x" * 40, good[:-5], bytes(wrong_schema)):
        sink.on_message(subject("md.v"), data)
    assert sink.bad == 4 and not sink.sinks
    sink.on_message(subject("md.v"), good)
    assert sink.statistics()["rings"]["md.v"]["received"] == 2
    h, recs = decode(good)
    assert int(h["count"]) == 2 and recs.tobytes() == books(1, 2).tobytes()
    for s in sink.sinks.values():
        s.writer.close()


def stats_of(p, what: str) -> dict:
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(20)
    lines = [ln for ln in open(what, "rb").read().splitlines() if ln.startswith(b"{")]
    return orjson.loads(lines[-1])


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_md_rings_across_hosts_through_processes(nats_node, hosts, reap):
    src, dst = hosts
    spawn(src, reap, "tests.bridge.md_writer", "testvenue", "2000")
    out = spawn(src, reap, "bridge", "md-out", "--nats", nats_node.url, "--ring", "md.testvenue")
    inn = spawn(dst, reap, "bridge", "md-in", "--nats", nats_node.url, "--ring", "md.testvenue")
    wait_until(lambda: "md.testvenue" in dst.namespace.names(), 30, "md-in to create md.testvenue")
    reader = RingReader.attach(dst.namespace, "md.testvenue", EVENT, start="oldest")
    got = []
    try:
        def take(n):
            deadline = time.monotonic() + 30
            while sum(map(len, got)) < n and time.monotonic() < deadline:
                b = np.array(reader.try_read())
                reader.release()
                got.append(b) if len(b) else time.sleep(0.01)

        take(2000)
        kill(out)  # the sender dies: the receiver sees a new epoch, and marks the next books
        restart_at = sum(map(len, got))
        out = spawn(src, reap, "bridge", "md-out", "--nats", nats_node.url, "--ring", "md.testvenue")
        take(restart_at + 2000)
    finally:
        reader.close()
    recs = np.frombuffer(b"".join(b.tobytes() for b in got), EVENT)  # concatenate is not byte-exact on unions
    ids = recs["event_id"].astype(np.int64)
    flagged = np.flatnonzero(recs["flags"] & RESYNCED)
    assert len(flagged) == 3, "the first book of each of the 3 instruments after the restart, and no other"
    cut = int(flagged[0])  # the new sender's first record
    assert flagged.tolist() == [cut, cut + 1, cut + 2] and cut >= restart_at - 1024
    for run in (slice(0, cut), slice(cut, None)):
        assert (np.diff(ids[run]) == 1).all(), "records lost or reordered while nothing failed"
    plain = recs.copy()
    plain["flags"] = 0
    assert plain.tobytes() == books(int(ids[0]), cut).tobytes() + books(int(ids[cut]), len(ids) - cut).tobytes()
    assert ids[cut] > ids[cut - 1]
    log = dst.path("logs", "bridge-md-in.log")
    st = stats_of(inn, log)["rings"]["md.testvenue"]
    assert st["resets"] == 1 and st["lost"] == 0, st


def test_a_consumer_ring_read_from_when_it_is_added_and_closed_on_both_sides(tmp_path):
    """MdOut.add reads a lossless ring from then on; when its writer goes, a 0-record
    batch closes the receiving ring too, and the ring is not read again until added again."""
    from core.run import RunContext
    from shm import RingWriter
    src_ctx, dst_ctx = (RunContext(f"{n}{os.getpid()}{time.monotonic_ns() % 10**6}", tmp_path / n)
                        for n in ("src", "dst"))
    out = MdOut(src_ctx.namespace, [], announce_gone=True)
    sink = MdIn(dst_ctx.namespace, capacity=1024)
    w = RingWriter.create(src_ctx.namespace, "consumer.x.md", EVENT, 1024, policy="lossless", reader_timeout_ns=None)
    reader = None
    try:
        w.write_batch(books(1, 5))           # before the bridge reads: not sent
        out.add("consumer.x.md")
        w.write_batch(books(6, 5))
        sink.ensure("consumer.x.md", 256)     # as ctl-expose does on the register result
        reader = RingReader.attach(dst_ctx.namespace, "consumer.x.md", EVENT, start="oldest")
        now = time.monotonic()
        for subj, parts in out.pump(now):
            sink.on_message(subj, b"".join(parts))
        got = np.array(reader.try_read())
        reader.release()
        assert got.tobytes() == books(6, 5).tobytes() and reader.writer_state() == "alive"

        w.close()                              # dispatch released the consumer
        sent = out.pump(now + 1.0)
        assert [len(decode(b"".join(p))[1]) for _, p in sent] == [0] and not out.rings
        for subj, parts in sent:
            sink.on_message(subj, b"".join(parts))
        assert reader.writer_state() != "alive", "the receiving ring is closed as the source's was"
        assert sink.statistics()["rings"]["consumer.x.md"]["gone"] == 1
        assert out.pump(now + 2.0) == [], "a ring gone is not read again until added again"
    finally:
        if reader is not None:
            reader.close()
        out.close()
        asyncio.run(sink.close_all())
        for c in (src_ctx, dst_ctx):
            c.namespace.cleanup()
