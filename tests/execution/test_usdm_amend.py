"""Amend on Binance USD-M end to end: the SDK -> `python -m execution` -> the USD-M adapter
(PUT /fapi/v1/order: quantity and price both sent, the venue order and its client id kept)
-> the simulator, and back on the exec channel."""

from __future__ import annotations

import pytest

from events import ExecStatus

from .harness import client, collect, of, statuses, terminal
from .test_usdm_sim import SYM, sim_orders, stream_up, usdm, usdm_execution  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]


def amended(coid: str):
    return lambda got: any(r["exec"]["reason"] == b"amended" for r in of(got, coid))


def the_order(sim) -> dict:
    (o,) = sim_orders(sim)["orders"]
    return o


@pytest.mark.parametrize("change, qty, price", [({"qty": "0.001"}, "0.00100", "60000.00"),
                                                 ({"price": "59990"}, "0.00200", "59990.00"),
                                                 ({"qty": "0.003", "price": "59990.5"}, "0.00300", "59990.50")])
def test_a_modify_keeps_the_venue_order_and_reports_the_new_figures(run_ctx, usdm, usdm_execution,
                                                                     change, qty, price):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_limit("md-1", SYM, "buy", "0.002", "60000", venue="binance-usdm")
        got = collect(oc, lambda g: statuses(of(g, "md-1")) == ["ACK"])
        before = the_order(usdm)
        r = oc.amend("md-1", **change)
        assert (r["status"], r["order"]["pending"]) == ("accepted", "replace")
        collect(oc, amended("md-1"), got=got)
        (rep,) = [x for x in of(got, "md-1") if x["exec"]["reason"] == b"amended"]
        assert ExecStatus(int(rep["exec"]["status"])) is ExecStatus.ACK
        after = the_order(usdm)
        assert after["orderId"] == before["orderId"] and (after["origQty"], after["price"]) == (qty, price)
        assert sim_orders(usdm)["requests"].get("PUT /fapi/v1/order") == 1
        o = oc.query("md-1")["order"]
        assert (o["pending"], o["status"], o["venue_client_order_id"]) == (None, "ACK", before["clientOrderId"])
        oc.cancel("md-1")
        collect(oc, terminal("md-1"), got=got)
        assert statuses(of(got, "md-1"))[-1] == "CANCELLED"


def test_a_modify_to_a_crossing_price_fills_the_order(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_limit("md-x", SYM, "buy", "0.001", "60000", venue="binance-usdm")
        got = collect(oc, lambda g: statuses(of(g, "md-x")) == ["ACK"])
        assert oc.amend("md-x", price="70000")["status"] == "accepted"
        collect(oc, terminal("md-x"), got=got)
        rs = of(got, "md-x")
        assert statuses(rs)[-1] == "FILLED" and int(rs[-1]["exec"]["filled"]) == 100


def test_a_refused_modify_reaches_the_consumer_with_the_venue_code(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_limit("md-r", SYM, "buy", "0.002", "60000", venue="binance-usdm")
        got = collect(oc, lambda g: statuses(of(g, "md-r")) == ["ACK"])
        assert oc.amend("md-r", price="99999999")["status"] == "accepted"
        collect(oc, lambda g: any(x["exec"]["reject_code"] != 0 for x in of(g, "md-r")), got=got)
        (e,) = [x["exec"] for x in of(got, "md-r") if x["exec"]["reject_code"] != 0]
        assert int(e["reject_code"]) == -4016 and ExecStatus(int(e["status"])) is ExecStatus.ACK
        o = oc.query("md-r")["order"]
        assert (o["pending"], o["price"]) == (None, "60000")
        assert the_order(usdm)["status"] == "NEW"
