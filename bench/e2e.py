"""The whole pipeline, end to end: `python -m bench e2e [--json] [--quick] [--steps N:R,..]`.

    simulator -> ingest (one per venue) -> dispatch -> consumers (this process + strategies.demo)

Each step starts a fresh `meltica.pipeline.Pipeline` (the simulator with N instruments on
binance-spot and okx at R market steps/s per instrument -- about 2.2 WebSocket messages
per step per instrument per venue, sent as one burst per step; execution; dispatch; one
ingest per venue; the demo strategy on BTC-USDT only, placing its orders), stops the
operator's monitor (our own consumer measures), subscribes a benchmark consumer
(`consumer.Consumer`, this process's main thread, nothing else on it) to every kind of
every instrument of every venue, warms up, then measures for `--seconds`:

  offered_msgs_per_s     WebSocket messages the simulator sent to ingest (its /_sim/stats)
  sim_steps_per_s        market steps it made (vs R: below, it saturated; above, it was
                         catching up a backlog in bursts)
  delivered_eps          market-data events/s this consumer received
  md_ring_lost, ...      from telemetry over the window: md ring laps (dispatch behind
                         ingest), the simulator's disconnects of a slow reader, fan-out coalescing and
                         trade drops for this consumer (and the demo), late and de-dup
                         drops, dispatch's own saturation time, this outlet's throttled time
  ingest_*_us            p50/p99/p99.9 of now - header.ingest_ts_ns (ingest's receipt)
  venue_*_us             p50/p99/p99.9 of now - header.event_ts_ns (the venue's event
                         time: the simulator stamps whole ms from the same host clock,
                         truncated, so this reads 0-1 ms high, 0.5 ms on average)
  by_kind                ingest -> consumer p50/p99 per venue and kind
  order_*_ms             an order round trip while market data flows, from a helper
                         process (blocking `OrderClient.submit`, to time each round trip;
                         a market-data loop uses the `_nowait` calls instead, as
                         strategies.demo does): marketable IOC orders on binance-spot
                         at `--order-rate`/s; submit -> reply, -> first exec report (ACK),
                         -> terminal report; and the first report's path split by its
                         stamps: submit -> venue event time -> execution -> client
  cpu_pct                per process over the window (100 = one core); `others` is what
                         the rest of the machine used meanwhile (it is shared);
                         cpu_us_per_event the same per delivered event
  sustained              nothing lost or coalesced, >= 97% of the offered load delivered,
                         ingest p99 under 100 ms

Baseline in the same run: `ring_direct_*`, one shm hop with no pipeline (bench.dispatch's
writer process -> this process, 10k records/s): the floor of this machine; latency
figures are also given as ratios to it. Steps with `tap` run a helper that reads the
ingest rings directly (as dispatch does): joined per record by event_id, it splits
ingest -> consumer into ingest -> md ring and md ring -> consumer (dispatch and the
consumer ring); `hop_venue_to_ingest` is header.ingest_ts_ns - event_ts_ns.

Checks (a step that fails says why in `check`; the exit status is 1): per stream
(provider, instrument, kind) `seq_provider` strictly increases except across a
SNAPSHOT/RESYNCED record; no event_id arrives twice; after the ingests are stopped and
everything drained, this consumer received exactly what dispatch says it delivered to
it; every order reached a terminal report within 15 s (unless the step saturated: the
simulator's order API shares the loop that is then behind on market data).

Quick: 2 steps of 3 s (light, with the tap; ~13k messages/s, about this machine's limit),
under a minute. Full: 7 steps of 12 s from ~450 to ~21k offered messages/s and 2 tap steps,
under 10 minutes. `--wait-quiet S` waits up to S s before each step for
others' load to drop below `--quiet-below` %.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

from bench._pipeline import (REPO, VENUES, CpuWindow, PipelineRun, Receiver, code_state, counters, drain,
                             drops, loadavg, machine_busy_pct, quiet, sim_sent, symbols_for)
from bench.common import emit, log, percentiles_us
from channels.names import md_ring

# The harness (PipelineRun, Receiver, drain, /proc figures) is bench._pipeline, shared with bench.soak.

# -- orders while market data flows (a helper process) -------------------------------------

class _OrderSender:
    """What OrderClient needs of a consumer: a name and an open trading switch."""

    def __init__(self, name: str):
        self.name = name
        self.trading_enabled = True


def orders_main(run_id: str, seconds: float, rate: float, out: str, patience_s: float = 15.0) -> int:
    """Child: marketable IOC orders on binance-spot BTC-USDT at `rate`/s for `seconds`,
    buy and sell alternating; write the round-trip times (s) to `out` as JSON.

    A process of its own, timing each round trip with the blocking OrderClient.submit (which
    waits for execution's fsync'd reply; a market-data loop uses the `_nowait` calls).
    """
    from consumer.orders import OrderClient
    from events import ExecStatus
    from core.run import RunContext

    oc = OrderClient(_OrderSender(f"e2e-orders-{uuid.uuid4().hex[:6]}"), run=RunContext.from_env(run_id),
                     timeout_s=5.0)
    oc.hello()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sent: dict[bytes, float] = {}
    sent_wall: dict[bytes, int] = {}
    reply, ack, fill, acked, done = [], [], [], set(), set()
    hops: list[tuple[int, int, int]] = []  # first report: submit -> venue, venue -> execution, -> us
    rejected = 0

    def drain(wait: float) -> None:
        for rec in oc.poll_reports(256, timeout_s=wait):
            now, now_wall = time.perf_counter(), time.time_ns()
            coid = bytes(rec["exec"]["client_order_id"]).rstrip(b"\0")
            t0 = sent.get(coid)
            if t0 is None:
                continue
            if coid not in acked:
                acked.add(coid)
                ack.append(now - t0)
                ev, ing = int(rec["event_ts_ns"]), int(rec["ingest_ts_ns"])
                hops.append((ev - sent_wall[coid], ing - ev, now_wall - ing))
            if ExecStatus(int(rec["exec"]["status"])).terminal and coid not in done:
                done.add(coid)
                fill.append(now - t0)

    t_start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        due = t_start + i / rate
        while (left := due - time.perf_counter()) > 0:
            drain(min(left, 0.002))
        coid = f"e2e-{i}"
        sent_wall[coid.encode()] = time.time_ns()
        t0 = time.perf_counter()
        sent[coid.encode()] = t0
        r = oc.submit_limit(coid, "BTC-USDT", "buy" if i % 2 == 0 else "sell", "0.001",
                            "70000" if i % 2 == 0 else "60000", tif="IOC")
        reply.append(time.perf_counter() - t0)
        if r.get("status") != "accepted":
            rejected += 1
            del sent[coid.encode()]
    deadline = time.monotonic() + patience_s
    while len(done) < len(sent) and time.monotonic() < deadline:
        drain(0.05)
    oc.close()
    h = np.array(hops, np.float64).reshape(-1, 3) / 1e9
    Path(out).write_bytes(orjson.dumps({"sent": len(sent), "rejected": rejected, "terminal": len(done),
                                        "reply": reply, "ack": ack, "fill": fill,
                                        "hop_submit_to_venue": h[:, 0].tolist(),
                                        "hop_venue_to_execution": h[:, 1].tolist(),
                                        "hop_execution_to_client": h[:, 2].tolist()}))
    return 0


def order_figures(path: str) -> dict:
    try:
        z = orjson.loads(Path(path).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {"orders": 0, "orders_terminal": 0, "orders_error": "the order process wrote no result"}

    def ms(xs, q):
        return round(float(np.percentile(np.array(xs) * 1e3, q)), 2) if xs else None
    out = {"orders": z["sent"], "orders_rejected": z["rejected"], "orders_terminal": z["terminal"]}
    for name in ("reply", "ack", "fill"):
        out[f"order_{name}_p50_ms"] = ms(z[name], 50)
        out[f"order_{name}_p99_ms"] = ms(z[name], 99)
        out[f"order_{name}_max_ms"] = ms(z[name], 100)
    for name in ("hop_submit_to_venue", "hop_venue_to_execution", "hop_execution_to_client"):
        out[f"order_{name}_p50_ms"] = ms(z[name], 50)
        out[f"order_{name}_p99_ms"] = ms(z[name], 99)
    return out


# -- a tap on the ingest rings (a separate process: the hop breakdown) ------------------------

def tap_main(run_id: str, seconds: float, out: str, venues=VENUES) -> int:
    """Child: read every md.<venue> ring directly for `seconds`; save (event_id, t_ns).

    It parks as soon as a ring is empty (no spinning first): it is an instrument, and on a
    2-core machine the CPU it spins away is taken from the processes it measures."""
    from events import EVENT
    from shm import RingReader
    from shm.wait import SpinPark

    from core.run import RunContext

    ns = RunContext.from_env(run_id).namespace
    readers = [RingReader.attach(ns, md_ring(v), EVENT, start="latest") for v in venues]
    ids, ts, ing = [], [], []
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    end = time.monotonic() + seconds
    turn = 0
    park = SpinPark(spins=0)
    while time.monotonic() < end:
        got = 0
        for r in readers:
            b = r.try_read(4096)
            if len(b):
                now = time.time_ns()
                ids.append(b["event_id"].copy())
                ts.append(np.full(len(b), now, np.int64))
                ing.append(b["ingest_ts_ns"].copy())
                got += len(b)
            r.release()
        if not got:  # park on one ring (as dispatch does), bounded
            turn = (turn + 1) % len(readers)
            b = readers[turn].wait_read(4096, timeout_s=0.0002, strategy=park)
            if len(b):
                now = time.time_ns()
                ids.append(b["event_id"].copy())
                ts.append(np.full(len(b), now, np.int64))
                ing.append(b["ingest_ts_ns"].copy())
            readers[turn].release()
    lost = sum(r.lost for r in readers)
    for r in readers:
        r.close()
    cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)  # noqa: E731
    np.savez(out, ids=cat(ids, np.uint64), t=cat(ts, np.int64), ingest=cat(ing, np.int64),
             lost=np.array([lost]))
    return 0


def hop_split(tap_file: str, rec: dict) -> dict:
    """Per record (joined by event_id): ingest -> md ring reader, md ring -> this consumer."""
    z = np.load(tap_file)
    _, ia, ib = np.intersect1d(z["ids"], rec["ids"], assume_unique=False, return_indices=True)
    if not len(ia):
        return {"hop_joined": 0}
    ring = z["t"][ia] - z["ingest"][ia]
    rest = rec["t"][ib] - z["t"][ia]
    out = {"hop_joined": int(len(ia)), "tap_lost": int(z["lost"][0])}
    out.update(percentiles_us(ring, "hop_ingest_to_md_ring"))
    out.update(percentiles_us(rest, "hop_md_ring_to_consumer"))
    return out


# -- one step ----------------------------------------------------------------------------------

def _child(args: list[str], run: PipelineRun) -> subprocess.Popen:
    """Start a helper process of this benchmark (`python -m bench.e2e --tap|--orders ...`)."""
    return subprocess.Popen([sys.executable, "-m", "bench.e2e", *args], env={**os.environ, **run.ctx.env()},
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _wait_ready(helpers: list[subprocess.Popen], rx: "Receiver", timeout_s: float = 30.0) -> None:
    """Read market data while the helpers start (a consumer that stops reading measures its
    own backlog, not the pipeline), until each printed its "ready" line."""
    import select

    waiting = {h.stdout.fileno(): h for h in helpers}
    deadline = time.monotonic() + timeout_s
    while waiting:
        if time.monotonic() > deadline:
            raise SystemExit(f"helpers did not start: {[h.args[3] for h in waiting.values()]}")
        rx.poll(0.005)
        ready, _, _ = select.select(list(waiting), [], [], 0)
        for fd in ready:
            h = waiting.pop(fd)
            if h.stdout.readline().strip() != b"ready":
                raise SystemExit(f"helper {h.args[3]} failed to start")


def run_step(instruments: int, rate: float, seconds: float, *, order_rate: float = 20.0,
             tap: bool = False, warmup_s: float = 2.0, settle_s: float = 0.5, label: str = "") -> dict:
    """Start a pipeline, measure `seconds`, drain, check, stop; return the step's figures."""
    symbols = symbols_for(instruments)
    run = PipelineRun(symbols, rate, "e2e")
    res: dict = {"step": label or f"{instruments}x{rate:g}", "instruments": instruments,
                 "venues": len(VENUES), "rate": rate, "load_1m_before": loadavg()}
    rx = None
    helpers: list[subprocess.Popen] = []
    t_start = time.monotonic()
    failed = True
    try:
        run.start()
        rx = Receiver(run.ctx, symbols)
        # warm-up: every book of every venue arrived, then `warmup_s` more (the ordering
        # stage probes each new stream and may hold it once, up to its lateness)
        n_books = instruments * len(VENUES)
        deadline = time.monotonic() + 60
        while len(rx.seen_books) < n_books:
            rx.poll(0.05)
            if time.monotonic() > deadline:
                raise SystemExit(f"step {res['step']}: only {len(rx.seen_books)} of {n_books} books "
                                 f"after 60 s; programs {run.states()}")
        res["startup_s"] = round(time.monotonic() - t_start, 1)
        t_warm = time.monotonic() + warmup_s
        while time.monotonic() < t_warm:
            rx.poll(0.01)
        orders_file = str(run.tmp / "orders.json")
        if order_rate > 0:
            helpers.append(_child(["--orders", run.ctx.run_id, str(seconds + settle_s + 1), str(order_rate),
                                   orders_file], run))
        tap_file = str(run.tmp / "tap.npz")
        if tap:
            helpers.append(_child(["--tap", run.ctx.run_id, str(seconds + settle_s + 1), tap_file], run))
        t_h = time.monotonic()
        _wait_ready(helpers, rx)
        res["phase_helpers_s"] = round(time.monotonic() - t_h, 1)
        t_settle = time.monotonic() + settle_s
        while time.monotonic() < t_settle:
            rx.poll(0.01)
        cpu = CpuWindow({**run.pids(), **({"tap": helpers[-1].pid} if tap else {})})
        # the window runs from one reading of the simulator's counters to the next; each
        # reading is an HTTP request to a loop that may be busy for a second, so it runs
        # on a thread while this one keeps reading (a consumer that stops reading makes
        # its own backlog, which dispatch then coalesces)
        s0, ts0 = _while_reading(rx, lambda: sim_sent(run.sim_stats()))
        c0, md0 = counters(run.snapshots()), rx.md
        cpu.start()
        t0 = time.monotonic()
        rx.recording = True
        end = t0 + seconds
        while time.monotonic() < end:
            rx.poll(0.01)
        rec = rx.take()
        md1 = rx.md
        dt = time.monotonic() - t0
        res["cpu_pct"] = cpu.stop()
        c1 = counters(run.snapshots())
        s1, ts1 = _while_reading(rx, lambda: sim_sent(run.sim_stats()))
        res["seconds"] = round(dt, 2)
        res["offered_msgs_per_s"] = round((s1[0] - s0[0]) / (ts1 - ts0))
        res["sim_steps_per_s"] = round((s1[1] - s0[1]) / (ts1 - ts0), 1)
        res["sim_slow_disconnects"] = s1[2]
        res["delivered_eps"] = round((md1 - md0) / dt)
        res["delivered_vs_offered"] = round(res["delivered_eps"] / max(1, res["offered_msgs_per_s"]), 3)
        res.update(drops(c0, c1))
        res.update(percentiles_us(rec["ingest"], "ingest"))
        res.update(percentiles_us(rec["venue"], "venue"))
        res.update(percentiles_us(rec["venue_to_ingest"], "hop_venue_to_ingest"))
        res["latency_samples"] = int(len(rec["ingest"]))
        res["by_kind"] = by_kind(rec)
        # the helpers finish (orders in flight reach their terminal report) while data flows
        t_fin = time.monotonic() + 20
        t_h = time.monotonic()
        while any(h.poll() is None for h in helpers) and time.monotonic() < t_fin:
            rx.poll(0.01)
        if order_rate > 0:
            res.update(order_figures(orders_file))
        if tap:
            res.update(hop_split(tap_file, rec))
        # drain: stop the ingests; then everything dispatch routed to us must arrive
        for v in VENUES:
            run.stop_program(f"ingest.{v}")
        res["phase_tail_s"] = round(time.monotonic() - t_h, 1)
        t_h = time.monotonic()
        delivered = drain(run, rx)
        res["phase_drain_s"] = round(time.monotonic() - t_h, 1)
        res["received_total"], res["dispatch_delivered"] = rx.total, delivered
        dup = len(rec["ids"]) - len(np.unique(rec["ids"]))
        res.update(out_of_order=rx.out_of_order, duplicates=int(dup), resets=rx.resets)
        res["load_1m_after"] = loadavg()
        problems = []
        if rx.out_of_order:
            problems.append(f"{rx.out_of_order} records out of per-stream order")
        if dup:
            problems.append(f"{dup} duplicated event ids")
        if delivered != rx.total:
            problems.append(f"received {rx.total} records, dispatch says it delivered {delivered}")
        # orders still open 15 s after the last one: judged in `derive`, a failure only if
        # the step was sustained (else the simulator's order API, on the loop that is
        # behind on market data, is what was slow)
        res["orders_late"] = order_rate > 0 and res.get("orders_terminal", 0) < max(1, res.get("orders", 0))
        res["check"] = "ok" if not problems else "; ".join(problems)
        failed = bool(problems)
        return res
    finally:
        if rx is not None:
            rx.close()
        for h in helpers:
            if h.poll() is None:
                os.killpg(h.pid, signal.SIGKILL)
            h.wait(5)
        t_h = time.monotonic()
        left = run.stop(failed)
        res["phase_stop_s"] = round(time.monotonic() - t_h, 1)
        if left:
            res["check"] = f"segments left behind: {left}"
        res["step_wall_s"] = round(time.monotonic() - t_start, 1)


