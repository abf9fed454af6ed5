"""Dispatch's control socket against hostile input and squatters (issue 11): every frame is
answered or costs its sender the connection, nothing leaves the loop, labels stay bounded,
and no registration holds a slot without showing it lives."""

from __future__ import annotations

import os
import threading
import time

import orjson
import pytest
import zmq

from channels.identity import consumer_key
from channels.messages import MAX_FRAME_BYTES
from channels.names import dispatch_endpoint
from consumer import Consumer
from dispatch.config import DispatchConfig
from dispatch.process import DispatchProcess
from core.dlq import DeadLetterQueue

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def start(run_ctx):
    """Start a DispatchProcess of the test's run in a thread (kwargs for it); stopped at teardown."""
    started = []

    def make(**kw):
        proc = DispatchProcess(run_ctx, DispatchConfig(**kw.pop("config", {})), telemetry="",
                               instruments=["BTC-USDT"], discover_ns=10_000_000, exec_timeout_ns=200_000_000, **kw)
        stop = threading.Event()
        t = threading.Thread(target=proc.run, args=(stop,), kwargs={"max_nap_ns": 100_000})
        t.start()
        started.append((proc, stop, t))
        return proc, t

    yield make
    for proc, stop, t in started:
        stop.set()
        t.join(10)
        proc.close()


class Peer:
    """A raw DEALER on dispatch's control socket."""

    def __init__(self, run_ctx):
        self.run_dir = run_ctx.run_dir
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(dispatch_endpoint(run_ctx.run_dir))
        self.rid = 0

    def result(self, frame: bytes, timeout_ms: int = 5000) -> dict:
        """Send `frame`; return its result (the ack before it checked)."""
        self.sock.send(frame)
        while True:
            assert self.sock.poll(timeout_ms), f"no answer to {frame[:60]!r}"
            msg = orjson.loads(self.sock.recv())
            if msg["type"] == "result":
                return msg

    def ask(self, cmd: str, consumer: str, key: str | None = "own", **fields) -> dict:
        self.rid += 1
        key = consumer_key(self.run_dir, consumer) if key == "own" else key
        body = {"cmd": cmd, "request_id": self.rid, "consumer": consumer, **fields}
        if key is not None:
            body["key"] = key
        return self.result(orjson.dumps(body))

    def close(self):
        self.sock.close(0)


def test_the_frames_that_killed_dispatch_get_coded_answers_and_dispatch_keeps_serving(run_ctx, start):
    proc, thread = start()
    p = Peer(run_ctx)
    try:
        for frame, code in ((b'{"cmd":{"x":1},"request_id":1,"consumer":"x"}', "unknown_command"),
                            (b'{"cmd":["register"],"request_id":2,"consumer":"x"}', "unknown_command"),
                            (b"\x00" * 100, "malformed"),
                            (b'{"cmd":"register","request_id":3}', "malformed"),
                            (b" " * (MAX_FRAME_BYTES + 1), "too_large")):
            r = p.result(frame)
            assert not r["ok"] and r["code"] == code and r["reason"], r
        assert thread.is_alive()
        with Consumer("good") as c:
            assert c.subscribe("BTC-USDT").ok
    finally:
        p.close()
    dlq = DeadLetterQueue(run_ctx.run_dir / "dlq", "dispatch").read_all()
    assert [d["code"] for d in dlq] == ["unknown_command", "unknown_command", "malformed", "malformed", "too_large"]
    assert all(len(d.get("raw", d.get("raw_b64", ""))) <= 1024 for d in dlq), "dead letters keep a bounded raw"
    assert dlq[-1]["frame_bytes"] == MAX_FRAME_BYTES + 1


