"""The end-of-run report (`make run ARGS="--report FILE"`): one JSON object.

    run            id, directory, seconds, live feeds or simulator
    delivered      records the monitor consumer received, per venue and kind
    latency        ingest -> consumer p50 / p99 / p99.9 in us, overall and per venue
    market_data    per venue: messages, resyncs by reason, gaps, checksum failures, reconnects
    dispatch       coalesced and dropped records, late drops, merge windows emitted/suppressed
    orders         strategy orders submitted / accepted / rejected, exec reports, last exec_seq
    processes      per program: restarts, last state, its last exits during the run (when,
                   after how long, exit status or signal, last error line of its log)
    failure        why the run stopped early (a program's configuration error), else null
    monitor_*      the monitor consumer's error (if it stopped) and re-registrations after
                   dispatch restarts
    telemetry      every counter of every process (the raw material of the above)
"""

from __future__ import annotations

from .collector import parse_key


def _sum(snapshots: dict, name: str, group_by: str | None = None, **labels):
    """Sum counter `name` over processes, optionally grouped by one label."""
    total: dict | int = {} if group_by else 0
    for snap in snapshots.values():
        for key, value in snap.get("counters", {}).items():
            kname, klabels = parse_key(key)
            if kname != name or any(klabels.get(k) != str(v) for k, v in labels.items()):
                continue
            if group_by:
                g = klabels.get(group_by, "")
                total[g] = total.get(g, 0) + value
            else:
                total += value
    return total


def _gauge(snapshots: dict, name: str, process: str | None = None):
    for proc, snap in snapshots.items():
        if process and proc != process:
            continue
        for key, value in snap.get("gauges", {}).items():
            if parse_key(key)[0] == name:
                return value
    return None


def build(pipeline) -> dict:
    snaps = pipeline.collector.snapshots() if pipeline.collector else {}
    mon = pipeline.monitor
    delivered: dict[str, dict[str, int]] = {}
    if mon is not None:
        for key, n in mon.snapshot()["counts"].items():
            venue, kind = key.split("/")
            delivered.setdefault(venue, {})[kind] = n
    md = {}
    for venue in pipeline.venues:
        md[venue] = {
            "messages": _sum(snaps, "md.messages", provider=venue),
            "resyncs": _sum(snaps, "book.resync", group_by="reason", provider=venue),
            "gaps": _sum(snaps, "book.gap", provider=venue),
            "checksum_failed": _sum(snaps, "book.checksum_failed", provider=venue),
            "reconnects": _sum(snaps, "ws.reconnect", provider=venue),
            "bad_frames": _sum(snaps, "ingest.bad_frame", provider=venue),
        }
    dispatch = {
        "coalesced": _sum(snaps, "fanout.coalesced"),
        "dropped_trades": _sum(snaps, "fanout.dropped"),
        "late_dropped": _sum(snaps, "late_event.dropped"),
        "merge_windows_emitted": _sum(snaps, "merge.emitted"),
        "merge_windows_suppressed": _sum(snaps, "merge.suppressed_partial"),
        "dedup_dropped": _sum(snaps, "dedup.dropped"),
    }
    orders = {
        "submitted": _sum(snaps, "strategy.orders.submitted"),
        "accepted": _sum(snaps, "exec.orders.accepted"),
        "duplicates": _sum(snaps, "exec.orders.duplicate"),
        "rejected": _sum(snaps, "exec.orders.rejected", group_by="reason"),
        "exec_reports": _sum(snaps, "exec.reports", group_by="status"),
        "exec_reports_by_venue": _sum(snaps, "exec.reports", group_by="venue"),
        "last_exec_seq": _gauge(snaps, "exec.last_exec_seq"),
        "strategy_reports_received": _sum(snaps, "strategy.exec_reports"),
    }
    exits = pipeline.launcher.exits()
    latency = {"all": mon.latency_us() if mon else None}
    if mon is not None:
        for venue in pipeline.venues:
            latency[venue] = mon.latency_us(venue)
    return {
        "run": {"id": pipeline.ctx.run_id, "dir": str(pipeline.ctx.run_dir),
                "seconds": round(pipeline.uptime_s(), 1),
                "source": "live venues" if pipeline.live_feeds else "venue simulator"},
        "delivered": delivered,
        "latency_ingest_to_consumer": latency,
        "market_data": md,
        "dispatch": dispatch,
        "orders": orders,
        "merged_records_seen": mon.snapshot()["merged"] if mon else 0,
        "processes": {s["name"]: {"restarts": s["restarts"], "state": s["state"],
                                  "exits": [e.as_dict() for e in exits.get(s["name"], [])]}
                      for s in pipeline.launcher.states()},
        "monitor_error": mon.error if mon else None,
        "monitor_recoveries": mon.recoveries if mon else 0,
        "telemetry": {proc: snap.get("counters", {}) for proc, snap in sorted(snaps.items())},
    }
