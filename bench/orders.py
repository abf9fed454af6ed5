"""Order round trip and exec-channel throughput: `python -m bench orders [--venue V] [--json]`.

Round trip: consumer (OrderClient) -> execution (a process) -> simulator (the venue's order
API) -> exec report on the `exec` ring -> consumer, at `--rate` orders/s for `--seconds` per
order-entry path, on any tradable venue (`--venue`, default binance-spot; the simulator is
started with that venue alone). Both paths are measured in the same run: `--blocks` blocks
per path alternate (rest, ws, rest, ws, ...), each its own `python -m execution
--order-entry PATH` in a fresh run directory (a fresh journal). Orders are market orders of
the venue's BTC instrument (BTC-USDT where listed; 0.001 BTC or its lot), buy and sell
alternating, so each one yields ACK then FILLED with no price to know. On Binance spot a
reader process consumes the simulator's market data beside them.

Figures: the control reply, the first report (ACK) and the terminal report (FILLED),
p50/p99 in ms. The historical keys (`round_trip_ack_ms_*`, `reply_ms_*`, hops, ...) are the
REST blocks'; `round_trip_rest_ms_*` / `round_trip_ws_ms_*` are the issue's figure (submit
-> first exec report) per path, and `ws_vs_rest_p50` their ratio. A venue whose adapter
offers no WebSocket order entry (execution's ready file says which path it used) gets null
WS figures and `ws_null_reason`. Target: ack p99 < 5 ms at 100 orders/s. Reports are read
between two orders even when the sender is behind its schedule (a consumer that stops
reading would time its own backlog).

Counted, not assumed: `reports_lost` = the journal's exec reports the consumer never read, plus
orders that never reached a terminal report; `reports_duplicated` = seqs read twice;
`duplicates_at_venue` = client order ids the simulator accepted more than once (GET
/_sim/orders `accepted`; `venue_received_twice` from `received`), over every block.

The simulator's share, beside it: `venue_rtt_ms_*` is execution's own view of each
placement (its `exec.order.sent` telemetry: the request handed to the connection ->
the reply read; `venue_rtt_ws_ms_*` over the WebSocket), `sim_handler_ms_*` the
simulator's time inside its REST order endpoint (GET /_sim/orders `handler_us`), and
`sim_share_p50` = venue_rtt p50 / ack p50.

Exec channel: reports appended to the journal (fdatasync per batch: `power` durability,
the slower one) and published on the ring, read by a consumer process through the SDK;
baseline: the same records through a bare lossless ring (no journal) in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parent.parent
# Market-data load beside the orders: the venue's streams read by a process (Binance spot's
# combined streams of the simulator); other venues: the simulator's market runs, unread.
MD_LOAD = {"binance-spot": ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]}


def log(msg: str) -> None:
    print(f"bench orders: {msg}", file=sys.stderr, flush=True)


def pct(xs, q) -> float:
    return round(float(np.percentile(np.array(xs) * 1e3, q)), 3) if xs else float("nan")


def md_reader(ws_url: str, count_file: str, symbols: list[str]) -> None:
    """Market-data load: read and parse every frame of the simulator's streams."""
    import websocket
    streams = "/".join(f"{s.lower()}@{k}" for s in symbols for k in ("depth@100ms", "trade", "bookTicker"))
    ws = websocket.create_connection(f"{ws_url}/stream?streams={streams}", timeout=10)
    n, last = 0, time.monotonic()
    while True:
        orjson.loads(ws.recv())
        n += 1
        if time.monotonic() - last > 0.2:
            last = time.monotonic()
            Path(count_file).write_text(str(n))


def exec_reader(n: int, out_file: str) -> None:
    """Read exec reports 1..n through the SDK (monitor all); write the elapsed seconds."""
    from consumer.orders import OrderClient

    class Watcher:
        name, trading_enabled = "bench-watcher", False

    oc = OrderClient(Watcher(), monitor_all=True, resume_from=0)
    expect, t0 = 1, None
    while expect <= n:
        recs = oc.poll_reports(max_n=4096, timeout_s=1.0)
        if len(recs):
            t0 = t0 or time.perf_counter()
            seqs = recs["exec"]["exec_seq"]
            if int(seqs[0]) != expect or not (np.diff(seqs.astype(np.int64)) == 1).all():
                raise SystemExit(f"exec reports out of order at {expect}: {seqs[:5]}")
            expect = int(seqs[-1]) + 1
    Path(out_file).write_text(str(time.perf_counter() - t0))


