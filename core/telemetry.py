"""Ops-only telemetry (LM-08): counters and gauges, and events on a ZeroMQ PUB socket.

No business logic reads telemetry. A process owns one `Telemetry`:

    tel = Telemetry("ingest.okx")          # endpoint: argument, else $MELTICA_TELEMETRY
    tel.inc("book.resync", provider="okx", symbol="BTC-USDT", reason="gap")
    tel.gauge("ring.lag", 12, consumer="c1")
    tel.observe("e2e.latency_us", 41.5)    # a histogram sample
    tel.event("book.resync", provider="okx", symbol="BTC-USDT", reason="gap", trace_id=t)
    tel.snapshot()   # {"counters": {...}, "gauges": {...}, "histograms": {...}}

Events are published as two frames, topic (the event name) and an orjson body with
`ts_ns` and `process`. With an endpoint, a background thread also publishes the whole
snapshot every `snapshot_interval_s` under the topic `metrics`, which is how the run's
collector (`meltica.collector`) and the Prometheus endpoint (`meltica.metrics`) see
every process. Publishing never blocks: at the high-water mark ZeroMQ drops, and the
drop is counted. Counter keys are `name{label=value,...}` (Prometheus style).
"""

from __future__ import annotations

import os
import threading
import time

import orjson
import zmq

ENV_ENDPOINT = "MELTICA_TELEMETRY"
_FROM_ENV = object()

# Histogram bucket upper bounds (microseconds-friendly, also fine for counts).
BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
           100_000, 200_000, 500_000, 1_000_000, 5_000_000)


def metric_key(name: str, labels: dict) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


class Telemetry:
    """Counters, gauges, histograms and published events of one process. Thread-safe."""

    def __init__(self, process: str, pub_endpoint=_FROM_ENV, *, context: zmq.Context | None = None,
                 hwm: int = 10_000, snapshot_interval_s: float | None = 1.0):
        self.process = process
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, float] = {}
        self.histograms: dict[str, list] = {}  # key -> [bucket counts..., +inf count, sum]
        self._sock = None
        self._stop = threading.Event()
        if pub_endpoint is _FROM_ENV:
            pub_endpoint = os.environ.get(ENV_ENDPOINT) or None
        self.endpoint = pub_endpoint
        if pub_endpoint:
            ctx = context or zmq.Context.instance()
            self._sock = ctx.socket(zmq.PUB)
            self._sock.setsockopt(zmq.SNDHWM, hwm)
            self._sock.setsockopt(zmq.LINGER, 0)
            if pub_endpoint.startswith("bind:"):
                self._sock.bind(pub_endpoint[5:])
            else:
                self._sock.connect(pub_endpoint)  # the run's collector binds
            if snapshot_interval_s:
                threading.Thread(target=self._publish_snapshots, args=(snapshot_interval_s,),
                                 name=f"telemetry-{process}", daemon=True).start()

    def inc(self, name: str, n: int = 1, **labels) -> None:
        key = metric_key(name, labels)
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def gauge(self, name: str, value: float, **labels) -> None:
        key = metric_key(name, labels)
        with self._lock:
            self.gauges[key] = value

    def observe(self, name: str, value: float, **labels) -> None:
        """Add one sample to the histogram `name` (fixed BUCKETS)."""
        key = metric_key(name, labels)
        with self._lock:
            h = self.histograms.get(key)
            if h is None:
                h = self.histograms[key] = [0] * (len(BUCKETS) + 1) + [0.0]
            for i, bound in enumerate(BUCKETS):
                if value <= bound:
                    h[i] += 1
                    break
            else:
                h[len(BUCKETS)] += 1
            h[-1] += value

    def event(self, name: str, **fields) -> None:
        """Count `name` and publish it with `fields` (ints, strings, lists, dicts)."""
        self.inc(name + ".events")
        if self._sock is None:
            return
        body = {"ts_ns": time.time_ns(), "process": self.process, "event": name, **fields}
        self._send(name.encode(), orjson.dumps(body, default=str))

    def _send(self, topic: bytes, body: bytes) -> None:
        with self._send_lock:  # one socket, used by the caller and the snapshot thread
            if self._sock is None:
                return
            try:
                self._sock.send_multipart([topic, body], zmq.NOBLOCK)
            except zmq.Again:
                self.inc("telemetry.dropped")

    def _publish_snapshots(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.publish_snapshot()

    def publish_snapshot(self) -> None:
        """Publish the whole snapshot now (topic `metrics`)."""
        if self._sock is not None:
            snap = self.snapshot()
            snap["ts_ns"] = time.time_ns()
            snap["pid"] = os.getpid()
            self._send(b"metrics", orjson.dumps(snap, default=str))

    def snapshot(self) -> dict:
        with self._lock:
            return {"process": self.process, "counters": dict(self.counters),
                    "gauges": dict(self.gauges),
                    "histograms": {k: list(v) for k, v in self.histograms.items()}}

    def close(self) -> None:
        self._stop.set()
        self.publish_snapshot()
        with self._send_lock:
            if self._sock is not None:
                self._sock.close(0)
                self._sock = None
