"""Reconciliation after a restart, against the simulator: `python -m execution` is killed,
orders close at the venue meanwhile, and the next execution process lists the open orders
and queries only the ones that closed (counted through its telemetry)."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal

import orjson
import pytest
import zmq

from events import ExecStatus
from execution.__main__ import SIM_KEY, SIM_SECRET
from execution.ids import venue_client_order_id
from meltica.collector import parse_key
from venues.binance.trading.rest import BinanceRest

from .harness import VENUE, client, collect, gap_free, of, sim_orders, statuses, terminal, top

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
SYM = "BTC-USDT"


def vc(coid: str, consumer_id: int = 1) -> str:
    """The venue client order id of `coid` of the first consumer execution met (id 1)."""
    return venue_client_order_id(consumer_id, coid)


def open_in_store(ctx) -> set[str]:
    db = sqlite3.connect(f"file:{ctx.path('exec', 'orders.sqlite')}?mode=ro", uri=True)
    try:
        return {c for c, s in db.execute("SELECT client_order_id, status FROM orders")
                if not ExecStatus(s).terminal}
    finally:
        db.close()


def counters(sub, until, timeout_s: float = 10.0) -> dict:
    """Counters (by name, summed over labels) of the `metrics` snapshots published on `sub`,
    once `until(counters)`."""
    last: dict = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sub.poll(200):
            topic, body = sub.recv_multipart()
            if topic == b"metrics":
                last = {}
                for key, value in orjson.loads(body)["counters"].items():  # summed over labels (venue)
                    name = parse_key(key)[0]
                    last[name] = last.get(name, 0) + value
                if until(last):
                    return last
    raise AssertionError(f"timed out; counters so far: {last}")


def test_a_restart_lists_the_open_orders_and_queries_only_those_closed_while_down(run_ctx, sim, execution):
    ex = execution()
    (bid, _), (ask, _) = top(sim)
    inside = str(Decimal(ask) - Decimal("0.01")) if Decimal(ask) - Decimal(bid) > Decimal("0.01") else ask
    resting = [f"r-{i}" for i in range(12)]
    with client(run_ctx) as oc:
        for c in resting:
            assert oc.submit_limit(c, SYM, "buy", "0.001", "60000")["status"] == "accepted"
        assert oc.submit_limit("s-1", SYM, "sell", "0.001", inside.rstrip("0").rstrip("."))["status"] == "accepted"
        collect(oc, lambda g: all(of(g, c) for c in [*resting, "s-1"]))
    ex.kill()
    was_open = open_in_store(run_ctx)  # s-1 may have met the market before the kill

    # while execution is down, at the venue: three orders cancelled, the sell filled
    rest = BinanceRest(sim.endpoints[VENUE]["rest"], SIM_KEY, SIM_SECRET)
    try:
        for c in resting[:3]:
            assert rest.cancel_order("BTCUSDT", vc(c))["status"] == "CANCELED"
        if rest.get_order("BTCUSDT", vc("s-1"))["status"] != "FILLED":
            rest.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5",
                           newClientOrderId="taker-1")
        assert rest.get_order("BTCUSDT", vc("s-1"))["status"] == "FILLED"
    finally:
        rest.close()

    closed = [*resting[:3], "s-1"]
    endpoint = f"ipc://{run_ctx.run_dir}/exec-telemetry.sock"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"metrics")
    sub.connect(endpoint)
    try:
        execution("--telemetry", f"bind:{endpoint}")
        with client(run_ctx, resume_from=0) as oc:  # every report since exec_seq 1
            got = collect(oc, lambda g: all(terminal(c)(g) for c in closed))
            got.extend(r.copy() for r in oc.poll_reports(timeout_s=0.5))
        missing = [c for c in closed if c in was_open]
        counters(sub, lambda c: c.get("exec.reconcile.queries", 0) >= len(missing))
        n = counters(sub, lambda c: True)  # a later snapshot: no query came after
    finally:
        sub.close()

    # one list per reconciliation (at start-up, again once the user stream is up), and one
    # query per order that left the book -- not one per open order
    assert 1 <= n["exec.reconcile.lists"] <= 3, n
    assert n["exec.reconcile.queries"] == len(missing), (n, missing)
    assert statuses(of(got, "s-1")).count("FILLED") == 1
    for c in resting[:3]:
        assert statuses(of(got, c)) == ["ACK", "CANCELLED"]
    for c in resting[3:]:
        assert statuses(of(got, c)) == ["ACK"]
    assert all(int(r["exec"]["filled"]) + int(r["exec"]["remaining"]) == int(r["exec"]["qty"]) for r in got)
    gap_free(run_ctx, got)  # every report since exec_seq 1, the account records between aside
    assert all(k == 1 for k in sim_orders(sim)["received"].values())
