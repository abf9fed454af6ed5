"""Telemetry: labelled counters and gauges, events published on ZeroMQ PUB."""

import orjson
import pytest
import zmq

from core.run import RunContext
from core.telemetry import Telemetry, metric_key

pytestmark = pytest.mark.timeout(30)


def test_counters_and_gauges_are_keyed_by_sorted_labels():
    tel = Telemetry("ingest.okx")
    tel.inc("book.resync", provider="okx", symbol="BTC-USDT", reason="gap")
    tel.inc("book.resync", reason="gap", symbol="BTC-USDT", provider="okx")
    tel.gauge("ring.lag", 12, consumer="c1")
    snap = tel.snapshot()
    assert snap["counters"] == {"book.resync{provider=okx,reason=gap,symbol=BTC-USDT}": 2}
    assert snap["gauges"] == {"ring.lag{consumer=c1}": 12}
    assert metric_key("x", {}) == "x"


def test_events_reach_a_subscriber(tmp_path):
    endpoint = f"ipc://{tmp_path}/tel.sock"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.bind(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    tel = Telemetry("dispatch", endpoint)
    try:
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        # PUB/SUB drops until the connection is up: publish until one arrives.
        for _ in range(200):
            tel.event("merge.suppressed_partial", merge_key="BTC-USDT", missing_providers=["okx"])
            if poller.poll(50):
                break
        topic, body = sub.recv_multipart()
        msg = orjson.loads(body)
        assert topic == b"merge.suppressed_partial"
        assert msg["process"] == "dispatch" and msg["missing_providers"] == ["okx"]
    finally:
        tel.close()
        sub.close(0)


def test_run_context_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MELTICA_RUN", "r1")
    monkeypatch.setenv("MELTICA_RUN_DIR", str(tmp_path / "r1"))
    ctx = RunContext.from_env()
    assert ctx.run_id == "r1" and ctx.namespace.run == "r1"
    assert ctx.path("dlq", "x.jsonl").parent.is_dir()
    assert ctx.env() == {"MELTICA_RUN": "r1", "MELTICA_RUN_DIR": str(tmp_path / "r1")}
