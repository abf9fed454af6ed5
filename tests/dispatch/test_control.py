"""Control over ZeroMQ against a dispatch process running in a thread of the test."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import orjson
import pytest
import zmq

from channels.identity import consumer_key
from channels.names import check_local, dispatch_endpoint, execution_endpoint
from tests.synthetic import records
from events import EVENT, Kind, Provider
from shm import RingReader, RingWriter

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def client(run_ctx, dispatch):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(dispatch_endpoint(run_ctx.run_dir))
    yield Client(sock, run_ctx.run_dir)
    sock.close(0)


class Client:
    def __init__(self, sock, run_dir):
        self.sock = sock
        self.run_dir = run_dir
        self.rid = 0

    def send_raw(self, frame: bytes):
        self.sock.send(frame)
        return self.recv(), self.recv()

    def recv(self, timeout_ms: int = 5000) -> dict:
        assert self.sock.poll(timeout_ms), "no reply from dispatch"
        return orjson.loads(self.sock.recv())

    def ask(self, cmd: str, consumer: str | None = "alpha", **fields):
        """Send `cmd` for `consumer` (with its key; None: for no consumer); return (ack, result)."""
        self.rid += 1
        who = {} if consumer is None else {"consumer": consumer, "key": consumer_key(self.run_dir, consumer)}
        return self.send_raw(orjson.dumps({"cmd": cmd, "request_id": self.rid, **who, **fields}))


def test_every_command_is_answered_by_an_ack_then_a_result(client):
    a, r = client.ask("register", pid=os.getpid())
    assert a == {"type": "ack", "request_id": 1, "cmd": "register"}
    assert r["type"] == "result" and r["ok"] and r["code"] is None and r["reason"] == ""
    assert r["rings"] == {"md": "consumer.alpha.md"} and r["consumer_id"] == 1
    for cmd, fields in (("subscribe", {"symbol": "BTC-USDT", "kinds": ["trade"]}),
                        ("merged_subscribe", {"symbol": "BTC-USDT", "providers": ["okx", "binance-spot"]}),
                        ("list_subscriptions", {}), ("heartbeat", {}),
                        ("unsubscribe", {"symbol": "BTC-USDT"}), ("unregister", {})):
        a, r = client.ask(cmd, **fields)
        assert (a["type"], a["cmd"], r["type"], r["cmd"]) == ("ack", cmd, "result", cmd)
        assert a["request_id"] == r["request_id"] and r["ok"], r
        assert isinstance(r["routing_version"], int)


def test_bad_commands_get_a_result_that_says_what_is_wrong(client):
    assert client.ask("register")[1]["ok"]
    cases = [
        (b"{not json", "malformed"),
        (orjson.dumps({"cmd": "subscribe", "consumer": "alpha"}), "malformed"),
        (orjson.dumps({"cmd": "fly", "request_id": 9, "consumer": "alpha"}), "unknown_command"),
    ]
    for frame, code in cases:
        a, r = client.send_raw(frame)
        assert a["type"] == "ack" and not r["ok"] and r["code"] == code, r
    for fields, code in (
            ({"symbol": "DOGE-USDT"}, "unknown_instrument"),
            ({"symbol": "btc/usdt"}, "unknown_instrument"),
            ({"symbol": "BTC-USDT", "providers": ["nasdaq"]}, "unknown_provider"),
            ({"symbol": "BTC-USDT", "kinds": ["candles"]}, "bad_kind")):
        r = client.ask("subscribe", **fields)[1]
        assert not r["ok"] and r["code"] == code, r
        assert r["reason"]
    r = client.ask("merged_subscribe", symbol="BTC-USDT", providers=["okx"])[1]
    assert r["code"] == "bad_merge" and "at least two" in r["reason"]
    r = client.ask("merged_subscribe", symbol="BTC-USDT", providers=["okx", "okx"])[1]
    assert r["code"] == "bad_merge"
    r = client.ask("subscribe", consumer="nobody", symbol="BTC-USDT")[1]
    assert r["code"] == "unknown_consumer"


def test_commands_are_idempotent(client):
    r1 = client.ask("register", pid=os.getpid())[1]
    r2 = client.ask("register", pid=os.getpid())[1]
    assert r1["consumer_id"] == r2["consumer_id"] and r2["ok"]
    s1 = client.ask("subscribe", symbol="BTC-USDT")[1]
    s2 = client.ask("subscribe", symbol="BTC-USDT")[1]
    assert s1["changed"] and not s2["changed"]
    assert s1["routing_version"] == s2["routing_version"]
    u1 = client.ask("unsubscribe", symbol="BTC-USDT")[1]
    u2 = client.ask("unsubscribe", symbol="BTC-USDT")[1]
    assert u1["ok"] and u2["ok"] and u1["routing_version"] == u2["routing_version"]


def test_unsubscribing_a_provider_from_a_wildcard_narrows_it_once(client):
    client.ask("register")
    s = client.ask("subscribe", symbol="BTC-USDT")[1]
    u1 = client.ask("unsubscribe", symbol="BTC-USDT", providers=["okx"])[1]
    assert u1["ok"] and u1["changed"] and u1["routing_version"] == s["routing_version"] + 1
    u2 = client.ask("unsubscribe", symbol="BTC-USDT", providers=["okx"])[1]
    assert u2["ok"] and not u2["changed"] and u2["routing_version"] == u1["routing_version"]
    subs = client.ask("list_subscriptions")[1]["subscriptions"]
    assert {(x["provider"], x["kind"]) for x in subs} == {(p.slug, "*") for p in Provider
                                                         if p != Provider.OKX}
    k = client.ask("unsubscribe", symbol="BTC-USDT", kinds=["trade"])[1]
    assert k["changed"] and not client.ask("unsubscribe", symbol="BTC-USDT", kinds=["trade"])[1]["changed"]
    subs = client.ask("list_subscriptions")[1]["subscriptions"]
    assert {x["kind"] for x in subs} == {"book", "ticker"} and "okx" not in {x["provider"] for x in subs}


def test_ack_and_result_are_also_critical_records_on_the_consumers_ring(run_ctx, client):
    client.ask("register")
    reader = RingReader.attach(run_ctx.namespace, "consumer.alpha.md", EVENT, start="oldest")
    try:
        client.ask("subscribe", symbol="DOGE-USDT")
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < deadline:
            b = reader.wait_read(16, timeout_s=0.1)
            seen += [(int(x["kind"]), int(x["ack"]["request_id"]) if x["kind"] == Kind.CONTROL_ACK
                      else (int(x["result"]["request_id"]), int(x["result"]["status"]),
                            int(x["result"]["error_code"]), int(x["consumer_id"])))
                     for x in b]
            reader.release()
        assert seen == [(Kind.CONTROL_ACK, 1), (Kind.CONTROL_RESULT, (1, 0, 0, 1)),
                        (Kind.CONTROL_ACK, 2), (Kind.CONTROL_RESULT, (2, 1, 4, 1))]
    finally:
        reader.close()


def test_instruments_are_learned_from_what_providers_publish(run_ctx, client):
    client.ask("register")
    assert client.ask("subscribe", symbol="ETH-USDT")[1]["code"] == "unknown_instrument"
    with RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64) as w:
        deadline = time.monotonic() + 5
        ok = False
        while not ok and time.monotonic() < deadline:
            w.write_batch(records(int(Provider.OKX), "ETH-USDT", Kind.TRADE, [w.position + 1]))
            ok = client.ask("subscribe", symbol="ETH-USDT")[1]["ok"]
        assert ok


def test_set_trading_mode_is_forwarded_to_execution_and_its_outcome_reported(run_ctx, client):
    ex = zmq.Context.instance().socket(zmq.ROUTER)
    ex.setsockopt(zmq.LINGER, 0)
    ex.bind(execution_endpoint(run_ctx.run_dir))
    got = []

    def execution():
        if ex.poll(5000):
            ident, frame = ex.recv_multipart()
            msg = orjson.loads(frame)
            got.append(msg)
            ex.send_multipart([ident, orjson.dumps({"type": "result", "request_id": msg["request_id"],
                                                    "cmd": "set_trading_mode", "ok": True, "code": None,
                                                    "reason": "", "consumer": "alpha",
                                                    "trading_enabled": True})])

    t = threading.Thread(target=execution)
    t.start()
    try:
        client.ask("register")
        a, r = client.ask("set_trading_mode", enabled=True)
        t.join(10)
        assert got == [{"cmd": "set_trading_mode", "request_id": got[0]["request_id"],
                        "consumer": "alpha", "key": consumer_key(run_ctx.run_dir, "alpha"), "enabled": True}]
        assert r["ok"] and r["trading_enabled"] is True and r["forward"]["status"] == "ok"
        assert client.ask("list_subscriptions")[1]["trading_enabled"] is True
    finally:
        ex.close(0)


def test_a_silent_execution_times_out_without_blocking_dispatch(run_ctx, client):
    ex = zmq.Context.instance().socket(zmq.ROUTER)  # bound, never answers
    ex.setsockopt(zmq.LINGER, 0)
    ex.bind(execution_endpoint(run_ctx.run_dir))
    try:
        client.ask("register")
        client.rid += 1
        client.sock.send(orjson.dumps({"cmd": "set_trading_mode", "request_id": client.rid, "consumer": "alpha",
                                       "key": consumer_key(run_ctx.run_dir, "alpha"), "enabled": False}))
        assert client.recv()["type"] == "ack"
        t0 = time.monotonic()
        hb_ack, hb = client.ask("heartbeat")  # answered while the forward is pending
        assert hb_ack["type"] == "ack" and hb["cmd"] == "heartbeat", hb
        assert time.monotonic() - t0 < 0.25
        r = client.recv()
        assert r["cmd"] == "set_trading_mode" and r["ok"]
        assert r["forward"]["status"] == "timeout" and r["trading_enabled"] is False
    finally:
        ex.close(0)


def test_set_trading_mode_without_execution_reports_it_absent(client):
    client.ask("register")
    r = client.ask("set_trading_mode", enabled=True)[1]
    assert r["ok"] and r["forward"]["status"] == "absent"
    assert client.ask("set_trading_mode", enabled="yes")[1]["code"] == "malformed"


def test_a_consumer_whose_process_dies_is_released_with_its_ring(run_ctx, client, reap):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reap.append(p)
    client.ask("register", consumer="doomed", pid=p.pid)
    client.ask("subscribe", consumer="doomed", symbol="BTC-USDT")
    assert "consumer.doomed.md" in run_ctx.namespace.names()
    other = client.ask("register", consumer="doomed", pid=os.getpid())[1]
    assert other["code"] == "name_in_use"
    p.kill()
    p.wait()
    deadline = time.monotonic() + 5
    while "consumer.doomed.md" in run_ctx.namespace.names() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "consumer.doomed.md" not in run_ctx.namespace.names()
    listing = client.ask("list_subscriptions", consumer=None)[1]
    assert "doomed" not in listing["consumers"]
    assert client.ask("register", consumer="doomed", pid=os.getpid())[1]["ok"]


def test_control_listens_on_loopback_or_ipc_only_by_default(run_ctx):
    assert dispatch_endpoint(run_ctx.run_dir).startswith("ipc://")
    check_local("tcp://127.0.0.1:5555")
    with pytest.raises(ValueError, match="loopback or ipc"):
        check_local("tcp://0.0.0.0:5555")


def test_an_ingest_restart_is_reattached_and_its_streams_restart(run_ctx, client):
    from consumer import Consumer

    okx = int(Provider.OKX)
    w = RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64)
    with Consumer("alpha") as c:
        c.subscribe("BTC-USDT", kinds=["book"])
        time.sleep(0.05)
        w.write_batch(records(okx, "BTC-USDT", Kind.BOOK, [500, 501]))
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            seen += [int(x["seq_provider"]) for x in c.events(64, 0.05) if x["kind"] == Kind.BOOK]
        w.close()                                   # ingest dies; a new one starts afresh
        w = RingWriter.create(run_ctx.namespace, "md.okx", EVENT, 64)
        w.write_batch(records(okx, "BTC-USDT", Kind.BOOK, [7, 8], flags=0))
        while len(seen) < 4 and time.monotonic() < deadline:
            seen += [int(x["seq_provider"]) for x in c.events(64, 0.05) if x["kind"] == Kind.BOOK]
        assert seen == [500, 501, 7, 8]
    w.close()


def test_execution_owns_the_switch_its_refusal_is_the_result_and_its_state_is_typed(run_ctx, client):
    ex = zmq.Context.instance().socket(zmq.ROUTER)
    ex.setsockopt(zmq.LINGER, 0)
    ex.bind(execution_endpoint(run_ctx.run_dir))

    def execution(answer: dict):
        if ex.poll(5000):
            ident, frame = ex.recv_multipart()
            rid = orjson.loads(frame)["request_id"]
            ex.send_multipart([ident, orjson.dumps({"type": "result", "request_id": rid,
                                                    "cmd": "set_trading_mode", **answer})])

    try:
        client.ask("register")
        t = threading.Thread(target=execution, args=({"ok": False, "code": "capacity", "reason": "full"},))
        t.start()
        r = client.ask("set_trading_mode", enabled=True)[1]
        t.join(10)
        assert not r["ok"] and r["code"] == "capacity" and "full" in r["reason"], r
        assert client.ask("list_subscriptions")[1]["trading_enabled"] is False  # unchanged
        t = threading.Thread(target=execution, args=({"ok": True, "code": None, "reason": "",
                                                      "trading_enabled": False},))
        t.start()
        reader = RingReader.attach(run_ctx.namespace, "consumer.alpha.md", EVENT, start="latest")
        try:
            r = client.ask("set_trading_mode", enabled=False)[1]
            t.join(10)
            assert r["ok"] and r["trading_enabled"] is False and r["forward"]["status"] == "ok"
            got = []
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:   # this request's result (the refusal's may trail)
                got = [int(x["result"]["trading"]) for x in reader.wait_read(16, timeout_s=0.1)
                       if x["kind"] == Kind.CONTROL_RESULT and x["result"]["request_id"] == r["request_id"]]
                reader.release()
            assert got == [0], "the ring's result carries the switch as a typed field"
        finally:
            reader.close()
    finally:
        ex.close(0)