def _while_reading(rx: "Receiver", fn):
    """Run `fn()` on a thread while this one keeps reading; return (result, time it returned)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(lambda: (fn(), time.monotonic()))
        while not fut.done():
            rx.poll(0.005)
        return fut.result()


def by_kind(rec: dict) -> dict:
    """ingest -> consumer p50 / p99 (us) per provider and kind."""
    from events import Kind, Provider

    out = {}
    for key in np.unique(rec["sk"]):
        m = rec["sk"] == key
        p50, p99 = np.percentile(rec["ingest"][m], [50, 99]) / 1e3
        name = f"{Provider(int(key >> 8)).slug}/{Kind(int(key & 255)).name.lower()}"
        out[name] = {"n": int(m.sum()), "p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1)}
    return out


# -- baseline ----------------------------------------------------------------------------------

def ring_direct(rate: float, seconds: float) -> dict:
    """One shm hop, no pipeline: bench.dispatch's writer process -> this process."""
    from bench.dispatch import latency
    r = latency(rate, seconds, direct=True)
    return {"ring_direct_rate": rate, "ring_direct_p50_us": round(r["p50_us"], 1),
            "ring_direct_p99_us": round(r["p99_us"], 1), "ring_direct_p999_us": round(r["p999_us"], 1)}


def parse_steps(text: str) -> list[tuple[int, float]]:
    out = []
    for part in text.split(","):
        n, _, r = part.partition(":")
        out.append((int(n), float(r)))
    return out


