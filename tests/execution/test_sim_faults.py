"""Order-path faults of the simulator: unknown outcomes, a lost user stream, duplicate reports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .harness import client, collect, gap_free, of, sim_orders, statuses, terminal, top

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
SYM = "BTC-USDT"
V = "binance-spot"


@pytest.mark.parametrize("fault, kw", [("drop_response", {}), ("drop_response", {"hang": True}),
                                       ("delay_response", {"seconds": 1.5})])
def test_an_unknown_outcome_is_resolved_by_query_and_the_venue_sees_the_order_once(run_ctx, sim, execution,
                                                                                     fault, kw):
    execution("--timeout", "0.5")
    with client(run_ctx) as oc:
        sim.inject(V, fault, **kw)
        assert oc.submit_limit("u-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "u-1")) == ["ACK"])
        assert oc.query("u-1")["order"]["status"] == "ACK"
        oc.cancel("u-1")
        collect(oc, terminal("u-1"), got=got)
        assert statuses(of(got, "u-1")) == ["ACK", "CANCELLED"]
    assert list(sim_orders(sim)["received"].values()) == [1]


def test_fills_while_the_user_stream_is_down_are_reconciled(run_ctx, sim, execution):
    execution()
    (bid, _), (ask, _) = top(sim)
    inside = str(Decimal(ask) - Decimal("0.01")) if Decimal(ask) - Decimal(bid) > Decimal("0.01") else ask
    with client(run_ctx, "maker") as maker, client(run_ctx, "taker") as taker:
        maker.submit_limit("rest-1", SYM, "sell", "0.001", inside.rstrip("0").rstrip("."))
        got = collect(maker, lambda g: statuses(of(g, "rest-1"))[:1] == ["ACK"])
        if statuses(of(got, "rest-1"))[-1] == "FILLED":
            pytest.skip("the market crossed our price before the fault")
        sim.inject(V, "disconnect_userstream", abrupt=True)
        taker.submit_market("take-1", SYM, "buy", "0.5")  # sweeps past ours even if asks moved in
        collect(taker, terminal("take-1"))
        collect(maker, terminal("rest-1"), got=got)
        assert statuses(of(got, "rest-1"))[-1] == "FILLED"


def test_a_duplicated_execution_report_yields_one_exec_report(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_limit("d-1", SYM, "buy", "0.001", "60000")
        got = collect(oc, lambda g: statuses(of(g, "d-1")) == ["ACK"])
        sim.inject(V, "duplicate_report", count=2)
        oc.cancel("d-1")
        collect(oc, terminal("d-1"), got=got)
        got.extend(oc.poll_reports(timeout_s=0.5))
        assert statuses(of(got, "d-1")) == ["ACK", "CANCELLED"]
        gap_free(run_ctx, got)
