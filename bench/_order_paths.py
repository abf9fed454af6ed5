"""The REST and WebSocket blocks of `python -m bench orders` (see bench/orders.py): what is
traded on a venue, one execution run per block and what it measured, and the figures of both
paths. Lost reports and venue duplicates are counted here, never assumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"bench orders: {msg}", file=sys.stderr, flush=True)


def pct(xs, q) -> float:
    return round(float(np.percentile(np.array(xs) * 1e3, q)), 3) if xs else float("nan")


def _kill(p: subprocess.Popen | None) -> None:
    if p is not None and p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


@dataclass(frozen=True)
class Plan:
    """What the bench trades on a venue: one instrument, marketable orders of `qty`."""

    symbol: str
    qty: str


def order_plan(venue: str, rest_url: str) -> Plan:
    """BTC-USDT (or the venue's first BTC instrument) from the venue's own metadata, market orders
    of 0.001 BTC or its lot, whichever is larger: no price needed, so any tradable venue works."""
    import venues
    from events import to_decimal, to_mantissa
    registry = venues.get(venue).trading_registry(rest_url, timeout_s=5.0)
    insts = sorted(registry, key=lambda i: (i.symbol != "BTC-USDT", not i.symbol.startswith("BTC-"), i.symbol))
    if not insts:
        raise SystemExit(f"{venue}: the venue lists no instrument to trade")
    inst = insts[0]
    lot = max(int(inst.lot), 1)
    qty = max(to_mantissa("0.001", inst.sz_scale) if inst.sz_scale >= 3 else lot, lot)
    qty = -(-qty // lot) * lot
    return Plan(inst.symbol, to_decimal(qty, inst.sz_scale))


@dataclass
class Block:
    """What one execution run (one order-entry path) measured."""

    path: str
    used: str = ""                       # the path execution says it used (ready file)
    orders: int = 0
    elapsed: float = 0.0
    reply_s: list = field(default_factory=list)
    ack_s: list = field(default_factory=list)
    fill_s: list = field(default_factory=list)
    deliver_s: list = field(default_factory=list)
    events: list = field(default_factory=list)   # exec.order.sent telemetry
    sent_wall: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)
    statuses: dict = field(default_factory=dict)
    seqs: list = field(default_factory=list)
    journal_last: int = 0
    journal_reports: set = field(default_factory=set)   # exec_seq of the journal's exec reports


def run_block(args, plan: Plan, path: str, tag: str, base: Path, sim, env_base: dict, logf) -> Block:
    """One `python -m execution --order-entry PATH` in a fresh run: `args.rate` orders/s for its
    share of `args.seconds`, each timed from submit to its first exec report (and terminal one)."""
    from channels.journal import JournalReader
    from consumer.orders import OrderClient
    from core.run import RunContext
    from events import ExecStatus, Kind
    from meltica.collector import Collector

    ctx = RunContext(f"bencho{uuid.uuid4().hex[:8]}", base / tag).claim()
    env = {**env_base, **ctx.env()}
    ep = sim.endpoints[args.venue]
    tel_endpoint = f"ipc://{ctx.run_dir}/bench-telemetry.sock"
    collector = Collector(tel_endpoint, keep_events=100_000).start()
    ex = subprocess.Popen([sys.executable, "-m", "execution", "--venue", args.venue, "--rest-url", ep["rest"],
                           "--ws-url", ep["ws"], "--durability", args.durability, "--telemetry", tel_endpoint,
                           "--order-entry", path], env=env, cwd=REPO, stdout=logf, stderr=logf,
                          start_new_session=True)
    b = Block(path)
    try:
        ready = ctx.run_dir / "exec" / "ready"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if ex.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"execution did not start (log: {logf.name})")
            time.sleep(0.02)
        fields = dict(f.split("=", 1) for f in ready.read_text().split() if "=" in f)
        b.used = dict(x.split(":", 1) for x in fields.get("order_entry", "").split(",") if ":" in x).get(
            args.venue, "rest")

        class Strategy:
            name, trading_enabled = "bench", True

        oc = OrderClient(Strategy(), run=ctx)
        oc.hello()
        n = max(1, int(args.rate * args.seconds / args.blocks))
        period = 1.0 / args.rate
        sent: dict[bytes, float] = {}
        t_start = time.perf_counter()

        def drain(wait: float) -> None:
            for rec in oc.poll_reports(timeout_s=wait):
                now = time.perf_counter()
                b.deliver_s.append((time.time_ns() - int(rec["ingest_ts_ns"])) / 1e9)
                b.seqs.append(int(rec["exec"]["exec_seq"]))
                coid = bytes(rec["exec"]["client_order_id"])
                st = int(rec["exec"]["status"])
                if coid not in sent:
                    continue
                prev = b.statuses.get(coid)
                if prev is None:
                    b.ack_s.append(now - sent[coid])
                    b.first[coid] = (int(rec["ingest_ts_ns"]), time.time_ns())
                if ExecStatus(st).terminal and (prev is None or not ExecStatus(prev).terminal):
                    b.fill_s.append(now - sent[coid])
                b.statuses[coid] = st

        for i in range(n):
            t_due = t_start + i * period
            drain(0)
            while (left := t_due - time.perf_counter()) > 0:
                drain(min(left, 0.002))
            coid = f"{tag}-{i}"
            t0 = time.perf_counter()
            sent[coid.encode()] = t0
            b.sent_wall[coid] = time.time_ns()
            r = oc.submit_market(coid, plan.symbol, "buy" if i % 2 == 0 else "sell", plan.qty)
            b.reply_s.append(time.perf_counter() - t0)
            if r["status"] != "accepted":
                raise SystemExit(f"order {coid} not accepted: {r}")
        b.elapsed = time.perf_counter() - t_start
        b.orders = n
        deadline = time.monotonic() + 10
        while len(b.fill_s) < n and time.monotonic() < deadline:
            drain(0.05)
        drain(0.2)   # a report past the terminal one would be a duplicate: read it too
        oc.close()
        time.sleep(1.2)  # execution's last telemetry events
        b.events = collector.recent_events(100_000, "exec.order.sent")
    finally:
        collector.close()
        if ex.poll() is None:
            ex.send_signal(signal.SIGTERM)
            try:
                ex.wait(10)
            except subprocess.TimeoutExpired:
                _kill(ex)
        journal = JournalReader(ctx.path("exec", "exec.journal"))
        try:
            b.journal_last = journal.last_seq()
            recs = journal.read(1, b.journal_last)   # exec reports amid the venues' ACCOUNT records
            b.journal_reports = {int(s) for s in recs["exec"]["exec_seq"][recs["kind"] == Kind.EXEC_REPORT]}
        finally:
            journal.close()
        ctx.namespace.cleanup()
    return b


def lost_reports(b: Block) -> int:
    """Reports the consumer never read: the journal's exec reports (its ACCOUNT records go to
    `account()`, not to `poll_reports`) missing from what it read, plus the orders that never
    reached a terminal report."""
    missing = len(b.journal_reports - set(b.seqs))
    unfinished = b.orders - len(b.fill_s)
    return missing + max(unfinished, 0)


def summarize(venue: str, plan: Plan, rest: list[Block], ws: list[Block]) -> dict:
    """The figures of the REST and WebSocket blocks (see the module docstring)."""
    from events import ExecStatus

    def cat(bs, attr):
        return [x for b in bs for x in getattr(b, attr)]

    def merged(bs, attr):
        out = {}
        for b in bs:
            out.update(getattr(b, attr))
        return out

    ack_s, events = cat(rest, "ack_s"), cat(rest, "events")
    rtt = [(e["replied_ns"] - e["sent_ns"]) / 1e9 for e in events if e.get("replied_ns")]
    ws_events = cat(ws, "events")
    ws_rtt = [(e["replied_ns"] - e["sent_ns"]) / 1e9 for e in ws_events if e.get("replied_ns")]
    ws_used = all(b.used == "ws" for b in ws)
    ack_p50 = pct(ack_s, 50)
    n_rest, elapsed = sum(b.orders for b in rest), sum(b.elapsed for b in rest)
    filled = sum(1 for b in rest for s in b.statuses.values() if s == ExecStatus.FILLED)
    out = {"venue": venue, "symbol": plan.symbol, "qty": plan.qty, "blocks": len(rest),
           "orders": n_rest, "orders_per_s": round(n_rest / elapsed, 1) if elapsed else None, "filled": filled,
           "venue_rtt_ms_p50": pct(rtt, 50), "venue_rtt_ms_p99": pct(rtt, 99),
           "sim_share_p50": round(pct(rtt, 50) / ack_p50, 3) if rtt and ack_p50 else None,
           **_ack_hops(events, merged(rest, "sent_wall"), merged(rest, "first")),
           "reply_ms_p50": pct(cat(rest, "reply_s"), 50), "reply_ms_p99": pct(cat(rest, "reply_s"), 99),
           "round_trip_ack_ms_p50": ack_p50, "round_trip_ack_ms_p99": pct(ack_s, 99),
           "round_trip_fill_ms_p50": pct(cat(rest, "fill_s"), 50),
           "round_trip_fill_ms_p99": pct(cat(rest, "fill_s"), 99),
           "exec_to_consumer_ms_p50": pct(cat(rest, "deliver_s"), 50),
           "exec_to_consumer_ms_p99": pct(cat(rest, "deliver_s"), 99),
           # the figures of the issue: consumer submit -> its first exec report, per path, same run
           "round_trip_rest_ms_p50": ack_p50, "round_trip_rest_ms_p99": pct(ack_s, 99), "orders_rest": n_rest}
    if ws_used:
        ws_ack = cat(ws, "ack_s")
        out.update({"round_trip_ws_ms_p50": pct(ws_ack, 50), "round_trip_ws_ms_p99": pct(ws_ack, 99),
                    "orders_ws": sum(b.orders for b in ws),
                    "venue_rtt_ws_ms_p50": pct(ws_rtt, 50), "venue_rtt_ws_ms_p99": pct(ws_rtt, 99),
                    "ws_vs_rest_p50": round(pct(ws_ack, 50) / ack_p50, 3) if ack_p50 else None,
                    "ws_null_reason": None})
    else:
        out.update({"round_trip_ws_ms_p50": None, "round_trip_ws_ms_p99": None,
                    "orders_ws": sum(b.orders for b in ws), "venue_rtt_ws_ms_p50": None,
                    "venue_rtt_ws_ms_p99": None, "ws_vs_rest_p50": None,
                    "ws_null_reason": f"the {venue} trading adapter offers no WebSocket order entry: "
                                      f"execution placed the 'ws' blocks' orders over REST "
                                      f"(ready file: order_entry={','.join(b.used for b in ws)})"})
    out["reports_lost"] = sum(lost_reports(b) for b in rest + ws)
    out["reports_duplicated"] = sum(len(b.seqs) - len(set(b.seqs)) for b in rest + ws)
    return out


def _ack_hops(events: list[dict], sent_wall: dict[str, int], first: dict[bytes, tuple[int, int]]) -> dict:
    """The first report's path, per order, by the stamps on its way (ms, p50 / p99):
    submit -> execution took it -> persisted and queued -> sent -> venue replied ->
    execution stamped the report -> we read it."""
    hops: dict[str, list] = {k: [] for k in ("order_channel", "exec_persist", "venue_queue", "venue_rtt",
                                             "exec_apply", "exec_to_consumer")}
    for e in events:
        coid = e["client_order_id"]
        got = first.get(coid.encode())
        if coid not in sent_wall or got is None or not e.get("replied_ns"):
            continue
        stamped, read = got
        marks = (sent_wall[coid], e["created_ns"], e["placed_ns"], e["sent_ns"], e["replied_ns"], stamped, read)
        for k, a, b in zip(hops, marks, marks[1:]):
            hops[k].append((b - a) / 1e9)
    out = {}
    for k, xs in hops.items():
        out[f"ack_hop_{k}_ms_p50"], out[f"ack_hop_{k}_ms_p99"] = pct(xs, 50), pct(xs, 99)
    return out