def sustained(step: dict) -> bool:
    """The step's offered load went through in a steady state: the simulator made the steps
    asked of it (not behind, not catching up in bursts), everything offered was delivered,
    nothing was lost or coalesced, and no backlog built up (ingest p99 under 100 ms)."""
    lossless = not any(step.get(k) for k in ("md_ring_lost", "coalesced",
                                              "trades_dropped", "sim_slow_disconnects"))
    return (step.get("check") == "ok" and lossless and step["sim_kept_up"]
            and step["delivered_vs_offered"] >= 0.97 and (step.get("ingest_p99_us") or 1e12) < 100_000)


def derive(step: dict, base: dict) -> None:
    """Ratios to the ring baseline; CPU microseconds per delivered event per process."""
    for q in ("p50", "p99", "p999"):
        b = base.get(f"ring_direct_{q}_us")
        v = step.get(f"ingest_{q}_us")
        if b and v:
            step[f"ingest_{q}_vs_ring_direct"] = round(v / b, 1)
    eps = step.get("delivered_eps") or 0
    if eps:
        step["cpu_us_per_event"] = {k: round(v / 100 * 1e6 / eps, 1) for k, v in step["cpu_pct"].items()
                                    if k not in ("machine_busy", "others")}
    step["sim_kept_up"] = abs(step["sim_steps_per_s"] / step["rate"] - 1) <= 0.05  # > 1: catching up
    step["sustained"] = sustained(step)
    if step.get("orders_late") and step["sustained"]:
        late = (f"only {step.get('orders_terminal')} of {step.get('orders')} orders reached a terminal "
                f"report within 15 s")
        step["check"] = late if step["check"] == "ok" else f"{step['check']}; {late}"


