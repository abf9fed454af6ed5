"""Account state end to end: the simulator's balances -> `python -m execution` (REST snapshot
on start, user-stream updates, a new snapshot on every reconnect) -> ACCOUNT records on the
exec channel -> the SDK's `account(venue)`."""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np
import pytest

from consumer.account import AccountFollower
from events import ExecStatus, Kind, to_decimal
from simulator.accounts import DEFAULT_FUNDING
from simulator.orders_api import DEFAULT_KEY

from .harness import VENUE, client, collect, of, sim_orders, terminal

pytestmark = [pytest.mark.timeout(90), pytest.mark.multiprocess]
SYM = "BTC-USDT"
FUNDED = Decimal(DEFAULT_FUNDING)


def wait_account(oc, until, timeout_s: float = 15.0):
    """Read the exec channel until `until(oc.account(VENUE))`; return the view."""
    deadline = time.monotonic() + timeout_s
    while not until(oc.account(VENUE)):
        if time.monotonic() > deadline:
            acct = oc.account(VENUE)
            raise AssertionError(f"account never matched: {acct.balances} {acct.positions}")
        oc.poll_reports(timeout_s=0.1)
    return oc.account(VENUE)


def free(acct, asset) -> Decimal | None:
    b = acct.balances.get(asset)
    return None if b is None else b.free


def test_balances_arrive_on_start_move_with_a_fill_and_reach_every_consumer(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        acct = wait_account(oc, lambda a: {"BTC", "ETH", "USDT"} <= set(a.balances))
        assert {asset: (b.free, b.locked) for asset, b in acct.balances.items()} == \
            {a: (FUNDED, 0) for a in ("BTC", "ETH", "USDT")}
        assert oc.submit_limit("lock-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        acct = wait_account(oc, lambda a: a.balances["USDT"].locked == 60)  # the resting order holds 60 USDT
        assert acct.balances["USDT"].free == FUNDED - 60
        oc.cancel("lock-1")
        wait_account(oc, lambda a: a.balances["USDT"].locked == 0 and a.balances["USDT"].free == FUNDED)

        assert oc.submit_market("buy-1", SYM, "buy", "0.002")["status"] == "accepted"
        got = collect(oc, terminal("buy-1"))
        last = of(got, "buy-1")[-1]["exec"]
        assert ExecStatus(int(last["status"])) is ExecStatus.FILLED
        spent = Decimal(to_decimal(int(last["cum_quote"]), int(last["quote_scale"])))
        acct = wait_account(oc, lambda a: a.balances["BTC"].free == FUNDED + Decimal("0.002"))
        assert acct.balances["USDT"].free == FUNDED - spent  # exactly what the fills cost
        seq = acct.last_exec_seq
        assert seq > int(last["exec_seq"])  # the balance record follows the fill's report

    want = (FUNDED + Decimal("0.002"), FUNDED - spent)
    # one that resumes after every record so far knows the account at once (from the journal
    # below its cursor); one that joins later (cursor 0) reads it from the channel
    with client(run_ctx, "resumed", resume_from=seq) as resumed, client(run_ctx, "late") as late:
        view = resumed.account(VENUE)
        assert (free(view, "BTC"), free(view, "USDT")) == want
        wait_account(late, lambda a: (free(a, "BTC"), free(a, "USDT")) == want)


def test_a_balance_changed_while_the_stream_was_down_is_reconciled_on_reconnect(run_ctx, sim, execution):
    execution()
    follower = AccountFollower(run_ctx)
    try:
        with client(run_ctx) as oc:
            wait_account(oc, lambda a: free(a, "ETH") == FUNDED)
            asked = sim_orders(sim)["requests"]["GET /api/v3/account"]
            # a deposit the stream never tells (the simulator sends no balanceUpdate)
            sim.call(lambda: sim.venues[VENUE].orders.accounts.get(DEFAULT_KEY).fund("ETH", 5 * 10**8, 1))
            sim.inject(VENUE, "disconnect_userstream", abrupt=True)
            acct = wait_account(oc, lambda a: free(a, "ETH") == 5)
            assert sim_orders(sim)["requests"]["GET /api/v3/account"] > asked
            assert acct.balances["BTC"].free == FUNDED  # the others unchanged
        while follower.poll():
            pass
        assert follower.account(VENUE).balances["ETH"].free == 5  # the journal alone says the same
    finally:
        follower.close()


def test_the_exec_channel_interleaves_both_kinds_in_one_gap_free_exec_seq(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_market("mkt-1", SYM, "buy", "0.001")
        got = collect(oc, terminal("mkt-1"))
        assert {int(r["kind"]) for r in got} == {Kind.EXEC_REPORT}  # a consumer's own reports only
        wait_account(oc, lambda a: free(a, "BTC") == FUNDED + Decimal("0.001"))
    with client(run_ctx, "watch", monitor_all=True, resume_from=0) as watch:
        recs: list = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (recs and int(recs[-1]["exec"]["exec_seq"]) >= oc.next_seq - 1):
            recs.extend(r.copy() for r in watch.poll_reports(timeout_s=0.1))
    seqs = np.array([int(r["exec"]["exec_seq"]) for r in recs])
    assert (seqs == np.arange(1, len(seqs) + 1)).all()
    kinds = [Kind(int(r["kind"])) for r in recs]
    assert kinds[0] is Kind.ACCOUNT  # the start snapshot comes before any order
    assert Kind.EXEC_REPORT in kinds and all(int(r["consumer_id"]) == 0 for r in recs if r["kind"] == Kind.ACCOUNT)