def test_a_frame_beyond_the_socket_bound_costs_the_sender_its_connection_not_dispatch_its_memory(run_ctx, start):
    proc, thread = start()
    big = zmq.Context.instance().socket(zmq.DEALER)
    big.setsockopt(zmq.LINGER, 0)
    big.connect(dispatch_endpoint(run_ctx.run_dir))
    try:
        big.send(b"x" * (200 << 20))  # 200 MB: dropped by ZeroMQ at ZMQ_MAXMSGSIZE, unread
        assert not big.poll(500)
    finally:
        big.close(0)
    with Consumer("good") as c:
        assert c.subscribe("BTC-USDT").ok
    assert thread.is_alive()


def test_twenty_thousand_distinct_commands_make_a_bounded_set_of_labels_and_dead_letters(run_ctx, start):
    proc, thread = start()
    p = Peer(run_ctx)
    try:
        for i in range(20_000):
            p.sock.send(orjson.dumps({"cmd": f"cmd-{i}", "request_id": i}))
        got = 0
        deadline = time.monotonic() + 40
        while got < 40_000 and time.monotonic() < deadline:  # an ack and a result each
            if p.sock.poll(1000):
                p.sock.recv()
                got += 1
        assert got == 40_000
    finally:
        p.close()
    counters = proc.tel.counters
    control = sorted(k for k in counters if k.startswith("control."))
    assert len(control) <= 6, control  # rejected{code=unknown_command}, replies{outcome=busy}, ...
    rejected = counters["control.rejected{code=unknown_command}"]
    busy = counters.get("control.replies{outcome=busy}", 0)  # answered "busy" while we read nothing
    assert rejected + busy == 20_000 and rejected >= 1000
    dlq = DeadLetterQueue(run_ctx.run_dir / "dlq", "dispatch").read_all()
    assert 0 < len(dlq) < rejected and proc.service.rejects.suppressed == rejected - len(dlq)


def test_requests_without_the_consumers_key_are_refused(run_ctx, start):
    start()
    p = Peer(run_ctx)
    try:
        assert p.ask("register", "alpha")["ok"]
        for key in (None, "0" * 32):
            r = p.ask("unregister", "alpha", key=key)
            assert not r["ok"] and r["code"] in ("malformed", "unauthorized"), r
        r = p.ask("register", "nobody-made-me", key="0" * 32)
        assert r["code"] == "unauthorized" and "no identity" in r["reason"]
        assert p.ask("heartbeat", "alpha")["ok"]  # still registered
    finally:
        p.close()


def test_registrations_that_never_talk_again_free_their_slots_pid_or_not(run_ctx, start):
    proc, _ = start(silence_ns=300_000_000, config={"max_consumers": 8})
    p = Peer(run_ctx)
    try:
        for i in range(8):  # every slot, "pid 1" (never dies)
            assert p.ask("register", f"squat{i}", pid=1)["ok"]
        assert p.ask("register", "late", pid=os.getpid())["code"] == "capacity"
        time.sleep(0.4)  # the squatters stay silent past the timeout: the next registration reaps them
        assert p.ask("register", "late", pid=os.getpid())["ok"]
        deadline = time.monotonic() + 5
        while len(proc.service.consumers) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(proc.service.consumers) == {"late"}
    finally:
        p.close()


def test_a_live_consumer_keeps_its_name_by_its_heartbeats_and_a_second_claimant_is_refused(run_ctx, start):
    proc, _ = start(silence_ns=500_000_000)
    p = Peer(run_ctx)
    with Consumer("alpha", heartbeat_s=0.1) as c:
        try:
            deadline = time.monotonic() + 1.5  # three silence timeouts, heartbeats only
            while time.monotonic() < deadline:
                c.events(64, timeout_s=0.05)
            assert "alpha" in proc.service.consumers and c.recoveries == 0
            r = p.ask("register", "alpha", pid=1)  # the same user's second process: the name is taken
            assert r["code"] == "name_in_use", r
        finally:
            p.close()


def test_registrations_of_one_name_are_rate_limited(run_ctx, start):
    start()
    p = Peer(run_ctx)
    try:
        codes = [p.ask("register", "flappy", pid=0)["code"] for _ in range(40)]
        assert codes[0] is None and "rate_limited" in codes
    finally:
        p.close()
