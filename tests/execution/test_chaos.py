"""Chaos, in real processes: SIGKILL the consumer, then execution, then both, in the middle
of a stream of orders under market-data load. Afterwards:

- every order is in exactly one state, terminal or open, and it matches the venue's;
- the venue received no order twice;
- the consumer holds every exec report of the journal exactly once, in exec_seq order (the
  journal's ACCOUNT records between them are the account's: the SDK applies them to
  `account()` and hands out exec reports only).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from events import EVENT, EXEC_REPORT, ExecStatus, Kind
from events.records import RECORD_BYTES
from channels.journal import JournalReader

from .harness import REPO, ExecProc, sim_orders

pytestmark = [pytest.mark.timeout(110), pytest.mark.multiprocess, pytest.mark.slow]

N_ORDERS = 120
RATE = 40.0
VENUE_STATUS = {"NEW": "ACK", "PARTIALLY_FILLED": "PARTIAL", "FILLED": "FILLED", "CANCELED": "CANCELLED",
                "EXPIRED": "EXPIRED", "EXPIRED_IN_MATCH": "EXPIRED", "REJECTED": "REJECTED"}


def spawn(ctx, reap, module: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, **ctx.env(), "PYTHONPATH": str(REPO)}
    log = open(ctx.path("chaos", f"{module.rsplit('.', 1)[-1]}.log"), "ab")
    p = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=REPO, stdout=log, stderr=log,
                         start_new_session=True)
    log.close()
    reap.append(p)
    return p


def kill(p: subprocess.Popen) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)


def wait_until(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def submitted(ctx) -> int:
    try:
        return int(ctx.path("chaos", "c1.next").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def consumer_log(ctx) -> np.ndarray:
    raw = ctx.path("chaos", "c1.reports").read_bytes()
    return np.frombuffer(raw[: len(raw) // RECORD_BYTES * RECORD_BYTES], EVENT)


def store_rows(ctx) -> list[tuple]:
    db = sqlite3.connect(f"file:{ctx.path('exec', 'orders.sqlite')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT client_order_id, venue_coid, status, filled FROM orders").fetchall()
    finally:
        db.close()


def test_sigkill_consumer_then_execution_then_both_loses_and_duplicates_nothing(run_ctx, sim, reap):
    ctx = run_ctx
    ep = sim.endpoints["binance-spot"]
    md_count = str(ctx.path("chaos", "md.count"))
    spawn(ctx, reap, "tests.execution.md_load", ep["ws"], md_count, "BTCUSDT", "ETHUSDT")
    ex = ExecProc(ctx, sim, reap, "--recv-window-ms", "1000", "--timeout", "1").start()
    args = ("c1", str(N_ORDERS), str(RATE))
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)

    wait_until(lambda: submitted(ctx) >= 20, 20, "the first orders")
    kill(consumer)                                   # 1. the consumer
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)
    wait_until(lambda: submitted(ctx) >= 50, 20, "orders after the consumer restart")
    ex.kill()                                        # 2. execution
    ex = ExecProc(ctx, sim, reap, "--recv-window-ms", "1000", "--timeout", "1").start()
    wait_until(lambda: submitted(ctx) >= 80, 20, "orders after the execution restart")
    kill(consumer)                                   # 3. both
    ex.kill()
    ex = ExecProc(ctx, sim, reap, "--recv-window-ms", "1000", "--timeout", "1").start()
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)
    wait_until(lambda: ctx.path("chaos", "c1.done").exists(), 40, "every order answered")

    # quiescence: no order left PENDING, and the consumer holds everything journaled
    journal = JournalReader(ctx.path("exec", "exec.journal"))

    def reports() -> np.ndarray:
        recs = journal.read(1, journal.last_seq())
        return recs[recs["kind"] == Kind.EXEC_REPORT]

    def settled() -> bool:
        if any(row[2] == ExecStatus.PENDING for row in store_rows(ctx)):
            return False
        log, want = consumer_log(ctx), reports()
        return len(log) > 0 and int(log[-1]["exec"]["exec_seq"]) == int(want[-1]["exec"]["exec_seq"])

    wait_until(settled, 30, "reconciliation and catch-up")
    time.sleep(0.3)
    assert settled()
    last = journal.last_seq()
    everything = journal.read(1, last)
    journaled = everything[everything["kind"] == Kind.EXEC_REPORT]
    journal.close()
    assert list(everything["exec"]["exec_seq"]) == list(range(1, last + 1))
    assert {Kind(int(k)) for k in everything["kind"]} <= {Kind.EXEC_REPORT, Kind.ACCOUNT}
    assert int(open(md_count).read()) > 100, "market data was flowing"

    # the consumer holds every exec report 1..N exactly once, as journaled (header and payload
    # bytes; EVENT's last 48 bytes belong to no field, and numpy copies leave them undefined)
    log = consumer_log(ctx)
    assert list(log["exec"]["exec_seq"]) == list(journaled["exec"]["exec_seq"])
    covered = 64 + EXEC_REPORT.itemsize
    assert (log.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]
            == journaled.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]).all()

    # every order in exactly one state, matching the venue; the venue saw none twice
    venue = sim_orders(sim)
    assert all(n == 1 for n in venue["received"].values()), venue["received"]
    at_venue = {o.get("clientOrderId"): o for o in venue["orders"]}
    rows = store_rows(ctx)
    coids = [r[0] for r in rows]
    assert len(coids) == len(set(coids)) == N_ORDERS
    assert set(coids) == {f"ch-{i}" for i in range(N_ORDERS)}
    for coid, vcoid, status, filled_m in rows:
        ours = ExecStatus(status).name
        v = at_venue.get(vcoid)
        if v is None:  # killed before the request left: rejected after the recvWindow, never sent
            assert ours == "REJECTED", (coid, ours)
            continue
        assert VENUE_STATUS[v["status"]] == ours, (coid, v["status"], ours)
        # the last report of each order agrees with the store
        mine = log[log["exec"]["client_order_id"] == coid.encode()]
        assert len(mine) and ExecStatus(int(mine[-1]["exec"]["status"])).name == ours
        assert int(mine[-1]["exec"]["filled"]) == filled_m
        assert sum(int(x) for x in mine["exec"]["last_qty"]) == filled_m
