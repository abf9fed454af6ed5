"""Arbitrary frames on both control sockets of real processes (issue 11): `python -m dispatch`
and `python -m execution` (on the simulator) answer every frame, stay up, and keep serving a
well-behaved consumer throughout. Bounded: `MAX_EXAMPLES` frames, each sent to both."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.messages import DISPATCH_COMMANDS, EXECUTION_COMMANDS
from channels.names import dispatch_endpoint, execution_endpoint
from consumer import Consumer
from tests.execution.conftest import execution, sim  # noqa: F401  (fixtures)
from tests.execution.harness import REPO, client

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(300)]
MAX_EXAMPLES = 150

values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
names = st.sampled_from(["cmd", "request_id", "consumer", "key", "pid", "symbol", "providers", "kinds", "enabled",
                         "client_order_id", "qty", "price", "side", "type", "tif", "zz"])
commands = st.sampled_from(sorted({*DISPATCH_COMMANDS, *EXECUTION_COMMANDS}))
objects = st.dictionaries(names, values | commands | st.just("good"), max_size=8).map(orjson.dumps)
frames = st.binary(max_size=200) | objects | st.lists(st.binary(max_size=20), min_size=2, max_size=3)


@pytest.fixture
def dispatch_proc(run_ctx, reap):
    env = {**os.environ, **run_ctx.env(), "PYTHONPATH": str(REPO)}
    log = open(run_ctx.path("dispatch.log"), "ab")
    p = subprocess.Popen([sys.executable, "-m", "dispatch", "--instruments", "BTC-USDT", "--telemetry", ""],
                         env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
    reap.append(p)
    path = dispatch_endpoint(run_ctx.run_dir)[len("ipc://"):]
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        assert p.poll() is None and time.monotonic() < deadline, "dispatch did not start"
        time.sleep(0.02)
    yield p
    log.close()


class Fuzzer:
    def __init__(self, endpoint: str, replies_per_frame: int):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.replies_per_frame = replies_per_frame

    def send(self, frame) -> None:
        """Send `frame` (bytes, or a list of parts); check it is answered (what a well-formed
        request's answer says does not matter here: only that one comes, in the one shape)."""
        self.sock.send_multipart(frame if isinstance(frame, list) else [frame])
        for _ in range(self.replies_per_frame):
            assert self.sock.poll(10_000), f"no answer to {frame!r:.80}"
            parts = self.sock.recv_multipart()
            reply = orjson.loads(parts[-1])
            assert reply["type"] in ("ack", "result") and "request_id" in reply
            if reply["type"] == "result":
                assert set(reply) >= {"ok", "code", "reason", "cmd"} and reply["ok"] is (reply["code"] is None)


def test_arbitrary_frames_on_both_sockets_leave_both_processes_up_and_serving(
        run_ctx, sim, execution, dispatch_proc):  # noqa: F811
    ex = execution()
    to_dispatch = Fuzzer(dispatch_endpoint(run_ctx.run_dir), 2)   # an ack, then a result
    to_execution = Fuzzer(execution_endpoint(run_ctx.run_dir), 1)
    good = Consumer("good", timeout_s=10)
    orders = client(run_ctx, "good", timeout_s=10)
    sent = [0]

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(frames)
    def drive(frame):
        to_dispatch.send(frame)
        to_execution.send(frame)
        sent[0] += 1
        if sent[0] % 25 == 0:  # the well-behaved consumer, served meanwhile
            assert good.heartbeat().ok
            assert good.subscribe("BTC-USDT").ok
            r = orders.submit_limit(f"fz-{sent[0]}", "BTC-USDT", "buy", "0.1", "100")
            assert r["status"] == "accepted", r
            good.events(256, timeout_s=0.01)

    try:
        drive()
        assert sent[0] >= MAX_EXAMPLES // 2
        assert dispatch_proc.poll() is None and ex.proc.poll() is None
        assert good.list_subscriptions()["subscriptions"], "the good consumer kept its subscription"
        assert orders.query("fz-25")["status"] == "ok"
    finally:
        orders.close()
        good.close()
        to_dispatch.sock.close(0)
        to_execution.sock.close(0)
