"""The bridge between hosts (NATS): market-data throughput and added latency, exec reports.

    python -m bench bridge [--json] [--seconds S] [--rate R] [--reports N]

Two runs ("hosts") on this machine joined by a nats-server from the wheel, every part
a real process (`python -m bridge ...`):

- md throughput: a source process writes `md.bench` (overwrite ring) as fast as it can;
  md-out -> core NATS -> md-in -> `md.bench` on the other host, read here.
  `md_bridge_records_per_s` is what arrived per second (md-in's `lost` beside it: the
  source laps a slower bridge, exactly counted); `md_ring_only_records_per_s` is one
  reader on the source ring, same source, same seconds. Beside them, where the pass
  spent the machine (`cpu_figures`): each process's CPU %, its CPU microseconds per
  bridged record, and `md_chain_cores_at_1m_per_s`, the cores the whole chain would
  need for 1M records/s (more than the machine has: the target cannot be met here).
- added latency at `--rate` records/s: each record carries its write time
  (CLOCK_MONOTONIC, shared by the processes of one machine); p50/p99 of
  (read time - write time) on the far ring vs on the source ring: the bridged hop
  minus one local ring hop.
- exec reports: a stand-in execution appends `--reports` reports at 1000/s through the
  real journal + ring writer; exec-out -> JetStream -> exec-in -> the consumer host's
  journal and ring, read with the consumer SDK. `exec_report_hop` is journal append to
  the SDK's hands on the other host, of the reports appended once the first one was
  read (the source starts with the bridges: those before are their start-up's backlog). Then a chaos pass: the bridges (exec-out and
  exec-in) SIGKILLed at 1/4, the stand-in execution at 1/2, all three at 3/4, each
  restarted; `exec_reports_lost` / `exec_reports_duplicated` counted at the consumer.
- exec report round trip from a remote consumer (`--orders` orders, one at a time): the
  real execution against the venue simulator on one host; on the other the SDK, whose
  order goes ctl-expose -> NATS request/reply -> ctl-serve -> execution, and whose first
  exec report comes back exec-out -> JetStream -> exec-in (`--consumer`: its own
  subject) -> its host's journal and ring. `exec_round_trip_remote` is submit to that
  first report in the SDK's hands; `exec_round_trip_local` the same loop by a consumer
  on the execution host, same run, beside it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

from bench._pipeline import CpuWindow
from bench.common import emit, log, percentiles_us
from events import EVENT, ExecStatus, Kind, stamp_header

REPO = Path(__file__).resolve().parent.parent
RING = "md.bench"
RTT_STREAM = ["--stream", "RTT", "--subject", "rtt.reports"]


# -- helper processes (python -m bench.bridge --role ...) ------------------------------------

def _source(rate: float) -> None:
    """Write md.bench: prebuilt batches as fast as possible (rate 0) or at `rate`, stamped."""
    from core.run import RunContext
    from shm import RingWriter
    w = RingWriter.create(RunContext.from_env().namespace, RING, EVENT, 1 << 16, policy="overwrite")
    batch = np.zeros(256, EVENT)
    for i in range(len(batch)):
        stamp_header(batch[i], Kind.BOOK, 1, 1 + i % 3)
    i, t0 = 0, time.monotonic()
    while True:
        if rate:
            due = int((time.monotonic() - t0) * rate) - i
            if due <= 0:
                time.sleep(0.0002)
                continue
            k = min(due, 16)
        else:
            k = len(batch)
        b = batch[:k]
        b["ingest_ts_ns"] = time.monotonic_ns()
        b["event_id"] = np.arange(i, i + k)
        w.write_batch(b)
        i += k
        if i % 4096 < k:
            w.heartbeat()


def _exec_source(n: int, rate: float) -> None:
    from execution.publisher import ExecPublisher
    from core.run import RunContext
    pub = ExecPublisher(RunContext.from_env(), sync=False)
    t0, done0 = time.monotonic(), pub.last_seq  # a restarted source goes on after its journal's last
    while True:
        due = min(n, done0 + int((time.monotonic() - t0) * rate) + 1)
        if due > pub.last_seq:
            k = min(64, due - pub.last_seq)
            recs = np.zeros(k, EVENT)
            now = time.monotonic_ns()
            for j in range(k):
                stamp_header(recs[j], Kind.EXEC_REPORT, 1, 1, ingest_ts_ns=now, consumer_id=1)
                recs[j]["exec"]["exec_seq"] = pub.last_seq + 1 + j
                recs[j]["exec"]["status"] = ExecStatus.ACK
            pub.append(recs)
        pub.pump()
        pub.heartbeat()
        time.sleep(0.001)


# -- the bench ----------------------------------------------------------------------------

class Rig:
    def __init__(self, base: Path, nats_url: str, nats_pid: int | None = None):
        from core.run import RunContext
        self.base, self.url, self.nats_pid = base, nats_url, nats_pid
        self.src = RunContext(f"bbs{uuid.uuid4().hex[:8]}", base / "src")
        self.dst = RunContext(f"bbd{uuid.uuid4().hex[:8]}", base / "dst")
        for c in (self.src, self.dst):
            c.ensure_dir()
        self.procs: list[subprocess.Popen] = []

    def spawn(self, ctx, *args: str) -> subprocess.Popen:
        env = {**os.environ, **ctx.env(), "PYTHONPATH": str(REPO)}
        log_file = open(self.base / f"{args[1] if args[0] == '-m' else args[0]}-{len(self.procs)}.log", "ab")
        p = subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, stdout=log_file, stderr=log_file,
                             start_new_session=True)
        log_file.close()
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, sig=signal.SIGTERM) -> None:
        if p.poll() is None:
            os.killpg(p.pid, sig)
        p.wait(20)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self.src.namespace.cleanup()
        self.dst.namespace.cleanup()


def _attach(ns, timeout_s: float = 30.0):
    from shm import RingReader
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return RingReader.attach(ns, RING, EVENT, start="latest", batch_capacity=4096)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _drain(reader, seconds: float, lat: list | None = None) -> int:
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        b = reader.try_read(4096)
        k = len(b)
        if k:
            if lat is not None:
                lat.append(time.monotonic_ns() - b["ingest_ts_ns"])
            reader.release()
            n += k
        else:
            time.sleep(0.0001)
    return n


def md_pass(rig: Rig, rate: float, seconds: float) -> dict:
    """(bridged records, ring-only records, bridged latencies, local latencies, md-in stats)."""
    src = rig.spawn(rig.src, "-m", "bench.bridge", "--role", "source", "--rate", str(rate))
    out = rig.spawn(rig.src, "-m", "bridge", "md-out", "--nats", rig.url, "--ring", RING)
    inn = rig.spawn(rig.dst, "-m", "bridge", "md-in", "--nats", rig.url, "--ring", RING, "--capacity", str(1 << 16))
    far, near = _attach(rig.dst.namespace), _attach(rig.src.namespace)
    _drain(near, 0.2), _drain(far, 1.0)  # warm up; far last: what waits in it meanwhile is no hop's latency
    lat_far, lat_near = ([], []) if rate else (None, None)
    cpu = CpuWindow({"source": src.pid, "md-out": out.pid, "nats-server": rig.nats_pid, "md-in": inn.pid,
                     "reader": os.getpid()})
    cpu.start()
    t, w0 = time.monotonic(), near.writer_position()
    far_n = _drain(far, seconds, lat_far)
    far_s = time.monotonic() - t
    cpu_pct, written = cpu.stop(), near.writer_position() - w0
    far.close()
    rig.stop(out)
    rig.stop(inn)  # the ring-only figure: the same source, no bridge running
    stats = _last_json(rig.base, "bridge", inn)
    _drain(near, 0.2)
    t = time.monotonic()
    near_n = _drain(near, min(seconds, 2.0), lat_near)
    near_s = time.monotonic() - t
    near.close()
    rig.stop(src)
    return {"far_per_s": far_n / far_s, "near_per_s": near_n / near_s, "stats": stats, "cpu_pct": cpu_pct,
            "written_per_s": written / far_s,
            "lat_far": np.concatenate(lat_far) if lat_far else None,
            "lat_near": np.concatenate(lat_near) if lat_near else None}


def _last_json(base: Path, name: str, p: subprocess.Popen) -> dict:
    for f in sorted(base.glob(f"{name}-*.log"), key=lambda f: f.stat().st_mtime, reverse=True):
        for line in reversed(f.read_bytes().splitlines()):
            if line.startswith(b'{"bad"'):
                return orjson.loads(line)
    return {}


def exec_pass(rig: Rig, n: int, chaos: bool) -> dict:
    """Each pass its own stream: a stream holding another journal's reports is refused."""
    from types import SimpleNamespace

    from consumer.orders import OrderClient

    def start(what: str) -> subprocess.Popen:
        if what == "execution":
            return rig.spawn(rig.src, "-m", "bench.bridge", "--role", "exec-source", "--reports", str(n))
        stream = ["--stream", "CHAOS", "--subject", "chaos.reports"] if chaos else []
        if what == "exec-out":
            return rig.spawn(rig.src, "-m", "bridge", "exec-out", "--nats", rig.url, *stream)
        return rig.spawn(rig.dst, "-m", "bridge", "exec-in", "--nats", rig.url, *stream)

    procs = {w: start(w) for w in ("execution", "exec-out", "exec-in")}
    client = OrderClient(SimpleNamespace(name="bench"), run=rig.dst, monitor_all=True, resume_from=0)
    seqs, lat = [], []
    kills = ([(n // 4, ("exec-out", "exec-in")), (n // 2, ("execution",)),
              (3 * n // 4, ("execution", "exec-out", "exec-in"))] if chaos else [])
    killed, steady = 0, 0
    deadline = time.monotonic() + 180
    try:
        while (not seqs or seqs[-1][-1] < n) and time.monotonic() < deadline:
            got = client.poll_reports(max_n=512, timeout_s=0.05)
            if len(got):
                now = time.monotonic_ns()
                steady = steady or now  # reports appended before the first came are the start-up's backlog
                fresh = got["ingest_ts_ns"] > steady
                lat.append(now - got["ingest_ts_ns"][fresh])
                seqs.append(got["exec"]["exec_seq"].astype(np.int64))
                while kills and seqs[-1][-1] >= kills[0][0]:
                    _, victims = kills.pop(0)
                    for w in victims:
                        rig.stop(procs[w], signal.SIGKILL)
                        killed += 1
                    for w in victims:
                        procs[w] = start(w)
    finally:
        client.close()
        for p in procs.values():
            rig.stop(p)
    got = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
    uniq = np.unique(got)
    return {"lost": int(n - len(uniq[(uniq >= 1) & (uniq <= n)])), "duplicated": int(len(got) - len(uniq)),
            "killed": killed, "lat": np.concatenate(lat) if lat else np.zeros(0)}


def _round_trips(ctx, name: str, k: int, tag: str = "m") -> np.ndarray:
    """Submit `k` orders one at a time; seconds from submit to the order's first exec report."""
    from types import SimpleNamespace

    from consumer.orders import OrderClient
    oc = OrderClient(SimpleNamespace(name=name, trading_enabled=True), run=ctx, timeout_s=10)
    out = []
    try:
        oc.hello()
        for i in range(k):
            coid = f"{name}-{tag}{i}".encode()
            buy = i % 2 == 0
            t0 = time.perf_counter()
            r = oc.submit_limit(coid.decode(), "BTC-USDT", "buy" if buy else "sell", "0.001",
                                "70000" if buy else "60000", tif="IOC")
            if r["status"] != "accepted":
                raise SystemExit(f"order {coid} of {name} not accepted: {r}")
            while True:
                recs = oc.poll_reports(timeout_s=5.0)
                if (recs["exec"]["client_order_id"] == coid).any():
                    out.append(time.perf_counter() - t0)
                    break
                if not len(recs):
                    raise SystemExit(f"no exec report for {coid} of {name} within 5 s")
    finally:
        oc.close()
    return np.asarray(out)


def round_trip_pass(rig: Rig, k: int) -> dict:
    """Orders from a consumer on the other host, and from one beside execution, through the real execution."""
    from bench.orders import SimProcess
    from channels.names import execution_endpoint

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(rig.base / "simulator.log", "ab") as logf:
        sim = SimProcess(rig.base / "sim-endpoints.json", 20.0, env, logf)
    try:
        ep = sim.endpoints["binance-spot"]
        rig.spawn(rig.src, "-m", "execution", "--rest-url", ep["rest"], "--ws-url", ep["ws"], "--telemetry", "")
        ready = rig.src.run_dir / "exec" / "ready"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline:
                raise SystemExit("execution did not start")
            time.sleep(0.02)
        rig.spawn(rig.src, "-m", "bridge", "ctl-serve", "--nats", rig.url)
        rig.spawn(rig.src, "-m", "bridge", "exec-out", "--nats", rig.url, *RTT_STREAM)
        rig.spawn(rig.dst, "-m", "bridge", "ctl-expose", "--consumer", "remote", "--nats", rig.url)
        rig.spawn(rig.dst, "-m", "bridge", "exec-in", "--consumer", "remote", "--nats", rig.url,
                  *RTT_STREAM)
        ipc = execution_endpoint(rig.dst.run_dir)[len("ipc://"):]
        while not os.path.exists(ipc):
            if time.monotonic() > deadline:
                raise SystemExit("ctl-expose did not bind")
            time.sleep(0.02)
        serving = rig.base / "bridge-1.log"  # ctl-serve's: its first line says it subscribed
        while b"serving" not in (serving.read_bytes() if serving.exists() else b""):
            if time.monotonic() > deadline:
                raise SystemExit("ctl-serve did not subscribe")
            time.sleep(0.02)
        _round_trips(rig.dst, "remote", 5, "w")  # warm-up: connections, the JetStream consumer
        remote = _round_trips(rig.dst, "remote", k)
        local = _round_trips(rig.src, "local", k)
        return {"remote": remote, "local": local}
    finally:
        sim.stop()


def cpu_figures(thr: dict) -> dict:
    """Where the throughput pass spent the machine: CPU % of each process, and CPU
    microseconds per bridged record of the bridge's own parts (md-out, nats-server,
    md-in: what the records cost wherever they run) and of the whole chain on this one
    machine (with the source writing and a reader reading; the source's share is per
    record it wrote). `md_chain_cores_at_1m_per_s` is that chain's cost of 1M records/s
    in cores: above the machine's CPU count the target cannot be met here."""
    pct, per_s = thr["cpu_pct"], thr["far_per_s"] or 1.0
    us = {k: round(pct[k] / 100 / per_s * 1e6, 3) for k in ("md-out", "nats-server", "md-in", "reader") if k in pct}
    if "source" in pct:
        us["source"] = round(pct["source"] / 100 / (thr["written_per_s"] or 1.0) * 1e6, 3)
    return {"md_cpu_pct": pct, "md_cpu_us_per_record": us,
            "md_bridge_cpu_us_per_record": round(sum(us.get(k, 0) for k in ("md-out", "nats-server", "md-in")), 3),
            "md_chain_cores_at_1m_per_s": round(sum(us.values()), 2)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement (default 5)")
    ap.add_argument("--rate", type=float, default=10_000.0, help="records/s of the latency pass (default 10k)")
    ap.add_argument("--reports", type=int, default=3000, help="exec reports per pass (default 3000)")
    ap.add_argument("--orders", type=int, default=200, help="orders of the round-trip pass (default 200)")
    ap.add_argument("--role", choices=["source", "exec-source"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "source":
        _source(args.rate)
        return 0
    if args.role == "exec-source":
        _exec_source(args.reports, 1000.0)
        return 0

    from bridge.servers import NatsNode
    base = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    load0 = os.getloadavg()
    with NatsNode.start(base / "nats") as node:
        rig = Rig(base, node.url, node.proc.pid)
        try:
            log("md throughput (source at full speed)")
            thr = md_pass(rig, 0.0, args.seconds)
            log(f"md latency at {args.rate:.0f} records/s")
            lat = md_pass(rig, args.rate, args.seconds)
            log(f"exec reports: {args.reports} at 1000/s, then a chaos pass")
            ex = exec_pass(rig, args.reports, chaos=False)
            rig.close()
            rig = Rig(base / "chaos", node.url)
            chaos = exec_pass(rig, args.reports, chaos=True)
            rig.close()
            log(f"exec report round trip: {args.orders} orders from a remote consumer, then a local one")
            rig = Rig(base / "rtt", node.url)
            rtt = round_trip_pass(rig, args.orders)
        finally:
            rig.close()
    far, near = percentiles_us(lat["lat_far"], "bridged"), percentiles_us(lat["lat_near"], "ring_hop")
    added_p50 = far["bridged_p50_us"] - near["ring_hop_p50_us"]
    added_p99 = far["bridged_p99_us"] - near["ring_hop_p99_us"]
    result = {
        "md_bridge_records_per_s": round(thr["far_per_s"]),
        "md_ring_only_records_per_s": round(thr["near_per_s"]),
        "md_bridge_lost_at_full_speed": thr["stats"].get("rings", {}).get(RING, {}).get("lost"),
        "md_latency_rate_per_s": args.rate,
        **far, **near,
        "md_added_p50_us": round(added_p50, 2), "md_added_p99_us": round(added_p99, 2),
        "md_lost_at_rate": lat["stats"].get("rings", {}).get(RING, {}).get("lost"),
        **percentiles_us(ex["lat"], "exec_report_hop"),
        "exec_reports_lost": chaos["lost"], "exec_reports_duplicated": chaos["duplicated"],
        "exec_chaos_sigkills": chaos["killed"],
        "exec_reports_lost_without_chaos": ex["lost"],
        **percentiles_us(rtt["remote"] * 1e9, "exec_round_trip_remote"),
        **percentiles_us(rtt["local"] * 1e9, "exec_round_trip_local"),
        "target_md_1m_per_s_met": thr["far_per_s"] >= 1e6,
        "target_added_p99_under_2ms_met": added_p99 < 2000,
        "loadavg_1m_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    result.update(cpu_figures(thr))
    emit(result, args.json, "bridge (NATS between two runs on this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