def _spawn(code: str, env: dict, logf) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, stdout=logf, stderr=logf,
                            start_new_session=True)


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


def round_trip(args, base: Path, sim, env: dict, logf) -> dict:
    """Alternate `args.blocks` REST and WebSocket blocks (rest, ws, rest, ws, ...)."""
    plan = order_plan(args.venue, sim.endpoints[args.venue]["rest"])
    md = None
    count_file = str(base / "md.count")
    if args.venue in MD_LOAD:
        md = _spawn(f"from bench.orders import md_reader; md_reader({sim.endpoints[args.venue]['ws']!r}, "
                    f"{count_file!r}, {MD_LOAD[args.venue]!r})", env, logf)
    blocks: dict[str, list[Block]] = {"rest": [], "ws": []}
    try:
        md0, t0 = _md_count(count_file), time.perf_counter()
        for k in range(args.blocks):
            for path in ("rest", "ws"):
                log(f"{args.venue}: block {k + 1}/{args.blocks}, {path}")
                blocks[path].append(run_block(args, plan, path, f"{path[0]}{k}", base, sim, env, logf))
        md_rate = round((_md_count(count_file) - md0) / (time.perf_counter() - t0), 1) if md else None
    finally:
        _kill(md)
    out = summarize(args.venue, plan, blocks["rest"], blocks["ws"])
    out["md_frames_per_s"] = md_rate
    out.update(sim.venue_counts(args.venue, sum(b.orders for bs in blocks.values() for b in bs)))
    return out


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


