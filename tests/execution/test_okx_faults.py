"""Order-path faults of the simulator on OKX, through `python -m execution --venue okx`:
unknown outcomes (REST and WS order entry), a lost private stream, duplicate reports, a
server notice, and a REST answer arriving after the stream's reports (out of order)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .harness import client, collect, gap_free, of, statuses, terminal
from .test_chaos import wait_until
from .test_okx_lifecycle import OkxExec, okx_sim, sim_orders, top  # noqa: F401  (okx_sim: the fixture)

pytestmark = [pytest.mark.timeout(90), pytest.mark.multiprocess]
SPOT = "BTC-USDT"
V = "okx"


@pytest.mark.parametrize("entry", ["rest", "ws"])
@pytest.mark.parametrize("fault, kw", [("drop_response", {}), ("delay_response", {"seconds": 1.5})])
def test_an_unknown_outcome_is_resolved_by_query_and_the_venue_sees_the_order_once(run_ctx, okx_sim, reap, fault,
                                                                                     kw, entry):
    OkxExec(run_ctx, okx_sim, reap, "--timeout", "0.5", entry=entry).start()
    with client(run_ctx) as oc:
        okx_sim.inject(V, fault, **kw)
        assert oc.submit_limit("u-1", SPOT, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "u-1")) == ["ACK"])
        oc.cancel("u-1")
        collect(oc, terminal("u-1"), got=got)
        assert statuses(of(got, "u-1")) == ["ACK", "CANCELLED"]
    assert list(sim_orders(okx_sim)["received"].values()) == [1]


def test_fills_while_the_private_stream_is_down_are_reconciled(run_ctx, okx_sim, reap):
    OkxExec(run_ctx, okx_sim, reap).start()
    (bid, _), (ask, _) = top(okx_sim)
    inside = str(Decimal(ask) - Decimal("0.01")) if Decimal(ask) - Decimal(bid) > Decimal("0.01") else ask
    with client(run_ctx, "maker") as maker, client(run_ctx, "taker") as taker:
        maker.submit_limit("rest-1", SPOT, "sell", "0.001", inside)
        got = collect(maker, lambda g: statuses(of(g, "rest-1"))[:1] == ["ACK"])
        if statuses(of(got, "rest-1"))[-1] == "FILLED":
            pytest.skip("the market crossed our price before the fault")
        okx_sim.inject(V, "disconnect_userstream", abrupt=True)
        taker.submit_market("take-1", SPOT, "buy", "0.5")   # sweeps past ours even if asks moved in
        collect(taker, terminal("take-1"))
        collect(maker, terminal("rest-1"), got=got)
        assert statuses(of(got, "rest-1"))[-1] == "FILLED"
    wait_until(lambda: okx_sim.stats()["okx"]["orders"]["private"]["logins"] >= 2, 20, "the private stream back")


def test_duplicated_pushes_yield_one_exec_report_each(run_ctx, okx_sim, reap):
    OkxExec(run_ctx, okx_sim, reap).start()
    with client(run_ctx) as oc:
        okx_sim.inject(V, "duplicate_report", count=4)
        oc.submit_market("d-1", SPOT, "buy", "0.002")
        oc.submit_limit("d-2", SPOT, "buy", "0.001", "60000")
        got = collect(oc, lambda g: terminal("d-1")(g) and statuses(of(g, "d-2")) == ["ACK"])
        oc.cancel("d-2")
        collect(oc, terminal("d-2"), got=got)
        got.extend(oc.poll_reports(timeout_s=0.5))
        assert statuses(of(got, "d-1"))[0] == "ACK" and statuses(of(got, "d-1"))[-1] == "FILLED"
        assert sum(int(r["exec"]["last_qty"]) for r in of(got, "d-1")) == 200
        assert statuses(of(got, "d-2")) == ["ACK", "CANCELLED"]
        gap_free(run_ctx, got)
    assert okx_sim.stats()["okx"]["faults"]["applied"]["duplicate_report"] == 4


def test_a_service_upgrade_notice_reconnects_and_trading_goes_on(run_ctx, okx_sim, reap):
    OkxExec(run_ctx, okx_sim, reap, entry="ws").start()
    with client(run_ctx) as oc:
        okx_sim.inject(V, "server_shutdown", seconds=0.5)
        oc.submit_limit("n-1", SPOT, "buy", "0.001", "60000")
        got = collect(oc, lambda g: statuses(of(g, "n-1")) == ["ACK"])
        oc.cancel("n-1")
        collect(oc, terminal("n-1"), got=got)
        assert statuses(of(got, "n-1")) == ["ACK", "CANCELLED"]
    wait_until(lambda: okx_sim.stats()["okx"]["orders"]["private"]["logins"] >= 2, 20, "the private stream back")


def test_pushes_out_of_order_change_nothing_the_order_did_not_do(run_ctx, okx_sim, reap):
    OkxExec(run_ctx, okx_sim, reap).start()
    with client(run_ctx) as oc:
        okx_sim.inject(V, "reorder_report", count=3)
        oc.submit_market("r-1", SPOT, "buy", "0.002")          # its "filled" push before its "live"
        oc.submit_limit("r-2", SPOT, "buy", "0.001", "60000")
        got = collect(oc, lambda g: terminal("r-1")(g) and statuses(of(g, "r-2")) == ["ACK"])
        got.extend(oc.poll_reports(timeout_s=1.5))              # the last held push comes within 1 s
        assert statuses(of(got, "r-1")) in (["ACK", "FILLED"], ["FILLED"])
        assert sum(int(r["exec"]["last_qty"]) for r in of(got, "r-1")) == 200
        assert statuses(of(got, "r-2")) == ["ACK"]
        gap_free(run_ctx, got)
