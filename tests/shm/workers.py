"""Ring roles run as separate processes by the tests: `python -m tests.shm.workers ROLE ...`.

Each role prints one JSON line on stdout when it is ready ({"ready": true}) and one
with its result at the end, so that tests wait on events, not on sleeps.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import orjson

from shm import RingReader, RingWriter

REC = np.dtype([("seq", "<i8"), ("check", "<i8"), ("pad", "V48")])  # 64 bytes


def say(**kw) -> None:
    sys.stdout.write(orjson.dumps(kw).decode() + "\n")
    sys.stdout.flush()


def read_all(run: str, name: str, count: int, delay_s: float = 0.0) -> None:
    """Read `count` records; check every seq is the next one and check == ~seq."""
    r = RingReader.attach(run, name, REC, start="oldest")
    say(ready=True)
    expected = 0
    bad = 0
    deadline = time.monotonic() + 60
    while expected < count and time.monotonic() < deadline:
        batch = r.wait_read(256, timeout_s=0.5)
        if len(batch):
            seqs = batch["seq"]
            ok = np.array_equal(seqs, np.arange(expected, expected + len(batch))) and \
                np.array_equal(batch["check"], ~seqs)
            bad += 0 if ok else 1
            expected = int(seqs[-1]) + 1
        r.release()
        if delay_s:
            time.sleep(delay_s)
    say(done=True, received=expected, bad_batches=bad, lost=r.lost)
    r.close()


def attach_and_hang(run: str, name: str) -> None:
    """Attach a reader at the oldest record and never read (to be killed)."""
    RingReader.attach(run, name, REC, start="oldest")
    say(ready=True)
    time.sleep(600)


def write_forever(run: str, name: str, capacity: int) -> None:
    """Create a ring and write records until killed."""
    w = RingWriter.create(run, name, REC, capacity, policy="overwrite")
    say(ready=True)
    rec = np.zeros(1, REC)[0]
    i = 0
    while True:
        rec["seq"] = i
        rec["check"] = ~i
        w.try_write(rec)
        i += 1
        if i % 1024 == 0:
            w.heartbeat()
            time.sleep(0.001)


def write_overwrite_burst(run: str, name: str, capacity: int, count: int) -> None:
    """Write `count` records as fast as possible in batches of random size (overwrite)."""
    w = RingWriter.create(run, name, REC, capacity, policy="overwrite")
    say(ready=True)
    sys.stdin.readline()  # go
    rng = np.random.default_rng(7)
    i = 0
    while i < count:
        n = int(rng.integers(1, 64))
        slots = w.try_claim(min(n, count - i))
        k = len(slots)
        slots["seq"] = np.arange(i, i + k)
        slots["check"] = ~slots["seq"]
        w.publish()
        i += k
    say(done=True, written=i)
    sys.stdin.readline()  # wait before closing so readers can finish
    w.close()


def read_overwrite_validate(run: str, name: str, count: int) -> None:
    """Read an overwrite ring while it is written; every returned record must be intact."""
    r = RingReader.attach(run, name, REC, start="oldest")
    say(ready=True)
    got = torn = disorder = 0
    last = -1
    deadline = time.monotonic() + 60
    while last < count - 1 and time.monotonic() < deadline:
        batch = r.wait_read(512, timeout_s=0.2)
        if len(batch):
            seqs = batch["seq"]
            torn += int(np.count_nonzero(batch["check"] != ~seqs))
            disorder += int(np.count_nonzero(np.diff(seqs) != 1)) + int(seqs[0] <= last)
            got += len(batch)
            last = int(seqs[-1])
        r.release()
    say(done=True, received=got, torn=torn, disorder=disorder, lost=r.lost, last=last)
    r.close()


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    fn = globals()[role]
    fn(*[int(a) if a.lstrip("-").isdigit() else (float(a) if a.replace(".", "", 1).isdigit() else a)
         for a in args])
