"""A stand-in execution process for the bridge tests: appends `n` exec reports at `rate`/s
(every 10th an ACCOUNT record: the exec channel carries both kinds).

    python -m tests.bridge.exec_writer N RATE

Through the real writer (execution.publisher.ExecPublisher: journal, then the exec ring),
in batches of up to 64, each report's client_order_id and qty derived from its exec_seq
so the far side can check the bytes; consumer ids 1 and 2 alternate, named a and b in
the run's order store as execution names them (so exec-out publishes each report on
its consumer's subject). A restarted writer goes on after the journal's last.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from events import EVENT, AccountEntry, ExecStatus, Kind, stamp_header
from core.run import RunContext
from execution.publisher import ExecPublisher
from execution.store import Store


def reports(first: int, n: int) -> np.ndarray:
    """Exec reports, every 10th an ACCOUNT record (a balance), as execution interleaves them."""
    recs = np.zeros(n, EVENT)
    for i in range(n):
        seq = first + i
        if seq % 10 == 0:
            stamp_header(recs[i], Kind.ACCOUNT, 1, 0, event_id=seq)
            a = recs[i]["account"]
            a["exec_seq"], a["entry"], a["asset"], a["free"], a["scale"] = seq, AccountEntry.BALANCE, b"USDT", seq, 8
            continue
        stamp_header(recs[i], Kind.EXEC_REPORT, 1, 7, event_id=seq, consumer_id=1 + seq % 2)
        recs[i]["exec"]["exec_seq"] = seq
        recs[i]["exec"]["qty"] = seq * 3
        recs[i]["exec"]["status"] = ExecStatus.ACK
        recs[i]["exec"]["client_order_id"] = f"o{seq}".encode()
    return recs


def main() -> None:
    n, rate = int(sys.argv[1]), float(sys.argv[2])
    ctx = RunContext.from_env()
    store = Store(ctx.path("exec", "orders.sqlite"), {}, synchronous="NORMAL")
    assert [store.consumer(n)[0] for n in ("a", "b")] == [1, 2]
    store.db.close()
    pub = ExecPublisher(ctx, sync=False)
    t0 = time.monotonic()
    done0 = pub.last_seq
    while pub.last_seq < n:
        due = min(n, done0 + int((time.monotonic() - t0) * rate) + 1)
        if due > pub.last_seq:
            pub.append(reports(pub.last_seq + 1, min(64, due - pub.last_seq)))
        pub.pump()
        pub.heartbeat()
        time.sleep(0.002)
    while True:  # stay up (the ring's writer) until killed
        pub.pump()
        pub.heartbeat()
        time.sleep(0.01)


if __name__ == "__main__":
    main()
