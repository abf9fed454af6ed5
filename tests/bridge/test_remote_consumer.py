"""A consumer on another host subscribes, switches trading and recovers exactly as locally.

The dispatch host runs a real dispatch, a stand-in ingest (trades of BTC-USDT and
ETH-USDT) and `bridge ctl-serve --target dispatch` as NATS user dispatch; the consumer
host runs `bridge ctl-expose --target dispatch --target execution --consumer a` as user
a (deploy/hosts/strategy.conf; no execution here: orders are test_ctl's), and the
unchanged SDK (`consumer.Consumer`). Dispatch answers each request twice (ack, result)
and writes both, and the market data, on the consumer's ring: all of it reaches the
consumer host. Dispatch SIGKILLed and restarted: the ring closes on both hosts, the SDK
registers again and its subscriptions come back; the same when either bridge is
SIGKILLed and restarted. Consumer A cannot register,
subscribe, list or read B's ring.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest

from bridge.config import inbox_prefix
from channels.names import dispatch_endpoint
from consumer import Consumer
from events import Kind
from events.errors import BadInput
from events.instruments import instrument_id

from .conftest import as_user, auth_args, kill, raw_request, spawn, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(150)]

BTC, ETH = instrument_id("BTC-USDT"), instrument_id("ETH-USDT")


def start_dispatch(ctx, reap):
    return spawn(ctx, reap, "dispatch", "--telemetry", "", "--instruments", "BTC-USDT,ETH-USDT")


def take(c: Consumer, until, timeout_s: float = 30.0) -> np.ndarray:
    """Records of `c` until `until(records so far)` holds."""
    got = []
    deadline = time.monotonic() + timeout_s
    while True:
        b = c.events(512, timeout_s=0.05)
        if len(b):
            got.append(np.array(b))
        recs = np.concatenate(got) if got else np.zeros(0, b.dtype)
        if until(recs):
            return recs
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {len(recs)} records, kinds {np.unique(recs['kind']).tolist()}")


def trades_of(recs: np.ndarray, inst: int) -> np.ndarray:
    return recs[(recs["kind"] == Kind.TRADE) & (recs["instrument"] == inst)]


def test_remote_consumer_subscribes_switches_and_recovers_as_locally(secured, hosts, reap):
    node, passwords = secured
    dh, ch = hosts
    disp = start_dispatch(dh, reap)
    spawn(dh, reap, "tests.bridge.md_feed", "binance-spot", "200")

    def serve():
        return spawn(dh, reap, "bridge", "ctl-serve", "--target", "dispatch", "--nats", node.url,
                     *auth_args(dh, "dispatch", passwords))

    def expose():
        return spawn(ch, reap, "bridge", "ctl-expose", "--target", "dispatch", "--target", "execution",
                     "--consumer", "a", "--nats", node.url, *auth_args(ch, "a", passwords))

    server, exposer = serve(), expose()
    wait_until(lambda: os.path.exists(dispatch_endpoint(ch.run_dir)[len("ipc://"):]), 30,
               "ctl-expose to bind the dispatch endpoint")
    wait_until(lambda: b"serving" in dh.path("logs", "bridge-ctl-serve.log").read_bytes(), 30,
               "ctl-serve to subscribe")
    wait_until(lambda: os.path.exists(dispatch_endpoint(dh.run_dir)[len("ipc://"):]), 30, "dispatch to bind")

    c = Consumer("a", run=ch, timeout_s=10)
    try:
        assert c.ring_name == "consumer.a.md"
        sub = c.subscribe("BTC-USDT", kinds=["trade"])
        assert sub.ok and sub["changed"], sub
        recs = take(c, lambda r: len(trades_of(r, BTC)) >= 50)
        assert not len(trades_of(recs, ETH)), "a trade of a symbol not subscribed"
        results = recs[recs["kind"] == Kind.CONTROL_RESULT]["result"]["request_id"].tolist()
        assert sub["request_id"] in results, "the subscribe result is on the ring too"

        switch = c.set_trading_mode(True)  # no execution on that host: dispatch says so
        assert switch.ok and switch["trading_enabled"] is True and switch["forward"]["status"] == "absent", switch
        assert c.trading_enabled
        listing = c.list_subscriptions()
        assert listing.ok and [s["symbol"] for s in listing["subscriptions"]] == ["BTC-USDT"], listing

        assert c.unsubscribe("BTC-USDT").ok
        assert c.subscribe("ETH-USDT", kinds=["trade"]).ok
        take(c, lambda r: len(trades_of(r, ETH)) >= 50)

        # dispatch dies: the ring closes on both hosts, the SDK registers again, ETH comes back
        kill(disp)
        disp = start_dispatch(dh, reap)
        recs = take(c, lambda r: c.recoveries == 1 and len(trades_of(r, ETH)) >= 50, timeout_s=60)
        assert not len(trades_of(recs, BTC)), "the subscription restored is the one in effect"
        assert c.trading_enabled, "the switch in effect is restored too"

        # either bridge dies: the SDK registers again (dispatch kept the registration), ETH comes back
        for n, (victim, again) in enumerate(((server, serve), (exposer, expose)), start=2):
            kill(victim)
            if victim is server:
                server = again()
            else:
                exposer = again()
            recs = take(c, lambda r: c.recoveries == n and len(trades_of(r, ETH)) >= 50, timeout_s=60)
            assert not len(trades_of(recs, BTC))
    finally:
        c.close()

    # another consumer's SDK on A's host: refused by A's bridge
    with pytest.raises(BadInput, match="unauthorized"):
        Consumer("b", run=ch, timeout_s=10)

    async def a_tries():
        nc, errors = await as_user(node.url, "a", passwords)
        try:
            register_b = {"cmd": "register", "request_id": 1, "consumer": "b", "key": "0" * 32}
            denied = await raw_request(nc, "meltica.ctl.dispatch.b", register_b, 2)   # the server refuses
            spoofed = await raw_request(nc, "meltica.ctl.dispatch.a", register_b, 5)  # the bridge refuses
            listing = await raw_request(nc, "meltica.ctl.dispatch.a", {"cmd": "list_subscriptions", "request_id": 2}, 5)
            await nc.subscribe("meltica.ring.consumer.b.md")
            await nc.subscribe(f"{inbox_prefix('b')}.>")
            await nc.flush()
            await asyncio.sleep(0.2)  # the server's -ERR lines arrive asynchronously
            return denied, spoofed, listing, errors
        finally:
            await nc.close()

    denied, spoofed, listing, errors = asyncio.run(a_tries())
    assert denied is None
    for r in (spoofed, listing):
        assert r is not None and not r["ok"] and r["code"] == "unauthorized", r
    text = " ".join(errors).lower()
    for what in ('publish to "meltica.ctl.dispatch.b"', 'subscription to "meltica.ring.consumer.b.md"',
                 f'subscription to "{inbox_prefix("b")}.>"'):
        assert what.lower() in text, (what, errors)
