"""The live terminal view of a run (rich): markets, dispatch, orders, account, processes.

Redrawn a few times a second from the monitor consumer (top of book, latency, counts),
the telemetry collector (rates, resyncs, drops, windows, orders), the exec journal's
ACCOUNT records (balances and positions per venue, `consumer.account.AccountFollower`:
it reads the file, so it never holds the exec ring back) and the launcher (process
states, and why each restarted). Rates are taken over the last 5 seconds.

Drawn for an 80x24 terminal: borderless tables with one space between columns, short
headers, counts in full (never cut to `…`; a value too wide for its column folds onto
the next line instead), dispatch and orders as one wrapped line each, then one wrapped
line per venue with an account: its nonzero balances (`USDT 9,500 lk 500`: free, and
locked when any) and open positions (`BTC-USDT-SWAP -0.25@30123.5 pnl -1.2`). The default
run (two venues, three symbols, six programs) fits in 24 lines with two restart reasons
before any account is reported; each venue's account adds a line or two.
"""

from __future__ import annotations

import collections
import os
import time

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .report import _sum

ACCOUNT_ITEMS = 8   # balances and positions shown per venue (the largest balances first)


def _table(*columns: str, left: int = 1) -> Table:
    """Borderless, one space between columns, every cell folded rather than cut."""
    t = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False, header_style="bold")
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i < left else "right", overflow="fold")
    return t


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _us(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _duration(s: float) -> str:
    """12s, 4m05s, 3h25m: short enough for a narrow column, exact to the second below 1 h."""
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LiveView:
    def __init__(self, pipeline, duration_s: float | None):
        self.p = pipeline
        self.duration_s = duration_s
        self._last: dict[str, collections.deque] = {}
        self._accounts = None   # consumer.account.AccountFollower, once the run has a journal

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
        return Group(*self._head(p), self._market(p, snaps, mon), self._summary(snaps, mon),
                     *self._processes(p))

    def _head(self, p) -> list[Text]:
        left = f" ({_duration(max(0.0, self.duration_s - p.uptime_s()))} left)" if self.duration_s else ""
        source = "live venues" if p.live_feeds else "venue simulator"
        out = [Text(f"meltica {p.ctx.run_id}  {_duration(p.uptime_s())}{left}  {source}  Ctrl-C stops",
                    style="bold")]
        where = f"logs {_near(os.path.join(p.ctx.run_dir, 'logs'))}"
        if p.metrics_port:
            where += f"  metrics http://127.0.0.1:{p.metrics_port}/metrics"
        out.append(Text(where, style="dim"))
        return out

    def _market(self, p, snaps: dict, mon: dict) -> Table:
        t = _table("venue", "symbol", "bid", "ask", "bps", "msg/s", "resync", "p50us", "p99us", left=2)
        for venue in p.venues:
            lat = p.monitor.latency_us(venue) if p.monitor else {}
            for i, symbol in enumerate(p.symbols):
                top = mon["top"].get(f"{venue}/{symbol}", {})
                msgs = _sum(snaps, "md.messages", provider=venue, symbol=symbol)
                spread = top.get("spread_bps")
                t.add_row(venue if i == 0 else "", symbol, str(top.get("bid", "-")), str(top.get("ask", "-")),
                          "-" if spread is None else f"{spread:.2f}",
                          f"{self._rate(f'{venue}/{symbol}', msgs):,.0f}",
                          _count(_sum(snaps, "book.resync", provider=venue, symbol=symbol)),
                          _us(lat.get("p50_us")), _us(lat.get("p99_us")))
        return t

    def _summary(self, snaps: dict, mon: dict) -> Table:
        t = Table.grid(padding=(0, 1, 0, 0))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row("dispatch", self._dispatch(snaps, mon))
        t.add_row("orders", self._orders(snaps))
        for i, line in enumerate(self._account_lines()):
            t.add_row("account" if i == 0 else "", line)
        return t

    def _account_lines(self) -> list[_Pairs]:
        """One line per venue with a nonzero balance or an open position (exec journal)."""
        if self._accounts is None:
            from consumer.account import AccountFollower  # the SDK; meltica stays importable alone
            self._accounts = AccountFollower(self.p.ctx)
        while self._accounts.poll():
            pass
        out = []
        for venue in self._accounts.venues():
            acct = self._accounts.account(venue)
            bals = sorted(acct.balances.values(), key=lambda b: (-b.total, b.asset))
            items = [f"{b.asset} {_dec(b.free)}" + (f" lk {_dec(b.locked)}" if b.locked_m else "") for b in bals]
            items += [f"{p.symbol} {_dec(p.size)}@{_dec(p.entry_px)} pnl {_dec(p.unrealized_pnl)}"
                      for p in acct.positions.values()]
            if items:
                more = len(items) - ACCOUNT_ITEMS
                out.append(_Pairs([venue] + items[:ACCOUNT_ITEMS] + ([f"+{more} more"] if more > 0 else [])))
        return out

    def _dispatch(self, snaps: dict, mon: dict) -> _Pairs:
        delivered = sum(mon["counts"].values())
        return _line([
            ("delivered", f"{delivered:,} ({self._rate('delivered', delivered):,.0f}/s)"),
            ("coalesced", _count(_sum(snaps, "fanout.coalesced"))),
            ("dropped", _count(_sum(snaps, "fanout.dropped"))),
            ("late", _count(_sum(snaps, "late_event.dropped"))),
            ("merged", _count(_sum(snaps, "merge.emitted"))),
            ("suppressed", _count(_sum(snaps, "merge.suppressed_partial")))])

    def _orders(self, snaps: dict) -> _Pairs:
        gauges = {k: v for s in snaps.values() for k, v in s.get("gauges", {}).items()}
        return _line([
            ("submitted", _count(_sum(snaps, "strategy.orders.submitted"))),
            ("accepted", _count(_sum(snaps, "exec.orders.accepted"))),
            ("rejected", _count(sum(_sum(snaps, "exec.orders.rejected", group_by="reason").values()))),
            ("reports", _count(sum(_sum(snaps, "exec.reports", group_by="status").values()))),
            ("open", _count(gauges.get("exec.open_orders", "-"))),
            ("exec_seq", _count(gauges.get("exec.last_exec_seq", "-")))])

    def _processes(self, p) -> list:
        t = _table("program", "pid", "state", "up", "restarts", left=3)
        why = Table.grid(padding=(0, 1, 0, 0))   # why each program exited last, wrapped beside its name
        why.add_column(style="bold", no_wrap=True)
        why.add_column(overflow="fold")
        for s in p.launcher.states():
            style = "green" if s["state"] == "running" else "red"
            t.add_row(s["name"], str(s["pid"] or "-"), Text(s["state"], style=style),
                      _duration(s["uptime_s"]) if s["state"] == "running" else "-", str(s["restarts"]))
            if s.get("last_exit"):
                times = f"exited {s['exits']}x" if s.get("exits", 1) > 1 else "exited"
                why.add_row(s["name"], Text.assemble(f"{times}, last: ", (s["last_exit"], "red")))
        out: list = [t, why] if why.row_count else [t]
        if p.monitor is not None and p.monitor.error:
            out.append(Text(p.monitor.error, style="red"))
        return out


def _dec(d) -> str:
    """A Decimal with thousands separators, never in exponent form: 1,000,000,000 / -0.25."""
    return f"{d:,f}"


def _line(items: list[tuple[str, str]]) -> "_Pairs":
    return _Pairs([f"{name} {value}" for name, value in items])


class _Pairs:
    """"name value  name value ...", wrapped between pairs only, never inside one."""

    def __init__(self, pairs: list[str]):
        self.pairs = pairs

    def __rich_console__(self, console, options):
        line = ""
        for pair in self.pairs:
            if line and len(line) + 2 + len(pair) > options.max_width:
                yield Text(line)
                line = pair
            else:
                line = f"{line}  {pair}" if line else pair
        yield Text(line)


def _near(path) -> str:
    """`path` relative to the working directory when it lies below it (shorter)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)
