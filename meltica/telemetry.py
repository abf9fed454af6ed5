"""Ops-only telemetry (LM-08): counters and gauges, and events on a ZeroMQ PUB socket.

No business logic reads telemetry. A process owns one `Telemetry`:

    tel = Telemetry("ingest.okx", pub_endpoint="ipc:///tmp/x.sock")   # endpoint optional
    tel.inc("book.resync", provider="okx", symbol="BTC-USDT", reason="gap")
    tel.gauge("ring.lag", 12, consumer="c1")
    tel.event("book.resync", provider="okx", symbol="BTC-USDT", reason="gap", trace_id=t)
    tel.snapshot()   # {"counters": {...}, "gauges": {...}} for reports and /metrics

Events are published as two frames, topic (the event name) and an orjson body with
`ts_ns` and `process`. Publishing never blocks: at the high-water mark ZeroMQ drops,
and the drop is counted. Counter keys are `name{label=value,...}` (Prometheus style).
"""

from __future__ import annotations

import threading
import time

import orjson
import zmq


def metric_key(name: str, labels: dict) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


class Telemetry:
    """Counters, gauges and published events of one process. Thread-safe."""

    def __init__(self, process: str, pub_endpoint: str | None = None, *, context: zmq.Context | None = None,
                 hwm: int = 10_000):
        self.process = process
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, float] = {}
        self._sock = None
        if pub_endpoint:
            ctx = context or zmq.Context.instance()
            self._sock = ctx.socket(zmq.PUB)
            self._sock.setsockopt(zmq.SNDHWM, hwm)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._bind_or_connect(pub_endpoint)

    def _bind_or_connect(self, endpoint: str) -> None:
        """`bind:ENDPOINT` binds; a plain endpoint connects (to a collector that binds)."""
        if endpoint.startswith("bind:"):
            self._sock.bind(endpoint[5:])
        else:
            self._sock.connect(endpoint)

    def inc(self, name: str, n: int = 1, **labels) -> None:
        key = metric_key(name, labels)
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def gauge(self, name: str, value: float, **labels) -> None:
        key = metric_key(name, labels)
        with self._lock:
            self.gauges[key] = value

    def event(self, name: str, **fields) -> None:
        """Count `name` and publish it with `fields` (ints, strings, lists, dicts)."""
        self.inc(name + ".events")
        if self._sock is None:
            return
        body = {"ts_ns": time.time_ns(), "process": self.process, "event": name, **fields}
        try:
            self._sock.send_multipart([name.encode(), orjson.dumps(body, default=str)], zmq.NOBLOCK)
        except zmq.Again:
            self.inc("telemetry.dropped")

    def snapshot(self) -> dict:
        with self._lock:
            return {"process": self.process, "counters": dict(self.counters), "gauges": dict(self.gauges)}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
