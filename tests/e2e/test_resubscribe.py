"""After dispatch restarts, the consumer SDK registers again and restores its
subscriptions by itself: what a consumer gets from the new dispatch must be what it had
asked for by then, unsubscribes included. Checked with dispatch's own listing (an
operator's list_subscriptions) before the SIGKILL and after the recovery, and with the
data that arrives."""

from __future__ import annotations

import numpy as np
import pytest

from bench._chaos_harness import Operator, PipelineRun
from consumer import Consumer
from events import Kind, instrument_id

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(120)]


def restart_dispatch(run: PipelineRun, c: Consumer) -> None:
    """SIGKILL dispatch; return once `c` re-registered with the new one and receives."""
    before = c.recoveries
    k = run.kill("dispatch")
    run.wait_respawn(k)
    run.wait_until(lambda: len(c.events(4096, timeout_s=0.05)) > 0 and c.recoveries > before, 30,
                   "the consumer re-registered with the new dispatch and receiving", step_s=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = PipelineRun(tmp_path_factory.mktemp("resub"), rate=50.0, orders=False)
    r.start()
    try:
        yield r
    finally:
        r.stop()
        assert r.left_after_stop == []


def test_plain_and_merged_subscriptions_come_back_as_they_were(run):
    op = Operator(run.ctx)
    with Consumer("e2e-resub", run.ctx) as c:
        assert c.subscribe("BTC-USDT").ok
        assert c.subscribe("ETH-USDT", providers=["okx"], kinds=["book"]).ok
        assert c.merged_subscribe("SOL-USDT", ["binance-spot", "okx"]).ok
        assert c.subscribe("SOL-USDT", providers=["binance-spot"]).ok
        assert c.unsubscribe("SOL-USDT", providers=["binance-spot"])["changed"]
        listed = op.consumers()["e2e-resub"]
        restart_dispatch(run, c)
        assert op.consumers()["e2e-resub"] == listed


def test_an_unsubscribed_kind_stays_unsubscribed_after_a_dispatch_restart(run):
    btc = instrument_id("BTC-USDT")
    op = Operator(run.ctx)
    with Consumer("e2e-narrow", run.ctx) as c:
        assert c.subscribe("BTC-USDT", providers=["binance-spot", "okx"], kinds=["book", "trade"]).ok
        res = c.unsubscribe("BTC-USDT", kinds=["trade"])
        assert res.ok and res["changed"]  # dispatch removed the trade entries
        listed = op.consumers()["e2e-narrow"]
        assert {s["kind"] for s in listed["subscriptions"]} == {"book"}
        restart_dispatch(run, c)
        kinds: dict[int, int] = {}

        def take():
            b = c.events(4096, timeout_s=0.05)
            md = b[(b["provider"] != 0) & (b["instrument"] == btc)]
            for k in np.unique(md["kind"]).tolist():
                kinds[k] = kinds.get(k, 0) + int(np.count_nonzero(md["kind"] == k))
            return kinds.get(int(Kind.BOOK), 0) >= 200
        run.wait_until(take, 30, "200 BTC-USDT books after the restart", step_s=0)
        assert op.consumers()["e2e-narrow"] == listed
        assert kinds.get(int(Kind.TRADE), 0) == 0, f"trades after the restart: {kinds}"


def test_an_operators_trading_off_survives_a_dispatch_restart(run):
    """The kill switch: an operator turns a strategy's trading off (dispatch forwards it to
    execution); a dispatch restart must not turn it on again, in the SDK, in dispatch or
    in execution."""
    from consumer.orders import OrderClient

    op = Operator(run.ctx)
    with Consumer("e2e-switch", run.ctx) as c, OrderClient(c, run=run.ctx) as oc:
        assert c.set_trading_mode(True).ok and c.trading_enabled
        res = op.request("set_trading_mode", consumer="e2e-switch", key=c.key, enabled=False)
        assert res["ok"] and res["forward"]["status"] == "ok", res
        run.wait_until(lambda: c.events(64, timeout_s=0.05) is not None and not c.trading_enabled, 10,
                       "the consumer's switch following the operator's", step_s=0)
        restart_dispatch(run, c)
        after = {"sdk": c.trading_enabled,
                 "dispatch": op.request("list_subscriptions", consumer="e2e-switch", key=c.key)["trading_enabled"]}
        c._trading = True  # bypass the SDK's switch: does execution still refuse?
        after["execution"] = oc.submit_limit("e2e-sw-1", "BTC-USDT", "buy", "0.001", "30000")["status"]
        assert after == {"sdk": False, "dispatch": False, "execution": "rejected"}
