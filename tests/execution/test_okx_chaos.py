"""Chaos on OKX, in real processes: SIGKILL the consumer, then execution, then both, in the
middle of a stream of orders (WS order entry, so a kill also cuts requests in flight on the
private connection). Afterwards:

- every order is in exactly one state, terminal or open, and it matches the venue's;
- the venue received no clOrdId twice (no duplicate orders at the venue);
- the consumer holds every exec report of its own in the journal exactly once, in order (the
  journal's exec_seq 1..N is gap-free; ACCOUNT records stand in it too).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from channels.journal import JournalReader
from events import EXEC_REPORT, ExecStatus
from events.records import RECORD_BYTES

from .harness import own_journaled
from .test_chaos import consumer_log, kill, spawn, store_rows, submitted, wait_until
from .test_okx_lifecycle import OkxExec, okx_sim, sim_orders  # noqa: F401  (okx_sim: the fixture)

pytestmark = [pytest.mark.timeout(150), pytest.mark.multiprocess, pytest.mark.slow]

N_ORDERS = 100
RATE = 40.0
ARGS = ("--recv-window-ms", "1000", "--timeout", "1")


def venue_status(o: dict) -> str:
    """Our status of an order as the venue states it."""
    if o["state"] == "canceled":
        return "EXPIRED" if o["cancelSource"] in ("13", "14", "31") else "CANCELLED"
    return {"live": "ACK", "partially_filled": "PARTIAL", "filled": "FILLED"}[o["state"]]


def test_sigkill_consumer_then_execution_then_both_on_okx_loses_and_duplicates_nothing(run_ctx, okx_sim, reap):
    ctx = run_ctx
    ex = OkxExec(ctx, okx_sim, reap, *ARGS, entry="ws").start()
    args = ("c1", str(N_ORDERS), str(RATE))
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)

    wait_until(lambda: submitted(ctx) >= 15, 20, "the first orders")
    kill(consumer)                                   # 1. the consumer
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)
    wait_until(lambda: submitted(ctx) >= 40, 20, "orders after the consumer restart")
    ex.kill()                                        # 2. execution, mid-order
    ex = OkxExec(ctx, okx_sim, reap, *ARGS, entry="ws").start()
    wait_until(lambda: submitted(ctx) >= 65, 20, "orders after the execution restart")
    kill(consumer)                                   # 3. both
    ex.kill()
    ex = OkxExec(ctx, okx_sim, reap, *ARGS, entry="rest").start()   # and back on REST entry
    consumer = spawn(ctx, reap, "tests.execution.chaos_consumer", *args)
    wait_until(lambda: ctx.path("chaos", "c1.done").exists(), 40, "every order answered")

    journal = JournalReader(ctx.path("exec", "exec.journal"))

    def settled() -> bool:
        if any(row[2] == ExecStatus.PENDING for row in store_rows(ctx)):
            return False
        log = consumer_log(ctx)
        if not len(log):
            return False
        own = own_journaled(journal, int(log[0]["consumer_id"]))
        return len(own) > 0 and int(log[-1]["exec"]["exec_seq"]) == int(own[-1]["exec"]["exec_seq"])

    wait_until(settled, 30, "reconciliation and catch-up")
    time.sleep(0.3)
    assert settled()
    log = consumer_log(ctx)
    journaled = own_journaled(journal, int(log[0]["consumer_id"]))  # its reports, amid ACCOUNT records
    journal.close()

    assert list(log["exec"]["exec_seq"]) == list(journaled["exec"]["exec_seq"])
    covered = 64 + EXEC_REPORT.itemsize
    assert (log.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]
            == journaled.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]).all()

    venue = sim_orders(okx_sim)
    assert all(n == 1 for n in venue["received"].values()), venue["received"]
    at_venue = {o["clOrdId"]: o for o in venue["orders"]}
    rows = store_rows(ctx)
    coids = [r[0] for r in rows]
    assert len(coids) == len(set(coids)) == N_ORDERS
    for coid, vcoid, status, filled_m in rows:
        ours = ExecStatus(status).name
        v = at_venue.get(vcoid)
        if v is None:  # killed before the request left: rejected once expTime passed, never sent
            assert ours == "REJECTED", (coid, ours)
            continue
        assert venue_status(v) == ours, (coid, v["state"], v["cancelSource"], ours)
        mine = log[log["exec"]["client_order_id"] == coid.encode()]
        assert len(mine) and ExecStatus(int(mine[-1]["exec"]["status"])).name == ours
        assert int(mine[-1]["exec"]["filled"]) == filled_m
        assert sum(int(x) for x in mine["exec"]["last_qty"]) == filled_m
