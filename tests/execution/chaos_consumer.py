"""A strategy process for chaos tests: submits orders 0..N-1 and logs every exec report.

    python -m tests.execution.chaos_consumer NAME N RATE_PER_S

State in `<run_dir>/chaos/`: `<name>.reports` (every exec report it received, raw
768-byte EVENT records, appended before the SDK cursor moves) and `<name>.next` (the
next order index to submit). On a restart it resumes from both: the last whole record
of its log is the exec_seq it resumes after (`resume_from`), and it re-submits the
order it was sending when killed (execution answers "duplicate" if that one got in).
A request that times out (execution down) is retried with the same client order id.
Writes `<name>.done` once every order was answered; runs until killed.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from consumer.orders import OrderClient
from events import EVENT, PeerGone
from events.records import RECORD_BYTES
from core.run import RunContext

KINDS = ("rest", "market", "take", "ioc", "fok")


class Me:
    def __init__(self, name):
        self.name = name
        self.trading_enabled = True


def order(oc: OrderClient, i: int) -> dict:
    coid = f"ch-{i}"
    kind = KINDS[i % len(KINDS)]
    side = "buy" if (i // len(KINDS)) % 2 == 0 else "sell"
    if kind == "rest":
        return oc.submit_limit(coid, "BTC-USDT", side, "0.001", "60000" if side == "buy" else "70000")
    if kind == "market":
        return oc.submit_market(coid, "BTC-USDT", side, "0.001")
    if kind == "take":
        return oc.submit_limit(coid, "BTC-USDT", side, "0.001", "70000" if side == "buy" else "60000")
    if kind == "ioc":
        return oc.submit_limit(coid, "BTC-USDT", side, "0.001", "60000" if side == "buy" else "70000", tif="IOC")
    return oc.submit_limit(coid, "BTC-USDT", side, "0.001", "70000" if side == "buy" else "60000", tif="FOK")


def main(argv: list[str]) -> int:
    name, n, rate = argv[0], int(argv[1]), float(argv[2])
    ctx = RunContext.from_env()
    log_path = ctx.path("chaos", f"{name}.reports")
    next_path = ctx.path("chaos", f"{name}.next")
    fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    size = os.fstat(fd).st_size
    whole = size // RECORD_BYTES
    if size != whole * RECORD_BYTES:
        os.ftruncate(fd, whole * RECORD_BYTES)  # killed mid-write
    last = 0
    if whole:
        last = int(np.frombuffer(os.pread(fd, RECORD_BYTES, (whole - 1) * RECORD_BYTES), EVENT)[0]["exec"]["exec_seq"])
    i = int(next_path.read_text()) if next_path.exists() else 0
    oc = OrderClient(Me(name), run=ctx, timeout_s=1.0, resume_from=last)
    period = 1.0 / rate
    t_next = time.monotonic()

    def drain(wait_s: float) -> None:
        recs = oc.poll_reports(timeout_s=wait_s)
        if len(recs):
            os.write(fd, recs.tobytes())

    while True:
        if i < n and time.monotonic() >= t_next:
            try:
                reply = order(oc, i)
            except PeerGone:
                drain(0.05)
                continue
            if reply.get("status") not in ("accepted", "duplicate"):
                print(f"chaos consumer: unexpected reply to ch-{i}: {reply}", file=sys.stderr, flush=True)
            i += 1
            tmp = next_path.with_suffix(".tmp")
            tmp.write_text(str(i))
            os.replace(tmp, next_path)
            t_next += period
            if i == n:
                ctx.path("chaos", f"{name}.done").write_text("done\n")
        try:
            drain(0.0 if i < n else 0.1)
        except PeerGone:
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
