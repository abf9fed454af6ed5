"""The run's collector sees every process's telemetry; /metrics serves it to Prometheus."""

import socket
import urllib.request

import pytest

from meltica.collector import Collector, parse_key
from meltica.metrics import serve
from core.telemetry import Telemetry

pytestmark = pytest.mark.timeout(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, tries=300):
    import threading
    ev = threading.Event()
    for _ in range(tries):
        if predicate():
            return True
        ev.wait(0.02)
    return False


def test_snapshots_and_events_of_two_processes_reach_the_collector_and_prometheus(tmp_path):
    col = Collector(f"ipc://{tmp_path}/tel.sock").start()
    a = Telemetry("ingest.okx", col.endpoint, snapshot_interval_s=0.05)
    b = Telemetry("dispatch", col.endpoint, snapshot_interval_s=0.05)
    try:
        a.inc("book.resync", provider="okx", symbol="BTC-USDT", reason="gap")
        b.inc("book.resync", provider="okx")
        b.gauge("consumer.lag", 7, consumer="c1")
        for v in (3, 40, 4000):
            b.observe("e2e.latency_us", v)
        assert wait_for(lambda: set(col.snapshots()) == {"ingest.okx", "dispatch"})
        assert wait_for(lambda: col.counter("book.resync") == 2)
        assert col.counter("book.resync", reason="gap") == 1
        assert wait_for(lambda: (a.event("book.resync", reason="gap"), col.recent_events(5, "book.resync"))[1])

        port = free_port()
        server, _ = serve(col, port)
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        finally:
            server.shutdown()
        assert 'meltica_book_resync_total{process="ingest.okx",provider="okx",reason="gap",symbol="BTC-USDT"} 1.0' in text
        assert 'meltica_book_resync_total{process="dispatch",provider="okx",reason="",symbol=""} 1.0' in text
        assert 'meltica_consumer_lag{consumer="c1",process="dispatch"} 7.0' in text
        assert 'meltica_e2e_latency_us_bucket{le="50",process="dispatch"} 2.0' in text
        assert 'meltica_e2e_latency_us_count{process="dispatch"} 3.0' in text
    finally:
        a.close()
        b.close()
        col.close()


def test_parse_key_inverts_metric_keys():
    assert parse_key("a.b{x=1,y=z}") == ("a.b", {"x": "1", "y": "z"})
    assert parse_key("plain") == ("plain", {})