SUMMARY = ("offered_msgs_per_s", "delivered_eps", "sim_steps_per_s", "ingest_p50_us", "ingest_p99_us",
           "ingest_p999_us", "venue_p50_us", "venue_p99_us", "coalesced", "md_ring_lost",
           "order_ack_p50_ms", "order_ack_p99_ms", "sustained", "check")


def main(argv) -> int:
    if argv and argv[0] == "--tap":
        return tap_main(argv[1], float(argv[2]), argv[3], argv[4].split(",") if len(argv) > 4 else VENUES)
    if argv and argv[0] == "--orders":
        return orders_main(argv[1], float(argv[2]), float(argv[3]), argv[4])
    ap = argparse.ArgumentParser(prog="python -m bench e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="two short steps (under a minute)")
    ap.add_argument("--steps", help="INSTRUMENTS:RATE,... (rate: market steps/s per instrument)")
    ap.add_argument("--hop-steps", help="INSTRUMENTS:RATE,... measured again with the ring tap")
    ap.add_argument("--seconds", type=float, help="measured seconds per step")
    ap.add_argument("--warmup", type=float, help="seconds after every book arrived (2; quick 1.5)")
    ap.add_argument("--order-rate", type=float, default=20.0, help="orders/s during each step (0: none)")
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each step, wait up to this many seconds for others' load to drop")
    ap.add_argument("--quiet-below", type=float, default=40.0,
                    help="machine busy %% (100 = one core) that counts as quiet")
    a = ap.parse_args(argv)
    if a.quick:
        steps, hop_steps, seconds = [(10, 20), (10, 300)], [], a.seconds or 3.0
    else:
        steps = [(10, 10), (10, 50), (10, 100), (10, 175), (10, 250), (10, 350), (10, 500)]
        hop_steps, seconds = [(10, 40), (10, 175)], a.seconds or 12.0
    steps = parse_steps(a.steps) if a.steps else steps
    hop_steps = parse_steps(a.hop_steps) if a.hop_steps else hop_steps
    t_all = time.monotonic()
    res: dict = {"bench": "e2e", "mode": "quick" if a.quick else "full", "cpus": os.cpu_count(),
                 "load_1m_start": loadavg(), "seconds_per_step": seconds, "code": code_state()}
    base = ring_direct(10_000, 1.0 if a.quick else 3.0)
    res.update(base)
    log(f"e2e: baseline ring direct at 10k/s: p50 {base['ring_direct_p50_us']} us, "
        f"p99 {base['ring_direct_p99_us']} us")
    plan = [(n, r, False) for n, r in steps] + [(n, r, True) for n, r in hop_steps]
    if a.quick:  # the hop breakdown rides on the lightest step
        plan[0] = (*plan[0][:2], True)
    res["steps"] = []
    for n, r, tap in plan:
        busy = quiet(a.wait_quiet, a.quiet_below) if a.wait_quiet else machine_busy_pct(0.5)
        log(f"e2e: step {n} instruments x {r:g} steps/s{' (with ring tap)' if tap else ''} ...")
        step = run_step(n, r, seconds, order_rate=a.order_rate, tap=tap,
                        warmup_s=a.warmup or (1.5 if a.quick else 2.0))
        step["tap"] = tap
        step["machine_busy_before_pct"] = busy  # others' work: no step of ours runs then
        derive(step, base)
        res["steps"].append(step)
        log("e2e:   " + ", ".join(f"{k}={step.get(k)}" for k in SUMMARY))
    measured = [s for s in res["steps"] if not s["tap"]]
    ok = [s for s in measured if s["sustained"]]
    res["max_sustained_eps"] = max((s["delivered_eps"] for s in ok), default=0)
    res["max_delivered_eps"] = max((s["delivered_eps"] for s in measured), default=0)
    first_bad = next((s for s in measured if not s["sustained"]), None)
    res["saturated_at_offered"] = first_bad["offered_msgs_per_s"] if first_bad else None
    bad = [f"{s['step']}: {s['check']}" for s in res["steps"] if s["check"] != "ok"]
    res["check"] = "ok" if not bad else "; ".join(bad)
    res["load_1m_end"] = loadavg()
    res["wall_s"] = round(time.monotonic() - t_all, 1)
    if a.json:
        emit(res, True, "")
    else:
        print(f"bench e2e ({res['mode']}, {res['wall_s']} s, load {res['load_1m_start']} -> "
              f"{res['load_1m_end']}): ring direct p50 {base['ring_direct_p50_us']} us, "
              f"p99 {base['ring_direct_p99_us']} us")
        for s in res["steps"]:
            print(f"  {s['step']:>8}{' tap' if s['tap'] else '    '}  offered {s['offered_msgs_per_s']:>6}/s  "
                  f"delivered {s['delivered_eps']:>6}/s  ingest p50/p99/p99.9 {s.get('ingest_p50_us')}/"
                  f"{s.get('ingest_p99_us')}/{s.get('ingest_p999_us')} us  venue p50/p99 "
                  f"{s.get('venue_p50_us')}/{s.get('venue_p99_us')} us  order ack p50/p99 "
                  f"{s.get('order_ack_p50_ms')}/{s.get('order_ack_p99_ms')} ms  "
                  f"{'sustained' if s['sustained'] else 'NOT sustained'}  {s['check']}")
        print(f"  max sustained delivered: {res['max_sustained_eps']}/s; check: {res['check']}")
    return 0 if res["check"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
