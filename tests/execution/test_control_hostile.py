"""Execution's order channel against hostile input and bursts (issue 11): coded answers,
bounded work and labels, no reply dropped silently, identities nobody can squat."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import orjson
import pytest
import zmq

from channels.identity import consumer_key
from channels.messages import MAX_FRAME_BYTES
from channels.names import execution_endpoint
from core.dlq import DeadLetterQueue

from .harness import REPO, client

pytestmark = [pytest.mark.timeout(240), pytest.mark.multiprocess]
SYM = "BTC-USDT"


class Raw:
    """A raw DEALER on execution's control socket."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(execution_endpoint(ctx.run_dir))

    def ask(self, frame: bytes, timeout_ms: int = 5000) -> dict:
        self.sock.send(frame)
        assert self.sock.poll(timeout_ms), f"no answer to {frame[:60]!r}"
        return orjson.loads(self.sock.recv())

    def order(self, rid: int, coid: str, consumer: str = "burst") -> bytes:
        return orjson.dumps({"cmd": "new_order", "request_id": rid, "consumer": consumer,
                             "key": consumer_key(self.ctx.run_dir, consumer), "client_order_id": coid,
                             "symbol": SYM, "side": "buy", "type": "limit", "tif": "GTC", "qty": "0.1",
                             "price": "100"})

    def close(self):
        self.sock.close(0)


def orders_in_store(ctx, consumer: str) -> list[str]:
    db = sqlite3.connect(f"file:{ctx.path('exec', 'orders.sqlite')}?mode=ro", uri=True, timeout=5)
    try:
        return [c for (c,) in db.execute("SELECT client_order_id FROM orders JOIN consumers ON consumers.id = "
                                         "orders.consumer_id WHERE consumers.name=?", (consumer,))]
    finally:
        db.close()


def test_the_frames_of_the_issue_get_coded_answers_and_execution_keeps_serving(run_ctx, sim, execution):
    ex = execution()
    raw = Raw(run_ctx)
    try:
        for frame, code in ((b'{"cmd":{"x":1},"request_id":1,"consumer":"x"}', "unknown_command"),
                            (b'{"cmd":["new_order"],"request_id":2}', "unknown_command"),
                            (b"\xff" * 64, "malformed"),
                            (b'{"cmd":"new_order","request_id":3,"consumer":"x","client_order_id":"o"}', "malformed"),
                            (b" " * (MAX_FRAME_BYTES + 1), "too_large")):
            r = raw.ask(frame)
            assert (r["ok"], r["code"], r["status"]) == (False, code, "rejected"), r
        r = raw.ask(orjson.dumps({"cmd": "hello", "request_id": 4, "consumer": "nobody", "key": "0" * 32}))
        assert r["code"] == "unauthorized", r
        big = zmq.Context.instance().socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(execution_endpoint(run_ctx.run_dir))
        big.send(b"x" * (200 << 20))  # beyond ZMQ_MAXMSGSIZE: the connection goes, nothing is echoed
        assert not big.poll(500)
        big.close(0)
        for i in range(2000):
            raw.sock.send(orjson.dumps({"cmd": f"cmd-{i}", "request_id": i}))
        for _ in range(2000):
            assert raw.sock.poll(10_000)
            assert orjson.loads(raw.sock.recv())["code"] in ("unknown_command", "busy")
    finally:
        raw.close()
    assert ex.proc.poll() is None
    with client(run_ctx, "good") as oc:
        assert oc.submit_limit("g-1", SYM, "buy", "0.1", "100")["status"] == "accepted"
        assert oc.request("status")["ok"]
    names = {r["reason"] for r in DeadLetterQueue(run_ctx.run_dir / "dlq", "execution").read_all()}
    assert names == {"control_rejected"}


@pytest.mark.slow
def test_a_burst_of_ten_thousand_raw_orders_ends_in_ten_thousand_definite_answers(run_ctx, sim, execution):
    execution("--durability", "process")
    raw = Raw(run_ctx)
    n = 10_000
    try:
        for rid in range(1, n + 1):  # sent without reading a single answer
            raw.sock.send(raw.order(rid, f"b-{rid}"))
        answers: dict[int, dict] = {}
        while len(answers) < n:
            assert raw.sock.poll(20_000), f"{len(answers)} of {n} answered"
            a = orjson.loads(raw.sock.recv())
            assert a["request_id"] not in answers, "one answer per request"
            answers[a["request_id"]] = a
        statuses = {a["status"] for a in answers.values()}
        assert statuses <= {"accepted", "busy"}, statuses
        busy = sorted(rid for rid, a in answers.items() if a["status"] == "busy")
        while busy:  # what execution did not do is sent again, 200 at a time, reading as we go
            retry = []
            for i in range(0, len(busy), 200):
                part = busy[i:i + 200]
                for rid in part:
                    raw.sock.send(raw.order(rid, f"b-{rid}"))
                for _ in part:
                    assert raw.sock.poll(20_000)
                    a = orjson.loads(raw.sock.recv())
                    assert a["request_id"] in part and a["status"] in ("accepted", "busy"), a
                    if a["status"] == "busy":
                        retry.append(a["request_id"])
            busy = retry
    finally:
        raw.close()
    coids = orders_in_store(run_ctx, "burst")
    assert len(coids) == len(set(coids)) == n


@pytest.mark.slow
def test_a_burst_of_ten_thousand_nowait_orders_ends_in_ten_thousand_answers_none_unknown(run_ctx, sim, execution):
    execution("--durability", "process")
    n = 10_000
    with client(run_ctx, "nowait", timeout_s=10.0) as oc:  # a loaded 2-core host stalls execution for seconds
        for i in range(n):
            oc.submit_limit_nowait(f"n-{i}", SYM, "buy", "0.1", "100")
        got = []
        deadline = time.monotonic() + 150
        while len(got) < n and time.monotonic() < deadline:
            got += oc.poll_replies(timeout_s=1.0)
        assert oc.statistics()["unknown"] == 0, oc.statistics()  # every answer came from execution, in time
        assert sorted(a["client_order_id"] for a in got) == sorted(f"n-{i}" for i in range(n))
        assert {a["status"] for a in got} == {"accepted"} and oc.pending == frozenset()
    assert len(orders_in_store(run_ctx, "nowait")) == n


def test_consumer_ids_are_assigned_in_order_and_nobody_shares_one(run_ctx, sim, execution):
    execution()
    ids = {}
    for name in ("c1", "c2", "c3"):
        with client(run_ctx, name) as oc:
            ids[name] = oc.consumer_id
    assert sorted(ids.values()) == [1, 2, 3]


def test_execution_refuses_a_control_endpoint_beyond_loopback(run_ctx):
    p = subprocess.run([sys.executable, "-m", "execution", "--control", "tcp://0.0.0.0:5999"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "loopback or ipc" in p.stderr
