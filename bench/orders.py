"""Order round trip and exec-channel throughput: `python -m bench orders [--json]`.

Round trip: consumer (OrderClient) -> execution (a process) -> simulator (Binance spot
order API) -> exec report on the `exec` ring -> consumer, at `--rate` orders/s for
`--seconds`, with the simulator's market data running and a reader process consuming
it. Orders are marketable IOC limits (buy and sell alternating), so each one yields
ACK then FILLED. Figures: the control reply, the first report (ACK) and the terminal
report (FILLED), p50/p99 in ms. Target: ack p99 < 5 ms at 100 orders/s. Reports are
read between two orders even when the sender is behind its schedule (a consumer that
stops reading would time its own backlog).

The simulator's share, beside it: `venue_rtt_ms_*` is execution's own view of each
placement (its `exec.order.sent` telemetry: the request handed to the connection ->
the reply read), `sim_handler_ms_*` the simulator's time inside its order endpoint
(GET /_sim/orders `handler_us`), and `sim_share_p50` = venue_rtt p50 / ack p50.

Exec channel: reports appended to the journal (fdatasync per batch: `power` durability,
the slower one) and published on the ring, read by a consumer process through the SDK;
baseline: the same records through a bare lossless ring (no journal) in the same run.
The benchmark checks its result: every order filled, reports 1..N in order.
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

REPO = Path(__file__).resolve().parent.parent


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


def round_trip(args, ctx, sim, env, logf) -> dict:
    from consumer.orders import OrderClient
    from events import ExecStatus
    from meltica.collector import Collector

    ep = sim.endpoints["binance-spot"]
    tel_endpoint = f"ipc://{ctx.run_dir}/bench-telemetry.sock"
    collector = Collector(tel_endpoint, keep_events=100_000).start()
    count_file = str(ctx.path("md.count"))
    md = _spawn(f"from bench.orders import md_reader; md_reader({ep['ws']!r}, {count_file!r}, "
                f"['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT'])", env, logf)
    ex = subprocess.Popen([sys.executable, "-m", "execution", "--rest-url", ep["rest"], "--ws-url", ep["ws"],
                           "--durability", args.durability, "--telemetry", tel_endpoint],
                          env=env, cwd=REPO, stdout=logf, stderr=logf, start_new_session=True)
    try:
        ready = ctx.run_dir / "exec" / "ready"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if ex.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("execution did not start")
            time.sleep(0.02)

        class Strategy:
            name, trading_enabled = "bench", True

        oc = OrderClient(Strategy(), run=ctx)
        oc.hello()
        n = int(args.rate * args.seconds)
        period = 1.0 / args.rate
        sent, reply_s, ack_s, fill_s, deliver_s = {}, [], [], [], []
        statuses: dict[bytes, int] = {}
        sent_wall: dict[str, int] = {}
        first: dict[bytes, tuple[int, int]] = {}  # the first report: execution's stamp, our read
        md0 = _md_count(count_file)
        t_start = time.perf_counter()

        def drain(wait: float) -> None:
            for rec in oc.poll_reports(timeout_s=wait):
                now = time.perf_counter()
                deliver_s.append((time.time_ns() - int(rec["ingest_ts_ns"])) / 1e9)
                coid = bytes(rec["exec"]["client_order_id"])
                st = int(rec["exec"]["status"])
                if coid not in statuses:
                    ack_s.append(now - sent[coid])
                    first[coid] = (int(rec["ingest_ts_ns"]), time.time_ns())
                if ExecStatus(st).terminal:
                    fill_s.append(now - sent[coid])
                statuses[coid] = st

        for i in range(n):
            t_due = t_start + i * period
            drain(0)
            while (left := t_due - time.perf_counter()) > 0:
                drain(min(left, 0.002))
            coid = f"b-{i}"
            buy = i % 2 == 0
            t0 = time.perf_counter()
            sent[coid.encode()] = t0
            sent_wall[coid] = time.time_ns()
            r = oc.submit_limit(coid, "BTC-USDT", "buy" if buy else "sell", "0.001", "70000" if buy else "60000",
                                tif="IOC")
            reply_s.append(time.perf_counter() - t0)
            if r["status"] != "accepted":
                raise SystemExit(f"order {coid} not accepted: {r}")
        elapsed = time.perf_counter() - t_start
        deadline = time.monotonic() + 10
        while len(fill_s) < n and time.monotonic() < deadline:
            drain(0.05)
        md_frames = _md_count(count_file) - md0
        oc.close()
        filled = sum(1 for s in statuses.values() if s == ExecStatus.FILLED)
        if len(fill_s) != n:
            raise SystemExit(f"only {len(fill_s)} of {n} orders reached a terminal report")
        time.sleep(1.2)  # execution's last telemetry events
        events = collector.recent_events(100_000, "exec.order.sent")
        rtt = [(e["replied_ns"] - e["sent_ns"]) / 1e9 for e in events if e.get("replied_ns")]
        ack_p50 = pct(ack_s, 50)
        return {"orders": n, "orders_per_s": round(n / elapsed, 1), "filled": filled,
                "venue_rtt_ms_p50": pct(rtt, 50), "venue_rtt_ms_p99": pct(rtt, 99),
                "sim_share_p50": round(pct(rtt, 50) / ack_p50, 3) if rtt and ack_p50 else None,
                **_ack_hops(events, sent_wall, first),
                "reply_ms_p50": pct(reply_s, 50), "reply_ms_p99": pct(reply_s, 99),
                "round_trip_ack_ms_p50": pct(ack_s, 50), "round_trip_ack_ms_p99": pct(ack_s, 99),
                "round_trip_fill_ms_p50": pct(fill_s, 50), "round_trip_fill_ms_p99": pct(fill_s, 99),
                "exec_to_consumer_ms_p50": pct(deliver_s, 50), "exec_to_consumer_ms_p99": pct(deliver_s, 99),
                "md_frames_per_s": round(md_frames / elapsed, 1)}
    finally:
        collector.close()
        if ex.poll() is None:
            ex.send_signal(signal.SIGTERM)
            try:
                ex.wait(10)
            except subprocess.TimeoutExpired:
                _kill(ex)
        _kill(md)


class SimProcess:
    """The simulator in its own process (as in production: not sharing our GIL)."""

    def __init__(self, endpoints_file: Path, rate: float, env: dict, logf):
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator", "--venues", "binance-spot", "--instruments",
                                      "4", "--rate", str(rate), "--endpoints-file", str(endpoints_file)],
                                     env=env, cwd=REPO, stdout=logf, stderr=logf, start_new_session=True)
        deadline = time.monotonic() + 30
        while not endpoints_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the simulator did not start")
            time.sleep(0.02)
        line = orjson.loads(endpoints_file.read_bytes())
        self.endpoints = line.get("endpoints", line)

    def handler_figures(self) -> dict:
        """The simulator's own time in its order endpoint (GET /_sim/orders)."""
        import urllib.request
        with urllib.request.urlopen(self.endpoints["binance-spot"]["rest"] + "/_sim/orders", timeout=30) as r:
            h = orjson.loads(r.read()).get("handler_us") or {}
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
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--rate", type=float, default=100.0, help="orders per second (default 100)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of the order stream (default 5)")
    p.add_argument("--md-rate", type=float, default=50.0, help="simulator market steps per second (default 50)")
    p.add_argument("--reports", type=int, default=100_000, help="reports for the exec-channel run")
    p.add_argument("--durability", choices=["power", "process"], default="power",
                   help="execution's durability (default power, execution's default; process: no fsync)")
    args = p.parse_args(argv)
    from core.run import RunContext

    base = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    ctx = RunContext(f"bencho{uuid.uuid4().hex[:8]}", base / "run").claim()  # umask 077: the runs' dirs are ours alone
    env = {**os.environ, **ctx.env(), "PYTHONPATH": str(REPO)}
    logf = open(base / "bench.log", "ab")
    sim = SimProcess(base / "endpoints.json", args.md_rate, env, logf)
    try:
        log(f"round trip: {args.rate}/s for {args.seconds}s, market data at {args.md_rate} steps/s")
        result = {"loadavg_before": _loadavg()}
        result.update(round_trip(args, ctx, sim, env, logf))
        result.update(sim.handler_figures())
        log(f"exec channel: {args.reports} reports")
        result.update(exec_channel(args, base, env, logf))
    finally:
        sim.stop()
        ctx.namespace.cleanup()
        logf.close()
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
