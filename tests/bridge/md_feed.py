"""A stand-in ingest for the remote-consumer tests: trades of BTC-USDT and ETH-USDT on `md.<venue>`.

    python -m tests.bridge.md_feed VENUE RATE

Each step writes one trade per symbol (seq_provider = the step, gap-free), RATE steps a
second, until killed; the ring is an overwrite ring, as ingest's.
"""

from __future__ import annotations

import sys
import time

from channels.names import md_ring
from core.run import RunContext
from events import EVENT, Kind, Provider, concat
from shm import RingWriter
from tests.synthetic import records

SYMBOLS = ("BTC-USDT", "ETH-USDT")


def main() -> None:
    venue, rate = sys.argv[1], float(sys.argv[2])
    provider = int(Provider.from_slug(venue))
    w = RingWriter.create(RunContext.from_env().namespace, md_ring(venue), EVENT, 4096, policy="overwrite")
    t0, step = time.monotonic(), 0
    while True:
        due = int((time.monotonic() - t0) * rate) + 1
        if due > step:
            seqs = range(step + 1, min(due, step + 64) + 1)
            w.write_batch(concat(records(provider, s, Kind.TRADE, seqs, ingest_ts_ns=time.time_ns())
                                 for s in SYMBOLS))
            step = seqs[-1]
        w.heartbeat()
        time.sleep(0.005)


if __name__ == "__main__":
    main()
