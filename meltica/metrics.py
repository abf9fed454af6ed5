"""The Prometheus endpoint of a run: every process's telemetry, aggregated, on one port.

Serves `/metrics` (prometheus-client's HTTP server) from the collector's newest snapshot
of each process. Names are prefixed `meltica_`, dots become underscores, counters get
`_total`, and every series carries a `process` label:

    book.resync{provider=okx,reason=gap,symbol=BTC-USDT}   (ingest.okx)
    -> meltica_book_resync_total{process="ingest.okx",provider="okx",reason="gap",symbol="BTC-USDT"}
"""

from __future__ import annotations

import re

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.registry import CollectorRegistry
from prometheus_client import start_http_server

from .collector import Collector, parse_key
from core.telemetry import BUCKETS

_BAD = re.compile(r"[^a-zA-Z0-9_]")


def prom_name(name: str) -> str:
    return "meltica_" + _BAD.sub("_", name)


class _RunMetrics:
    def __init__(self, collector: Collector):
        self.collector = collector

    def collect(self):
        # First gather every series, then build each family over the union of the
        # label names its series use (a missing label is ""), so one name is one family.
        series: dict[tuple[str, str], list] = {}
        for process, snap in sorted(self.collector.snapshots().items()):
            for kind, field in (("counter", "counters"), ("gauge", "gauges"), ("histogram", "histograms")):
                for key, value in snap.get(field, {}).items():
                    name, labels = parse_key(key)
                    series.setdefault((kind, prom_name(name)), []).append(({"process": process, **labels}, value))
        cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
               "histogram": HistogramMetricFamily}
        for (kind, name), items in sorted(series.items()):
            label_names = sorted({k for labels, _ in items for k in labels})
            fam = cls[kind](name, f"meltica telemetry {name}", labels=label_names)
            for labels, value in items:
                values = [labels.get(k, "") for k in label_names]
                if kind == "histogram":
                    cumulative, buckets = 0, []
                    for bound, count in zip(BUCKETS, value[: len(BUCKETS)]):
                        cumulative += count
                        buckets.append((str(bound), cumulative))
                    buckets.append(("+Inf", cumulative + value[len(BUCKETS)]))
                    fam.add_metric(values, buckets, value[-1])
                else:
                    fam.add_metric(values, value)
            yield fam


def serve(collector: Collector, port: int, addr: str = "127.0.0.1"):
    """Start the /metrics HTTP server (a daemon thread); return (server, thread)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunMetrics(collector))
    return start_http_server(port, addr=addr, registry=registry)
