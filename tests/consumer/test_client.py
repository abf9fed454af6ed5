"""The consumer SDK against a dispatch process running in a thread."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest
import zmq

from channels.names import dispatch_endpoint
from consumer import Consumer
from tests.synthetic import records
from events import EVENT, Closed, Command, Kind, PeerGone, Provider
from shm import RingWriter

pytestmark = pytest.mark.timeout(30)
OKX = int(Provider.OKX)


def drain(c: Consumer, want, timeout_s: float = 5.0) -> list:
    """Read single records until `want(list)` holds or the time is up."""
    got = []
    deadline = time.monotonic() + timeout_s
    while not want(got) and time.monotonic() < deadline:
        got += [r.copy() for r in c.events(256, timeout_s=0.05)]
    return got


def md(recs):
    return [(int(r["kind"]), int(r["seq_provider"])) for r in recs if not Kind(int(r["kind"])).critical]


def test_a_consumer_registers_subscribes_receives_and_detaches(run_ctx, dispatch):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 256) as w:
        with Consumer("alpha") as c:
            assert c.consumer_id == 1 and c.ring_name == "consumer.alpha.md"
            res = c.subscribe("BTC-USDT", providers="okx", kinds=["trade"])
            assert res.ok and res.error is None and res.routing_version >= 2
            time.sleep(0.05)  # dispatch finds md.okx (it lists the namespace every 10 ms)
            w.write_batch(records(OKX, "BTC-USDT", Kind.TRADE, range(1, 6)))
            w.write_batch(records(OKX, "BTC-USDT", Kind.BOOK, range(1, 3)))  # not subscribed
            got = drain(c, lambda g: len(md(g)) >= 5)
            assert md(got) == [(Kind.TRADE, s) for s in range(1, 6)]
            assert {int(r["consumer_id"]) for r in got} == {1}
            kinds = [int(r["kind"]) for r in got if Kind(int(r["kind"])).critical]
            assert kinds[:4] == [Kind.CONTROL_ACK, Kind.CONTROL_RESULT] * 2  # register, subscribe
        assert "consumer.alpha.md" not in run_ctx.namespace.names()       # unregistered
        with pytest.raises(Closed):
            c.subscribe("BTC-USDT")


def test_bad_commands_return_an_error_result_not_an_exception(dispatch):
    with Consumer("alpha") as c:
        r = c.merged_subscribe("BTC-USDT", ["okx"])
        assert not r.ok and r.error["code"] == "bad_merge"
        assert c.subscribe("NOPE-USDT").error["code"] == "unknown_instrument"
        assert c.merged_subscribe("BTC-USDT", ["okx", "binance-spot"]).ok
        listing = c.list_subscriptions()
        assert listing["merged"] == [{"symbol": "BTC-USDT", "providers": ["binance-spot", "okx"]}]


def test_market_data_routed_before_an_unsubscribe_is_filtered_critical_records_are_not(run_ctx, dispatch):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 256) as w, Consumer("alpha") as c:
        c.subscribe("BTC-USDT")
        time.sleep(0.05)
        w.write_batch(records(OKX, "BTC-USDT", Kind.TRADE, range(1, 4)))
        time.sleep(0.1)  # routed into the ring, not read yet
        res = c.unsubscribe("BTC-USDT")
        assert res.ok and res["changed"] and c.min_routing_version == res.routing_version
        def results(g):  # register, subscribe, unsubscribe (the SDK's own listings aside)
            return [r for r in g if int(r["kind"]) == Kind.CONTROL_RESULT
                    and int(r["result"]["command"]) != Command.LIST_SUBSCRIPTIONS]
        got = drain(c, lambda g: len(results(g)) >= 3, timeout_s=2)
        assert md(got) == []
        assert c.filtered == 3
        assert len(results(got)) == 3


def test_the_local_trading_switch_follows_set_trading_mode(run_ctx, dispatch):
    with Consumer("alpha") as c:
        assert c.trading_enabled is False
        r = c.set_trading_mode(True)
        assert r.ok and r["forward"]["status"] == "absent" and c.trading_enabled
        ops = zmq.Context.instance().socket(zmq.DEALER)  # an operator switches alpha off
        ops.setsockopt(zmq.LINGER, 0)
        ops.connect(dispatch_endpoint(run_ctx.run_dir))
        try:  # the operator speaks for alpha with its key (it can read the run directory)
            ops.send(orjson.dumps({"cmd": "set_trading_mode", "request_id": 1,
                                   "consumer": "alpha", "key": c.key, "enabled": False}))
            drain(c, lambda g: not c.trading_enabled, timeout_s=2)
        finally:
            ops.close(0)
        assert c.trading_enabled is False  # followed the result on its ring


def test_iterating_yields_single_private_records(run_ctx, dispatch):
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 256) as w, Consumer("alpha") as c:
        c.subscribe("BTC-USDT", kinds=["book"])
        time.sleep(0.05)
        w.write_batch(records(OKX, "BTC-USDT", Kind.BOOK, range(1, 4)))
        seen = []
        for rec in c:
            assert isinstance(rec, np.void) and rec.dtype == EVENT
            if rec["kind"] == Kind.BOOK:
                seen.append(int(rec["seq_provider"]))
            if len(seen) == 3:
                break
        assert seen == [1, 2, 3]


def test_a_consumer_without_dispatch_fails_fast(run_ctx):
    with pytest.raises(PeerGone, match="did not answer register"):
        Consumer("alpha", timeout_s=0.2)


def _start_dispatch(run_ctx):
    import threading

    from dispatch.config import DispatchConfig
    from dispatch.process import DispatchProcess
    proc = DispatchProcess(run_ctx, DispatchConfig(), telemetry="", instruments=["BTC-USDT"],
                           discover_ns=10_000_000, exec_timeout_ns=300_000_000)
    stop = threading.Event()
    t = threading.Thread(target=proc.run, args=(stop,), kwargs={"max_nap_ns": 100_000})
    t.start()

    def halt():
        stop.set()
        t.join(10)
        proc.close()
    return halt


def test_a_consumer_resubscribes_by_itself_after_dispatch_restarts(run_ctx):
    halt = _start_dispatch(run_ctx)
    try:
        with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 256) as w:
            c = Consumer("alpha")
            assert c.subscribe("BTC-USDT", providers="okx", kinds=["trade"]).ok
            time.sleep(0.05)  # dispatch lists the namespace every 10 ms
            w.write_batch(records(OKX, "BTC-USDT", Kind.TRADE, range(1, 4)))
            assert md(drain(c, lambda g: len(md(g)) >= 3)) == [(Kind.TRADE, s) for s in (1, 2, 3)]
            halt()  # dispatch stops: its rings close
            halt = _start_dispatch(run_ctx)  # a new dispatch knows nothing of alpha
            deadline = time.monotonic() + 10
            while c.recoveries == 0 and time.monotonic() < deadline:
                c.events(256, timeout_s=0.05)  # finds the ring closed, registers again
            assert c.recoveries == 1
            time.sleep(0.05)
            w.write_batch(records(OKX, "BTC-USDT", Kind.TRADE, range(4, 7)))
            got = drain(c, lambda g: len(md(g)) >= 3)
            assert md(got) == [(Kind.TRADE, s) for s in (4, 5, 6)]
            c.close()
    finally:
        halt()
