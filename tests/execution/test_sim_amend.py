"""Amend end to end: the SDK -> `python -m execution` -> the Binance spot adapter -> the
simulator, and back on the exec channel. A quantity decrease at the same price goes in
place (PUT /api/v3/order/amend/keepPriority: same venue order, same client order id);
a price change is a cancel-replace (POST /api/v3/order/cancelReplace: a new venue order
under the id execution derived for it)."""

from __future__ import annotations

import pytest

from events import ExecStatus

from .harness import client, collect, of, sim_orders, statuses, terminal
from .rig import vc

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
SYM = "BTC-USDT"


def amended(coid: str):
    """A `collect` condition: a report of `coid` says "amended"."""
    return lambda got: any(r["exec"]["reason"] == b"amended" for r in of(got, coid))


def venue_orders(sim, cid: str) -> list[dict]:
    return [o for o in sim_orders(sim)["orders"] if o["clientOrderId"] == cid]


def test_a_quantity_decrease_is_amended_in_place_keeping_the_venue_order(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        assert oc.submit_limit("kp-1", SYM, "buy", "0.002", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "kp-1")) == ["ACK"])
        [before] = venue_orders(sim, vc("kp-1"))
        r = oc.amend("kp-1", qty="0.001")
        assert (r["ok"], r["status"], r["order"]["pending"]) == (True, "accepted", "replace")
        collect(oc, amended("kp-1"), got=got)
        [rep] = [x for x in of(got, "kp-1") if x["exec"]["reason"] == b"amended"]
        e = rep["exec"]
        assert ExecStatus(int(e["status"])) is ExecStatus.ACK
        assert (int(e["qty"]), int(e["remaining"]), int(e["filled"])) == (100, 100, 0)
        [after] = venue_orders(sim, vc("kp-1"))
        assert after["orderId"] == before["orderId"] and after["origQty"] == "0.00100000"
        assert sim_orders(sim)["requests"].get("PUT /api/v3/order/amend/keepPriority") == 1
        o = oc.query("kp-1")["order"]
        assert (o["qty"], o["status"], o["pending"], o["venue_client_order_id"]) == ("0.001", "ACK", None, vc("kp-1"))
        assert oc.cancel("kp-1")["status"] == "accepted"
        collect(oc, terminal("kp-1"), got=got)
        assert statuses(of(got, "kp-1"))[-1] == "CANCELLED"


def test_a_price_change_is_a_cancel_replace_onto_a_new_venue_order_the_order_follows(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_limit("cr-1", SYM, "buy", "0.002", "60000")
        got = collect(oc, lambda g: statuses(of(g, "cr-1")) == ["ACK"])
        assert oc.amend("cr-1", price="59990")["status"] == "accepted"
        collect(oc, amended("cr-1"), got=got)
        [rep] = [x for x in of(got, "cr-1") if x["exec"]["reason"] == b"amended"]
        e = rep["exec"]
        assert ExecStatus(int(e["status"])) is ExecStatus.ACK and int(e["qty"]) == 200
        o = oc.query("cr-1")["order"]
        assert o["price"] == "59990" and o["pending"] is None
        new = o["venue_client_order_id"]
        assert new != vc("cr-1")
        [old_o] = venue_orders(sim, vc("cr-1"))
        [new_o] = venue_orders(sim, new)
        assert old_o["status"] == "CANCELED" and new_o["status"] == "NEW"
        assert (new_o["price"], new_o["origQty"]) == ("59990.00000000", "0.00200000")
        assert int(e["venue_order_id"]) == new_o["orderId"]
        assert sim_orders(sim)["requests"].get("POST /api/v3/order/cancelReplace") == 1
        # the cancel leg never showed as CANCELLED to the consumer; the order lives on, and ends by its new id
        assert "CANCELLED" not in statuses(of(got, "cr-1"))
        assert oc.cancel("cr-1")["status"] == "accepted"
        collect(oc, terminal("cr-1"), got=got)
        assert statuses(of(got, "cr-1"))[-1] == "CANCELLED"
        [new_o] = venue_orders(sim, new)
        assert new_o["status"] == "CANCELED"


def test_an_amend_to_a_crossing_price_fills_the_order(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_limit("cr-x", SYM, "buy", "0.001", "60000")
        got = collect(oc, lambda g: statuses(of(g, "cr-x")) == ["ACK"])
        assert oc.amend("cr-x", price="70000")["status"] == "accepted"
        collect(oc, terminal("cr-x"), got=got)
        rs = of(got, "cr-x")
        assert statuses(rs)[-1] == "FILLED"
        assert int(rs[-1]["exec"]["filled"]) == 100 and int(rs[-1]["exec"]["remaining"]) == 0


def test_a_refused_amend_reaches_the_consumer_with_the_venue_code(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_limit("rf-1", SYM, "buy", "0.002", "60000")
        got = collect(oc, lambda g: statuses(of(g, "rf-1")) == ["ACK"])
        # above the venue's PRICE_FILTER maxPrice (ours has none): the cancel-replace is refused whole
        r = oc.amend("rf-1", price="99999999")
        assert r["status"] == "accepted", r
        collect(oc, lambda g: any(x["exec"]["reject_code"] != 0 for x in of(g, "rf-1")), got=got)
        [e] = [x["exec"] for x in of(got, "rf-1") if x["exec"]["reject_code"] != 0]
        assert int(e["reject_code"]) == -1013 and e["reason"].startswith(b"amend refused: -1013")
        assert int(e["qty"]) == 200 and ExecStatus(int(e["status"])) is ExecStatus.ACK
        o = oc.query("rf-1")["order"]
        assert (o["pending"], o["price"], o["venue_client_order_id"]) == (None, "60000", vc("rf-1"))
        [venue_o] = venue_orders(sim, vc("rf-1"))
        assert venue_o["status"] == "NEW"  # nothing was cancelled
