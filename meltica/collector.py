"""The run's telemetry collector: one SUB socket that every process's Telemetry feeds.

Keeps the newest metrics snapshot of each process and the most recent events, for the
live view, the end-of-run report and the Prometheus endpoint. Ops-only.

    col = Collector("ipc:///run/dir/telemetry.sock")   # binds; processes connect
    col.start()
    col.snapshots()        # {process: {"counters": .., "gauges": .., "histograms": ..}}
    col.recent_events(50)  # newest last
    col.close()
"""

from __future__ import annotations

import collections
import threading

import orjson
import zmq

from core.telemetry import metric_key


def parse_key(key: str) -> tuple[str, dict]:
    """Invert `metric_key`: 'a.b{x=1,y=2}' -> ('a.b', {'x': '1', 'y': '2'})."""
    if not key.endswith("}") or "{" not in key:
        return key, {}
    name, _, inner = key[:-1].partition("{")
    labels = dict(part.split("=", 1) for part in inner.split(",") if "=" in part)
    return name, labels


class Collector:
    """Receives `metrics` snapshots and events from every process of a run. Thread-safe."""

    def __init__(self, endpoint: str, *, keep_events: int = 1000, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sock.setsockopt(zmq.RCVHWM, 100_000)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(endpoint)
        self._lock = threading.Lock()
        self._snapshots: dict[str, dict] = {}
        self._events: collections.deque = collections.deque(maxlen=keep_events)
        self.event_counts: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry-collector", daemon=True)

    def start(self) -> "Collector":
        self._thread.start()
        return self

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                topic, body = self._sock.recv_multipart(zmq.NOBLOCK)
                msg = orjson.loads(body)
            except (zmq.Again, ValueError, orjson.JSONDecodeError):
                continue
            with self._lock:
                if topic == b"metrics":
                    self._snapshots[msg.get("process", "?")] = msg
                else:
                    self._events.append(msg)
                    self.event_counts[topic.decode(errors="replace")] += 1

    def snapshots(self) -> dict[str, dict]:
        with self._lock:
            return dict(self._snapshots)

    def recent_events(self, n: int = 100, name: str | None = None) -> list[dict]:
        with self._lock:
            events = [e for e in self._events if name is None or e.get("event") == name]
        return events[-n:]

    def counter(self, name: str, **labels) -> int:
        """Sum of counter `name` over every process, over label sets that include `labels`."""
        total = 0
        for snap in self.snapshots().values():
            for key, value in snap.get("counters", {}).items():
                kname, klabels = parse_key(key)
                if kname == name and all(klabels.get(k) == str(v) for k, v in labels.items()):
                    total += value
        return total

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._sock.close(0)


__all__ = ["Collector", "parse_key", "metric_key"]