class SimProcess:
    """The simulator in its own process (as in production: not sharing our GIL)."""

    def __init__(self, endpoints_file: Path, rate: float, env: dict, logf, venue: str = "binance-spot"):
        self.venue = venue
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator", "--venues", venue, "--instruments",
                                      "4", "--rate", str(rate), "--endpoints-file", str(endpoints_file)],
                                     env=env, cwd=REPO, stdout=logf, stderr=logf, start_new_session=True)
        deadline = time.monotonic() + 30
        while not endpoints_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the simulator did not start")
            time.sleep(0.02)
        line = orjson.loads(endpoints_file.read_bytes())
        self.endpoints = line.get("endpoints", line)

    def sim_orders(self) -> dict | None:
        """GET /_sim/orders of the venue (None where the simulator has no such route for it)."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.endpoints[self.venue]["rest"] + "/_sim/orders", timeout=30) as r:
                return orjson.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def venue_counts(self, venue: str, sent: int) -> dict:
        """Orders the venue received / accepted more than once per client order id (all ours)."""
        d = self.sim_orders()
        if not isinstance(d, dict) or not isinstance(d.get("accepted"), dict):
            return {"duplicates_at_venue": None, "venue_received_twice": None, "venue_orders_accepted": None,
                    "duplicates_null_reason": f"the simulator serves no /_sim/orders counts for {venue}"}
        acc, rec = d["accepted"], d.get("received") or {}
        return {"duplicates_at_venue": sum(n - 1 for n in acc.values() if n > 1),
                "venue_received_twice": sum(n - 1 for n in rec.values() if n > 1),
                "venue_orders_accepted": sum(acc.values()), "orders_sent": sent}

    def handler_figures(self) -> dict:
        """The simulator's own time in its order endpoint (GET /_sim/orders)."""
        h = (self.sim_orders() or {}).get("handler_us") or {}
        return {"sim_handler_ms_p50": round(h["p50"] / 1000, 3) if h.get("p50") is not None else None,
                "sim_handler_ms_p99": round(h["p99"] / 1000, 3) if h.get("p99") is not None else None}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            _kill(self.proc)


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


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _md_count(path: str) -> int:
    try:
        return int(Path(path).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def exec_channel(args, base: Path, env_base: dict, logf) -> dict:
    from events import EVENT, Kind
    from execution.publisher import ExecPublisher
    from core.run import RunContext
    from shm import RingReader, RingWriter

    n, batch = args.reports, 64
    recs = np.zeros(n, EVENT)
    recs["kind"] = Kind.EXEC_REPORT
    recs["exec"]["exec_seq"] = np.arange(1, n + 1)
    out = {}
    # the exec channel: journal (fdatasync per batch) + ring, read by a process through the SDK
    ctx = RunContext(f"benchx{uuid.uuid4().hex[:8]}", base / "x")
    env = {**env_base, **ctx.env()}
    pub = ExecPublisher(ctx, capacity=4096, sync=True)
    done_file = str(ctx.path("reader.done"))
    reader = _spawn(f"from bench.orders import exec_reader; exec_reader({n}, {done_file!r})", env, logf)
    try:
        while not any(s["state"] == "active" for s in pub.ring.reader_slots()):
            time.sleep(0.01)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            pub.append(recs[i:i + batch])
            pub.pump()
        while pub.backlog:
            pub.pump()
            time.sleep(0.0005)
        reader.wait(60)
        wall = time.perf_counter() - t0
        if reader.returncode != 0:
            raise SystemExit("exec reader failed (see log)")
        out["exec_channel_reports_per_s"] = round(n / wall)
    finally:
        _kill(reader)
        pub.close()
        ctx.namespace.cleanup()
    # baseline: a bare lossless ring, same records and batches, reader in this process
    ctx = RunContext(f"benchr{uuid.uuid4().hex[:8]}", base / "r")
    w = RingWriter.create(ctx.namespace, "raw", EVENT, 4096, policy="lossless")
    r = RingReader.attach(ctx.namespace, "raw", EVENT, start="oldest")
    try:
        t0 = time.perf_counter()
        got = i = 0
        while got < n:
            if i < n:
                i += w.write_batch(recs[i:i + batch])
            b = r.try_read(4096)
            got += len(b)
            r.release()
        out["ring_only_reports_per_s"] = round(n / (time.perf_counter() - t0))
    finally:
        r.close()
        w.close()
        ctx.namespace.cleanup()
    out["exec_channel_vs_ring_ratio"] = round(out["exec_channel_reports_per_s"] / out["ring_only_reports_per_s"], 3)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench orders", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    import venues
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--venue", default="binance-spot", choices=venues.tradable(),
                   help="the venue to trade on (default binance-spot); the simulator serves it")
    p.add_argument("--blocks", type=int, default=2,
                   help="alternating blocks per order-entry path: rest, ws, rest, ws, ... (default 2), "
                   "each its own execution run; the orders are shared out among them")
    p.add_argument("--rate", type=float, default=100.0, help="orders per second (default 100)")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="duration of the order stream of each path (default 5)")
    p.add_argument("--md-rate", type=float, default=50.0, help="simulator market steps per second (default 50)")
    p.add_argument("--reports", type=int, default=100_000, help="reports for the exec-channel run")
    p.add_argument("--durability", choices=["power", "process"], default="power",
                   help="execution's durability (default power, execution's default; process: no fsync)")
    p.add_argument("--keep", action="store_true", help="keep the bench's files (logs) and say where")
    args = p.parse_args(argv)
    if args.blocks < 1:
        p.error("--blocks must be at least 1")
    from core.run import RunContext

    base = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    ctx = RunContext(f"bencho{uuid.uuid4().hex[:8]}", base / "run").claim()  # umask 077: the runs' dirs are ours alone
    env = {**os.environ, **ctx.env(), "PYTHONPATH": str(REPO)}
    for k in ("MELTICA_RUN", "MELTICA_RUN_DIR"):   # each block names its own run
        env.pop(k, None)
    logf = open(base / "bench.log", "ab")
    sim = SimProcess(base / "endpoints.json", args.md_rate, env, logf, args.venue)
    try:
        log(f"round trip on {args.venue}: {args.rate}/s for {args.seconds}s per path in {args.blocks} blocks "
            f"each, market data at {args.md_rate} steps/s")
        result = {"loadavg_before": _loadavg()}
        result.update(round_trip(args, base, sim, env, logf))
        result.update(sim.handler_figures())
        log(f"exec channel: {args.reports} reports")
        result.update(exec_channel(args, base, env, logf))
    finally:
        sim.stop()
        ctx.namespace.cleanup()
        logf.close()
        if args.keep:
            log(f"files kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    result["loadavg_after"] = _loadavg()
    result["target_ack_p99_ms"] = 5.0
    result["target_met"] = result["round_trip_ack_ms_p99"] < 5.0
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        for k, v in result.items():
            print(f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
