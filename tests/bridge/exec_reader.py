"""A remote consumer process for the chaos tests: its exec reports, kept durably, exactly once.

    python -m tests.bridge.exec_reader NAME CONSUMER_ID OUT

Reads the exec reports of CONSUMER_ID with the real SDK (consumer.orders.OrderClient:
the exec ring and journal of its host, which `bridge exec-in` writes) and appends each
report's 768 bytes to OUT, fsynced per batch. Its cursor is OUT itself: a restarted
reader cuts a torn tail and resumes after the last whole report there (`resume_from`),
which is how a strategy that keeps its own state gets each report exactly once
across a SIGKILL. Runs until killed.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np

from consumer.orders import OrderClient
from core.run import RunContext
from events import EVENT
from events.records import RECORD_BYTES


def resume_point(path: str) -> int:
    """The exec_seq of the last whole report in `path` (a torn tail is cut off)."""
    if not os.path.exists(path):
        return 0
    size = os.path.getsize(path)
    whole = size - size % RECORD_BYTES
    if whole != size:
        os.truncate(path, whole)
    if not whole:
        return 0
    with open(path, "rb") as f:
        f.seek(whole - RECORD_BYTES)
        return int(np.frombuffer(f.read(RECORD_BYTES), EVENT)[0]["exec"]["exec_seq"])


def main() -> None:
    name, cid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = OrderClient(SimpleNamespace(name=name, trading_enabled=True), run=RunContext.from_env(),
                         monitor_all=True, resume_from=resume_point(out))
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    while True:
        recs = client.poll_reports(max_n=256, timeout_s=0.2)
        mine = recs[recs["consumer_id"] == cid]  # placeholders (consumer_id 0) and others are not ours
        if len(mine):
            os.write(fd, mine.tobytes())
            os.fsync(fd)


if __name__ == "__main__":
    main()
