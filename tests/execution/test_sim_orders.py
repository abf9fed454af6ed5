"""Lifecycle walks against the simulator, through `python -m execution` and the SDK."""

from __future__ import annotations

import orjson
import pytest
import zmq

from channels.identity import consumer_key
from channels.names import execution_endpoint

from .harness import client, collect, of, sim_orders, statuses, terminal, top
from .rig import vc

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
SYM = "BTC-USDT"


def filled(reports) -> list[int]:
    return [int(r["exec"]["filled"]) for r in reports]


def test_limit_gtc_rests_is_acked_then_cancelled(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        assert oc.submit_limit("gtc-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "gtc-1")) == ["ACK"])
        assert oc.query("gtc-1")["order"]["status"] == "ACK"
        assert oc.cancel("gtc-1")["status"] == "accepted"
        collect(oc, terminal("gtc-1"), got=got)
        assert statuses(of(got, "gtc-1")) == ["ACK", "CANCELLED"]
        again = oc.cancel("gtc-1")
        assert again["status"] == "rejected" and again["order"]["status"] == "CANCELLED"


def test_market_orders_buy_and_sell_are_filled(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        oc.submit_market("mkt-b", SYM, "buy", "0.002")
        oc.submit_market("mkt-s", SYM, "sell", "0.001")
        got = collect(oc, lambda g: terminal("mkt-b")(g) and terminal("mkt-s")(g))
        for coid, qty in (("mkt-b", 200), ("mkt-s", 100)):
            rs = of(got, coid)
            assert statuses(rs)[0] == "ACK" and statuses(rs)[-1] == "FILLED"
            assert filled(rs)[-1] == qty
            assert sum(int(r["exec"]["last_qty"]) for r in rs) == qty
            assert all(int(r["exec"]["filled"]) + int(r["exec"]["remaining"]) == qty for r in rs)
            assert int(rs[-1]["exec"]["cum_quote"]) > 0


def test_every_time_in_force_outcome(run_ctx, sim, execution):
    execution()
    (bid, _), (ask, ask_qty) = top(sim)
    with client(run_ctx) as oc:
        oc.submit_limit("ioc-miss", SYM, "buy", "0.001", "60000", tif="IOC")
        oc.submit_limit("fok-miss", SYM, "buy", "0.001", "60000", tif="FOK")
        oc.submit_limit("gtc-take", SYM, "buy", "0.001", "70000", tif="GTC")
        oc.submit_limit("fok-take", SYM, "sell", "0.001", "60000", tif="FOK")
        done = lambda g: all(terminal(c)(g) for c in ("ioc-miss", "fok-miss", "gtc-take", "fok-take"))  # noqa: E731
        got = collect(oc, done)
        assert statuses(of(got, "ioc-miss"))[-1] == "EXPIRED" and filled(of(got, "ioc-miss"))[-1] == 0
        assert statuses(of(got, "fok-miss"))[-1] == "EXPIRED" and filled(of(got, "fok-miss"))[-1] == 0
        assert statuses(of(got, "gtc-take"))[-1] == "FILLED"
        assert statuses(of(got, "fok-take"))[-1] == "FILLED"


def test_ioc_larger_than_the_top_level_fills_partly_then_expires(run_ctx, sim, execution):
    execution()
    _, (ask, ask_qty) = top(sim)
    qty = f"{float(ask_qty) + 1:.5f}"  # more than the best ask holds (the string is exact at 5 dp)
    with client(run_ctx) as oc:
        oc.submit_limit("ioc-part", SYM, "buy", qty, ask.rstrip("0"), tif="IOC")
        rs = of(collect(oc, terminal("ioc-part")), "ioc-part")
        assert statuses(rs)[-1] == "EXPIRED"
        assert 0 < filled(rs)[-1] < int(round(float(qty) * 10**5))
        assert "PARTIAL" in statuses(rs) or len(rs) == 2


def test_a_venue_filter_failure_is_rejected_with_the_venue_code(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        assert oc.submit_limit("too-high", SYM, "sell", "0.001", "99999999")["status"] == "accepted"
        rs = of(collect(oc, terminal("too-high")), "too-high")
        assert statuses(rs) == ["REJECTED"]
        assert int(rs[0]["exec"]["reject_code"]) == -1013
        assert rs[0]["exec"]["reason"].startswith(b"venue refused")


def test_duplicates_same_consumer_across_consumers_and_across_restarts(run_ctx, sim, execution, reap):
    ex = execution()
    with client(run_ctx, "c1") as c1, client(run_ctx, "c2") as c2:
        assert c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        assert c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000")["status"] == "duplicate"
        assert c2.submit_limit("dup-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        collect(c1, lambda g: statuses(of(g, "dup-1")) == ["ACK"])
    ex.stop()
    execution()
    with client(run_ctx, "c1") as c1:  # a restarted consumer, a restarted execution
        dup = c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000")
        assert dup["status"] == "duplicate" and dup["order"]["status"] == "ACK"
    received = sim_orders(sim)["received"]
    assert sorted(received.values()) == [1, 1]


def test_the_switch_off_suppresses_in_the_sdk_and_execution_refuses_as_second_line(run_ctx, sim, execution):
    execution()
    with client(run_ctx, "c1", trading_enabled=False) as off:
        assert off.submit_limit("sw-1", SYM, "buy", "0.001", "60000")["status"] == "suppressed"
        assert off.suppressed == 1
    ctl = zmq.Context.instance().socket(zmq.DEALER)  # as dispatch forwards set-trading-mode
    ctl.setsockopt(zmq.LINGER, 0)
    ctl.connect(execution_endpoint(run_ctx.run_dir))
    ctl.send(orjson.dumps({"cmd": "set_trading_mode", "request_id": 9, "consumer": "c1",
                           "key": consumer_key(run_ctx.run_dir, "c1"), "enabled": False}))
    assert ctl.poll(5000)
    reply = orjson.loads(ctl.recv())
    ctl.close()
    assert reply == {"type": "result", "request_id": 9, "cmd": "set_trading_mode", "ok": True, "code": None,
                     "reason": "", "consumer": "c1", "trading_enabled": False}
    with client(run_ctx, "c1") as on_locally:
        r = on_locally.submit_limit("sw-2", SYM, "buy", "0.001", "60000")
        assert r["status"] == "rejected" and r["code"] == "trading_disabled"
    assert sim_orders(sim)["received"] == {}


def test_pre_trade_limits_from_the_command_line(run_ctx, sim, execution):
    execution("--limits", "max_notional=100,max_open_orders=1,max_orders_per_s=100")
    with client(run_ctx) as oc:
        assert oc.submit_limit("l-big", SYM, "buy", "0.01", "60000")["code"] == "max_notional"
        assert oc.submit_limit("l-1", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        assert oc.submit_limit("l-2", SYM, "buy", "0.001", "60000")["code"] == "max_open_orders"
        # accepted = persisted; it reaches the venue right after: its ACK says so
        collect(oc, lambda got: bool(of(got, "l-1")))
    assert len(sim_orders(sim)["received"]) == 1


def test_orders_name_their_venue_through_the_sdk_and_a_venue_not_traded_is_refused(run_ctx, sim, execution):
    execution("--venues", "binance-spot")
    with client(run_ctx) as oc:
        r = oc.submit_limit("v-1", SYM, "buy", "0.001", "60000", venue="binance-spot")
        assert r["status"] == "accepted" and r["order"]["venue"] == "binance-spot"
        got = collect(oc, lambda g: statuses(of(g, "v-1")) == ["ACK"])
        assert got[0]["provider"] == 1  # Provider.BINANCE_SPOT in the record header
        assert oc.submit_limit("v-0", SYM, "buy", "0.001", "60000")["order"]["venue"] == "binance-spot"  # the only one
        no = oc.submit_limit("v-2", SYM, "buy", "0.001", "60000", venue="okx")
        assert no["status"] == "rejected" and no["code"] == "unknown_provider" and "binance-spot" in no["reason"]
        dup = oc.submit_limit("v-1", SYM, "buy", "0.001", "60000", venue="okx")  # same id: the existing order
        assert dup["status"] == "duplicate" and dup["order"]["venue"] == "binance-spot"
        st = oc.request("status")
        assert st["venues"]["binance-spot"]["stream_up"] is True and st["venues"]["binance-spot"]["down"] is None
    assert [o["clientOrderId"] for o in sim_orders(sim)["orders"]].count(vc("v-1")) == 1
