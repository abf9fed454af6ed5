"""Orders of remote consumers through NATS request/reply, and who may do what.

A real execution (against the venue simulator) on the execution host with
`bridge ctl-serve` and `bridge exec-out`; on the consumer host `bridge ctl-expose
--consumer a` and `bridge exec-in --consumer a`, both as NATS user a, and the real SDK
there. The server runs the users and permissions of `bridge.config`. Consumer A trades
through the bridge and reads its own exec reports; A cannot place, cancel or query
orders in B's name, nor read B's replies, nor B's exec reports (not through its own
bridge, whose journal holds only placeholders for them, nor by asking JetStream); the
ACCOUNT records, every consumer's, reach A's journal as they are.
"""

from __future__ import annotations

import asyncio
import os

import nats
import numpy as np
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bridge.config import inbox_prefix
from bridge.execs import ACCOUNT_TOKEN, account_consumer_name, consumer_name
from channels.journal import JournalReader
from channels.names import execution_endpoint, journal_path
from events import ExecStatus, Kind
from tests.execution.harness import Consumer, ExecProc, collect, of

from .conftest import as_user, auth_args, raw_request, spawn, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def sim():
    from simulator.server import Simulator
    s = Simulator(venues=["binance-spot"], instruments=2, rate=20, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


def test_consumer_a_cannot_place_cancel_or_read_orders_of_b(secured, hosts, reap, sim):
    node, passwords = secured
    exec_ctx, cons_ctx = hosts
    ExecProc(exec_ctx, sim, reap).start()
    spawn(exec_ctx, reap, "bridge", "ctl-serve", "--nats", node.url, *auth_args(exec_ctx, "execution", passwords))
    spawn(cons_ctx, reap, "bridge", "ctl-expose", "--nats", node.url, "--consumer", "a",
          *auth_args(cons_ctx, "a", passwords))
    spawn(exec_ctx, reap, "bridge", "exec-out", "--nats", node.url, *auth_args(exec_ctx, "execution", passwords))
    spawn(cons_ctx, reap, "bridge", "exec-in", "--nats", node.url, "--consumer", "a",
          *auth_args(cons_ctx, "a", passwords))
    from consumer.orders import OrderClient
    ipc = execution_endpoint(cons_ctx.run_dir)[len("ipc://"):]
    wait_until(lambda: os.path.exists(ipc), 30, "ctl-expose to bind the execution endpoint")
    serving = exec_ctx.path("logs", "bridge-ctl-serve.log")
    wait_until(lambda: b"serving" in serving.read_bytes(), 30, "ctl-serve to subscribe")

    # B trades in its own name (a raw NATS client as user b; the key is the execution host's business)
    async def b_places():
        nc, _ = await as_user(node.url, "b", passwords)
        try:
            hello = await raw_request(nc, "meltica.ctl.execution.b", {"cmd": "hello", "request_id": 1, "consumer": "b", "key": "0" * 32}, 10)
            placed = await raw_request(nc, "meltica.ctl.execution.b", {
                "cmd": "new_order", "request_id": 2, "consumer": "b", "key": "0" * 32, "client_order_id": "b-1",
                "symbol": "BTC-USDT", "side": "buy", "type": "limit", "qty": "0.001", "price": "60000", "tif": "GTC"}, 10)
            return hello, placed
        finally:
            await nc.close()

    hello, placed = asyncio.run(b_places())
    assert hello["ok"] and placed["ok"] and placed["status"] == "accepted", (hello, placed)

    # A trades through the bridges with the unchanged SDK
    a = OrderClient(Consumer("a"), run=cons_ctx, timeout_s=10)
    try:
        assert a.hello()["ok"]
        r = a.submit_limit("a-1", "BTC-USDT", "buy", "0.001", "60000")
        assert r["ok"] and r["status"] == "accepted", r
        assert a.query("a-1")["ok"]
        # ... but B's order does not exist for A: neither to query nor to cancel
        for r in (a.query("b-1"), a.cancel("b-1")):
            assert not r["ok"] and r["code"] == "unknown_order", r
        # A's reports come back through JetStream; B's never reach A's host
        assert a.submit_limit("a-2", "BTC-USDT", "buy", "0.001", "60000")["ok"]
        got = collect(a, lambda g: of(g, "a-1") and of(g, "a-2"), timeout_s=30)
        assert {int(r["consumer_id"]) for r in got} == {a.consumer_id}
        assert ExecStatus(int(of(got, "a-1")[0]["exec"]["status"])) == ExecStatus.ACK
    finally:
        a.close()
    here = JournalReader(journal_path(cons_ctx.run_dir))
    there = JournalReader(journal_path(exec_ctx.run_dir))
    try:
        local, src = here.read(1, here.last_seq()), there.read(1, here.last_seq())
    finally:
        here.close(), there.close()
    assert (local["exec"]["exec_seq"] == np.arange(1, len(local) + 1)).all(), "the local journal is gap-free"
    mine = src["consumer_id"] == a.consumer_id
    assert mine.sum() >= 2 and (~mine).sum() >= 1, "B's report came before A's last"
    assert local[mine].tobytes() == src[mine].tobytes(), "A's reports byte for byte"
    acct = src["kind"] == Kind.ACCOUNT
    assert local[acct].tobytes() == src[acct].tobytes(), "the ACCOUNT records reach A's host as they are"
    withheld = local[~mine & ~acct]
    assert (withheld["consumer_id"] == 0).all() and not withheld["exec"]["client_order_id"].any(), \
        "B's reports are placeholders on A's host"

    # the SDK of another consumer on A's host: refused by A's bridge
    b_on_a = OrderClient(Consumer("b"), run=cons_ctx, timeout_s=10)
    try:
        r = b_on_a.request("cancel", client_order_id="b-1")
        assert not r["ok"] and r["code"] == "unauthorized", r
    finally:
        b_on_a.close()

    async def a_tries():
        nc, errors = await as_user(node.url, "a", passwords)
        try:
            body = {"cmd": "cancel", "request_id": 9, "consumer": "b", "key": "0" * 32, "client_order_id": "b-1"}
            denied = await raw_request(nc, "meltica.ctl.execution.b", body, 2)   # B's subject: the server refuses
            spoofed = await raw_request(nc, "meltica.ctl.execution.a", body, 5)  # own subject, B's name: the bridge refuses
            await nc.subscribe(f"{inbox_prefix('b')}.>")                        # B's replies
            await nc.subscribe("exec.reports.b")                                # B's exec reports
            await nc.flush()
            js = nc.jetstream(timeout=2)
            stream_read = []
            cfg = dict(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
            for attempt in (lambda: js.stream_info("EXEC"),                    # the stream itself
                            lambda: js.add_consumer("EXEC", ConsumerConfig(     # A's consumer, B's subject
                                name=consumer_name("a"), filter_subject="exec.reports.b", **cfg)),
                            lambda: js.add_consumer("EXEC", ConsumerConfig(     # B's consumer
                                name=consumer_name("b"), filter_subject="exec.reports.b", **cfg)),
                            lambda: js.consumer_info("EXEC", consumer_name("b")),
                            lambda: js.add_consumer("EXEC", ConsumerConfig(     # A's account consumer, B's subject
                                name=account_consumer_name("a"), filter_subject="exec.reports.b", **cfg)),
                            lambda: js.add_consumer("EXEC", ConsumerConfig(     # B's account consumer
                                name=account_consumer_name("b"), filter_subject=f"exec.reports.{ACCOUNT_TOKEN}",
                                **cfg)),
                            lambda: js.consumer_info("EXEC", account_consumer_name("a"))):  # A's own: allowed
                try:
                    await attempt()
                    stream_read.append(True)
                except (nats.errors.Error, asyncio.TimeoutError):
                    stream_read.append(False)
            await asyncio.sleep(0.2)  # the server's -ERR lines arrive asynchronously
            return denied, spoofed, stream_read, errors
        finally:
            await nc.close()

    denied, spoofed, stream_read, errors = asyncio.run(a_tries())
    assert denied is None
    assert spoofed is not None and not spoofed["ok"] and spoofed["code"] == "unauthorized", spoofed
    assert stream_read == [False] * 6 + [True]
    text = " ".join(errors).lower()
    for what in ("publish to \"meltica.ctl.execution.b\"", f"subscription to \"{inbox_prefix('b')}.>\"",
                 "subscription to \"exec.reports.b\"", "publish to \"$js.api.stream.info.exec\"",
                 "publish to \"$js.api.consumer.create.exec.exec-in-a.exec.reports.b\"",
                 "publish to \"$js.api.consumer.create.exec.exec-in-b.exec.reports.b\"",
                 "publish to \"$js.api.consumer.info.exec.exec-in-b\"",
                 "publish to \"$js.api.consumer.create.exec.exec-acct-a.exec.reports.b\"",
                 f"publish to \"$js.api.consumer.create.exec.exec-acct-b.exec.reports.{ACCOUNT_TOKEN}\""):
        assert what.lower() in text, (what, errors)
