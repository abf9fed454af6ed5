"""A stand-in ingest process for the bridge tests: writes book records into ring `md.<venue>`.

    python -m tests.bridge.md_writer VENUE RATE [N]

Overwrite policy, as ingest's; record i (i = 1, 2, ...) is `book(i)`: event_id i,
instrument 1 + i % 3, bid_px[0] = i, so a reader anywhere can check every byte.
Runs until killed (or N records).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from channels.names import md_ring
from events import EVENT, Kind, stamp_header
from core.run import RunContext
from shm import RingWriter


def books(first: int, n: int) -> np.ndarray:
    recs = np.zeros(n, EVENT)
    for j in range(n):
        i = first + j
        stamp_header(recs[j], Kind.BOOK, 1, 1 + i % 3, event_id=i, seq_provider=i)
        recs[j]["book"]["depth"] = 1
        recs[j]["book"]["bid_px"][0] = i
        recs[j]["book"]["ask_px"][0] = i + 1
    return recs


def main() -> None:
    venue, rate = sys.argv[1], float(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 62
    ctx = RunContext.from_env()
    w = RingWriter.create(ctx.namespace, md_ring(venue), EVENT, 16384, policy="overwrite")
    t0, done = time.monotonic(), 0
    while done < n:
        due = min(n, int((time.monotonic() - t0) * rate) + 1)
        if due > done:
            k = min(256, due - done)
            w.write_batch(books(done + 1, k))
            done += k
        w.heartbeat()
        time.sleep(0.002)
    while True:
        w.heartbeat()
        time.sleep(0.05)


if __name__ == "__main__":
    main()
