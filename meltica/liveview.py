"""The live terminal view of a run (rich): markets, dispatch, orders, processes.

Redrawn a few times a second from the monitor consumer (top of book, latency, counts),
the telemetry collector (rates, resyncs, drops, windows, orders) and the launcher
(process states). Rates are taken over the last 5 seconds.
"""

from __future__ import annotations

import collections
import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .report import _sum


class LiveView:
    def __init__(self, pipeline, duration_s: float | None):
        self.p = pipeline
        self.duration_s = duration_s
        self._last: dict[str, collections.deque] = {}

    def _rate(self, key: str, total: int, window_s: float = 5.0) -> float:
        """Per-second rate of a growing total over the last `window_s` (counters arrive
        in snapshots about once a second, so a shorter window would read 0 in between)."""
        now = time.monotonic()
        hist = self._last.setdefault(key, collections.deque())
        hist.append((now, total))
        while len(hist) > 2 and now - hist[1][0] >= window_s:
            hist.popleft()
        t0, v0 = hist[0]
        return (total - v0) / (now - t0) if now > t0 else 0.0

    def render(self) -> Group:
        p = self.p
        snaps = p.collector.snapshots() if p.collector else {}
        mon = p.monitor.snapshot() if p.monitor else {"top": {}, "counts": {}, "merged": 0}
        left = f", {max(0.0, self.duration_s - p.uptime_s()):.0f}s left" if self.duration_s else ""
        metrics = f"  metrics http://127.0.0.1:{p.metrics_port}/metrics" if p.metrics_port else ""
        head = Text(f"Meltica run {p.ctx.run_id} — {p.uptime_s():.0f}s{left} — "
                    f"{'live venues' if p.live_feeds else 'venue simulator'}{metrics}   (Ctrl-C stops)",
                    style="bold")

        market = Table(title="market data (ingest -> dispatch -> monitor consumer)", expand=True)
        for col in ("venue", "symbol", "bid", "ask", "spread bps", "msgs/s", "resyncs",
                    "e2e p50 us", "e2e p99 us"):
            market.add_column(col, justify="right" if col not in ("venue", "symbol") else "left")
        for venue in p.venues:
            lat = p.monitor.latency_us(venue) if p.monitor else {}
            for symbol in p.symbols:
                top = mon["top"].get(f"{venue}/{symbol}", {})
                msgs = _sum(snaps, "md.messages", provider=venue, symbol=symbol)
                resyncs = _sum(snaps, "book.resync", provider=venue, symbol=symbol)
                market.add_row(venue, symbol, top.get("bid", "-"), top.get("ask", "-"),
                               str(top.get("spread_bps", "-")), f"{self._rate(f'{venue}/{symbol}', msgs):.0f}",
                               str(resyncs), str(lat.get("p50_us", "-")), str(lat.get("p99_us", "-")))

        disp = Table(title="dispatch", expand=True)
        for col in ("delivered to monitor", "coalesced", "dropped", "late drops",
                    "merged emitted", "merged suppressed"):
            disp.add_column(col, justify="right")
        delivered = sum(mon["counts"].values())
        disp.add_row(f"{delivered:,} ({self._rate('delivered', delivered):.0f}/s)",
                     str(_sum(snaps, "fanout.coalesced")), str(_sum(snaps, "fanout.dropped")),
                     str(_sum(snaps, "late_event.dropped")), str(_sum(snaps, "merge.emitted")),
                     str(_sum(snaps, "merge.suppressed_partial")))

        orders = Table(title="orders (strategy -> execution -> venue)", expand=True)
        for col in ("submitted", "accepted", "rejected", "exec reports", "open", "last exec_seq"):
            orders.add_column(col, justify="right")
        open_orders = next((s["gauges"].get("exec.open_orders") for s in snaps.values()
                            if "exec.open_orders" in s.get("gauges", {})), "-")
        last_seq = next((s["gauges"].get("exec.last_exec_seq") for s in snaps.values()
                         if "exec.last_exec_seq" in s.get("gauges", {})), "-")
        orders.add_row(str(_sum(snaps, "strategy.orders.submitted")),
                       str(_sum(snaps, "exec.orders.accepted")),
                       str(sum(_sum(snaps, "exec.orders.rejected", group_by="reason").values())),
                       str(sum(_sum(snaps, "exec.reports", group_by="status").values())),
                       str(open_orders), str(last_seq))

        procs = Table(title="processes", expand=True)
        for col in ("program", "pid", "state", "uptime s", "restarts"):
            procs.add_column(col)
        for s in p.launcher.states():
            style = "green" if s["state"] == "running" else "red"
            procs.add_row(s["name"], str(s["pid"] or "-"), Text(s["state"], style=style),
                          str(s["uptime_s"]), str(s["restarts"]))
        parts = [head, market, disp, orders, procs]
        if p.monitor is not None and p.monitor.error:
            parts.append(Text(p.monitor.error, style="red"))
        return Group(*parts)
