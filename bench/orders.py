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
from pathlib import Path

import numpy as np
import orjson

from ._order_paths import REPO, Block, _kill, log, order_plan, run_block, summarize
# Market-data load beside the orders: the venue's streams read by a process (Binance spot's
# combined streams of the simulator); other venues: the simulator's market runs, unread.
MD_LOAD = {"binance-spot": ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]}


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
