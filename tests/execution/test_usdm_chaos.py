"""Chaos on Binance USD-M, in real processes: SIGKILL `python -m execution --venue binance-usdm`
twice in the middle of a stream of orders, each time with an order carried out by the venue
whose reply is still on its way (`delay_response`), with REST and with WebSocket order entry.
Afterwards:

- the venue received no order twice (0 duplicate orders at the venue);
- the consumer (alive throughout) holds every exec report exactly once, as journaled (the
  ACCOUNT records between them, USD-M balances and positions, are for no one consumer);
- every order is in exactly one state, the venue's, and its fills add up.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from channels.journal import JournalReader
from events import EVENT, EXEC_REPORT, ExecStatus, PeerGone, to_mantissa
from events.codec import concat
from events.records import RECORD_BYTES

from .harness import client, own_journaled
from .test_usdm_sim import SYM, VENUE, UsdmExecProc, rest_get, sim_orders

pytestmark = [pytest.mark.timeout(110), pytest.mark.multiprocess, pytest.mark.slow]

N_ORDERS = 60
KINDS = ("rest", "market", "take", "ioc", "fok")
VENUE_STATUS = {"NEW": "ACK", "PARTIALLY_FILLED": "PARTIAL", "FILLED": "FILLED", "CANCELED": "CANCELLED",
                "EXPIRED": "EXPIRED", "EXPIRED_IN_MATCH": "EXPIRED"}


@pytest.fixture
def usdm():
    from simulator.server import Simulator
    s = Simulator(venues=[VENUE], instruments=2, rate=40, seed=11).start()
    try:
        yield s
    finally:
        s.stop()


def submit(oc, i: int, nowait: bool = False):
    coid = f"uc-{i}"
    kind = KINDS[i % len(KINDS)]
    side = "buy" if (i // len(KINDS)) % 2 == 0 else "sell"
    far, cross = ("60000", "70000") if side == "buy" else ("70000", "60000")
    args = {"rest": ("limit", far, "GTC"), "market": ("market", None, None), "take": ("limit", cross, "GTC"),
            "ioc": ("limit", far, "IOC"), "fok": ("limit", cross, "FOK")}[kind]
    order_type, price, tif = args
    fields = dict(price=price, tif=tif) if order_type == "limit" else {}
    if nowait:
        return oc.submit_nowait(coid, SYM, side, order_type, "0.001", venue=VENUE, **fields)
    return oc.submit(coid, SYM, side, order_type, "0.001", venue=VENUE, **fields)


def store_rows(ctx) -> list[tuple]:
    db = sqlite3.connect(f"file:{ctx.path('exec', 'orders.sqlite')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT client_order_id, venue_coid, status, filled FROM orders").fetchall()
    finally:
        db.close()


def wait_until(cond, timeout_s: float, what: str, tick=None) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tick is not None:
            tick()
        else:
            time.sleep(0.05)


@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_sigkill_execution_mid_order_on_usdm_loses_and_duplicates_nothing(run_ctx, usdm, reap, entry):
    ctx = run_ctx
    args = ("--recv-window-ms", "1000", "--timeout", "1", "--order-entry", entry)
    ex = UsdmExecProc(ctx, usdm, reap, *args).start()
    got: list = []
    with client(ctx, timeout_s=1.0) as oc:
        def drain(wait_s: float = 0.0) -> None:
            try:
                recs = oc.poll_reports(timeout_s=wait_s)
            except PeerGone:
                time.sleep(0.05)
                return
            if len(recs):
                got.append(recs.copy())

        def send(i: int) -> None:
            while True:          # a request that times out (execution down) goes again, same id
                try:
                    reply = submit(oc, i)
                    assert reply["status"] in ("accepted", "duplicate"), reply
                    return
                except PeerGone:
                    drain(0.05)

        i = 0
        for kill_at in (20, 40):
            while i < kill_at:
                send(i)
                drain()
                i += 1
            # mid-order: the venue carries the next order out and holds its reply; execution dies
            received = sum(sim_orders(usdm)["received"].values())
            usdm.inject(VENUE, "delay_response", seconds=3.0)
            submit(oc, i, nowait=True)
            wait_until(lambda: sum(sim_orders(usdm)["received"].values()) > received, 10, "the order at the venue")
            ex.kill()
            ex = UsdmExecProc(ctx, usdm, reap, *args).start()
            send(i)              # the consumer sends it again: "duplicate", never a second order
            i += 1
        while i < N_ORDERS:
            send(i)
            drain()
            i += 1

        journal = JournalReader(ctx.path("exec", "exec.journal"))

        def reports() -> np.ndarray:   # our exec reports in the journal (gap-free amid ACCOUNT records)
            return own_journaled(journal, int(got[0]["consumer_id"][0])) if got else np.zeros(0, EVENT)

        def agrees() -> bool:   # every order in the venue's state (orders it never took: REJECTED)
            at_venue = {o["clientOrderId"]: o["status"] for o in sim_orders(usdm)["orders"]}
            return all(VENUE_STATUS.get(at_venue.get(vcoid), "REJECTED") == ExecStatus(status).name
                       for _coid, vcoid, status, _filled in store_rows(ctx))

        def settled() -> bool:
            # eventually consistent: a fill the stream missed while execution was down comes by a
            # query, with its backoff; so wait for the venue's state, then for the consumer
            if not agrees():
                return False
            journaled = reports()
            return bool(got) and len(journaled) > 0 and \
                int(got[-1]["exec"]["exec_seq"][-1]) == int(journaled[-1]["exec"]["exec_seq"])

        wait_until(settled, 40, "reconciliation and catch-up", tick=lambda: drain(0.1))
        journaled = reports()
        journal.close()
    log = concat(got)

    # every exec report exactly once, as journaled (header and payload bytes)
    assert list(log["exec"]["exec_seq"]) == list(journaled["exec"]["exec_seq"])
    covered = 64 + EXEC_REPORT.itemsize
    assert (log.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]
            == journaled.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]).all()

    # the venue saw no order twice; every order's state is the venue's; fills add up
    venue = sim_orders(usdm)
    assert venue["received"] and all(n == 1 for n in venue["received"].values()), venue["received"]
    at_venue = {o["clientOrderId"]: o for o in venue["orders"]}
    rows = store_rows(ctx)
    assert sorted(r[0] for r in rows) == sorted(f"uc-{k}" for k in range(N_ORDERS))
    for coid, vcoid, status, filled_m in rows:
        ours = ExecStatus(status).name
        v = at_venue.get(vcoid)
        if v is None:   # refused by the venue (FOK that cannot fill: -5021, not recorded)
            assert ours == "REJECTED", (coid, ours)
            continue
        assert VENUE_STATUS[v["status"]] == ours, (coid, v["status"], ours)
        mine = log[log["exec"]["client_order_id"] == coid.encode()]
        assert ExecStatus(int(mine[-1]["exec"]["status"])).name == ours
        assert int(mine[-1]["exec"]["filled"]) == filled_m == sum(int(x) for x in mine["exec"]["last_qty"])
        assert int(mine[-1]["exec"]["cum_quote"]) == to_mantissa(v["cumQuote"], 7)   # BTC: 2 + 5 decimals
    assert rest_get(usdm, "/_sim/stats")["faults"]["applied"]["delay_response"] == 2
    ws = sum(n for k, n in venue["requests"].items() if k.startswith("WS order.place"))
    assert (ws > 0) == (entry == "ws") and (ws == 0 or "POST /fapi/v1/order" not in venue["requests"])
