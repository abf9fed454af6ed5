"""Tick to trade: `python -m bench tick2trade [--json] [--rates 1000,10000] [--order-entry rest,ws] [--seconds S] [--quick]`.

The whole pipeline on this machine (`meltica.pipeline.Pipeline`: the simulator with
binance-spot only, one ingest, dispatch, execution) and `strategies.tick2trade` as its
one strategy: it receives every instrument's market data and answers every Nth BOOK
update of BTC-USDT with a buy IOC at the best bid (`submit_limit_nowait`; N chosen so
that about `--orders-per-s` orders go out). The clock starts when ingest read the frame
from its socket (the record's `ingest_ts_ns`: `time.time_ns()` right after
`recv_data`, ingest/transport.py) and stops when execution hands the order's bytes to
the venue connection (`sent_ns` of execution's `exec.order.sent` telemetry event:
`time.time_ns()` right before `http.client`'s request, venues/binance/trading/rest.py, or
right before the request's text is handed to the WebSocket, venues/binance/trading/wsapi.py).
Each order is joined to its record by the client order id (`t2t-<event_id>`).

Order entry (`--order-entry`, both by default): execution's `[execution] order_entry`,
"rest" (signed REST on its worker threads) or "ws" (the WebSocket API: a placement is
handed to the connection and its answer handled by the connection's reader, so no worker
waits for the venue). Each is a step of its own, keyed `<durability>` for REST (the keys
as they always were) and `<durability>_ws` for the WebSocket; `sent_by_path` counts the
orders by the path they left on (WS order entry takes REST while its session is down).
`venue_reply_*`: the venue's answer to each order (`replied_ns - sent_ns`), the
simulator's share beside ours; it is not a hop of tick to trade.

Hops, per order, from the stamps on its way (all `time.time_ns()`, one host clock):
  ingest_md_ring          socket read -> a tap process read it from ring md.binance-spot
                          (ingest: parse, book, publish; and the md ring hop)
  dispatch_consumer_ring  the tap's read -> the strategy's batch out of its consumer ring
                          (dispatch: ordering, routing, fan-out; and the consumer ring hop)
  strategy                the batch out of the ring -> right before the submit call
  order_channel           the submit call -> execution's engine took the order (`created_ns`)
  exec_checks_persist     validation, limits, idempotency store commit -> queued to a
                          REST worker (`placed_ns`)
  venue_send              the worker's queue, signing, URL -> bytes handed to the connection
                          (REST: behind the worker's earlier requests and their answers)
The floor's hops, by its own stamps (bench/_t2t_floor.py): ingest_md_ring (socket read
-> dispatch's read), consumer_ring (-> the strategy's read), order_channel, venue_send.

Per rate, the floor first (the same chain of processes and channels doing no work,
bench/_t2t_floor.py), then the pipeline with execution's durability `process` (no
fsync: the store commits with synchronous=NORMAL) and `power` (fsync per commit).
Market-data rate: `--rates` are market-data events/s delivered to the strategy
(simulator steps/s chosen from EVENTS_PER_STEP, measured; the delivered rate is reported).

JSON (one object):
  {"benchmark": "tick2trade", "loadavg_before": "...", "loadavg_after": "...", "code": {...},
   "seconds": S, "orders_per_s": O, "machine_busy_before_pct": B, "order_entry": ["rest", "ws"],
   "rates": {"1000": {"floor": {"floor_p50_us", "floor_p99_us", "floor_p999_us", "orders",
                                "hops": {hop: {"p50_us", "p99_us", "share"}}},
                      "process": {"tick_to_trade_p50_us", "tick_to_trade_p99_us",
                                  "tick_to_trade_p999_us", "floor_p50_us", "floor_p99_us",
                                  "ratio_p50", "ratio_p99", "delivered_eps", "every",
                                  "orders", "joined", "order_entry": "rest",
                                  "sent_by_path": {"rest": n}, "venue_reply_p50_us", ...,
                                  "hops": {...}, "cpu_pct": {...}, ...},
                      "process_ws": {... the same, "order_entry": "ws"},
                      "power": {...}, "power_ws": {...}},
             "10000": {...}},
   "targets": {"p50_under_300us_at_10k_process": bool, "p99_under_1ms_at_10k_process": bool,
               "ratio_under_3_at_10k_process": bool, "p50_under_300us_at_10k_process_ws": bool, ...}}
The REST targets are always there (false when REST was not run); the `_ws` ones with ws.
A hop's `share` is its p50 over the sum of the hops' p50s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from bench._pipeline import REPO, CpuWindow, PipelineRun, code_state, counters, machine_busy_pct, symbols_for
from bench.common import emit, log, stop_processes

VENUE = "binance-spot"
SYMBOL = "BTC-USDT"
INSTRUMENTS = 10
EVENTS_PER_STEP = 2.0   # events per simulator step per instrument reaching a consumer (binance-spot)
BOOK_SHARE = 0.5        # of which BOOK records (depth diffs; the rest trades and tickers)
ENTRY_SUFFIX = {"rest": "", "ws": "_ws"}   # order entry -> the suffix of its steps' keys (REST: none)


def loadavg_text() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _pct(x: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(x, q)) / 1000.0, 1) if len(x) else None


def latency(prefix: str, ns: np.ndarray) -> dict:
    return {f"{prefix}_p50_us": _pct(ns, 50), f"{prefix}_p99_us": _pct(ns, 99), f"{prefix}_p999_us": _pct(ns, 99.9)}


def hop_table(hops: dict[str, np.ndarray]) -> dict:
    p50 = {k: float(np.percentile(v, 50)) if len(v) else 0.0 for k, v in hops.items()}
    total = sum(max(0.0, x) for x in p50.values()) or 1.0
    return {k: {"p50_us": _pct(v, 50), "p99_us": _pct(v, 99), "share": round(max(0.0, p50[k]) / total, 3)}
            for k, v in hops.items()}


def _child(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=open(log_path, "ab"), start_new_session=True)


def _wait_ready(procs: list[subprocess.Popen], timeout_s: float = 60.0) -> None:
    import select
    waiting = {p.stdout.fileno(): p for p in procs}
    deadline = time.monotonic() + timeout_s
    while waiting:
        if time.monotonic() > deadline:
            raise SystemExit(f"helpers did not start: {[p.args[1:3] for p in waiting.values()]}")
        ready, _, _ = select.select(list(waiting), [], [], 0.2)
        for fd in ready:
            p = waiting.pop(fd)
            if p.stdout.readline().strip() != b"ready":
                raise SystemExit(f"helper {p.args[1:3]} failed to start")


# -- the floor ----------------------------------------------------------------------------------

def floor_step(rate: float, seconds: float, every: int) -> dict:
    from core.run import RunContext
    tmp = Path(tempfile.mkdtemp(prefix="meltica-t2t-floor-"))
    ctx = RunContext(f"bench-floor-{uuid.uuid4().hex[:8]}", tmp / "run").claim()
    env = {**os.environ, **ctx.env()}
    d, lg = ctx.run_dir, tmp / "floor.log"
    mod = ["-m", "bench._t2t_floor"]
    procs = []
    try:
        procs.append(_child([*mod, "source", str(d), str(rate), str(seconds)], env, lg))
        _wait_ready(procs[-1:])
        procs.append(_child([*mod, "execution", ctx.run_id, str(d)], env, lg))
        _wait_ready(procs[-1:])
        for role, extra in (("ingest", []), ("dispatch", []), ("strategy", [str(every)])):
            procs.append(_child([*mod, role, ctx.run_id, str(d), *extra], env, lg))
            _wait_ready(procs[-1:])
        time.sleep(0.5)
        (d / "go").write_text("")
        t_end = time.monotonic() + seconds + 30
        while not (d / "source.sent").exists() and time.monotonic() < t_end:
            time.sleep(0.1)
        time.sleep(0.5)  # the last records through
        stop_processes(procs[::-1][:4])  # strategy, dispatch, ingest, execution (writes floor.npz)
        z = np.load(d / "floor.npz")
    finally:
        stop_processes(procs)
        ctx.namespace.cleanup()
    keep = z["ingest_ns"] > 0
    warm = np.zeros(len(keep), bool)
    warm[len(keep) // 10:] = True  # the first tenth is warm-up
    sel = keep & warm
    f = {k: z[k][sel] for k in z.files}
    total = f["sent_ns"] - f["ingest_ns"]
    # the floor's ingest stamps once: its socket read is its record's stamp
    hops = {"ingest_md_ring": f["dispatch_ns"] - f["ingest_ns"], "consumer_ring": f["strategy_ns"] - f["dispatch_ns"],
            "order_channel": f["exec_ns"] - f["strategy_ns"], "venue_send": f["sent_ns"] - f["exec_ns"]}
    shutil.rmtree(tmp, ignore_errors=True)
    return {**latency("floor", total), "orders": int(len(total)), "hops": hop_table(hops)}


# -- the pipeline ---------------------------------------------------------------------------------

def _sent_events(run: PipelineRun, seen: dict) -> None:
    """Collect execution's `exec.order.sent` events from the run's collector (it keeps the newest)."""
    col = run.pipeline.collector
    if col is None:
        return
    for e in col.recent_events(1000, name="exec.order.sent"):
        seen[e["client_order_id"]] = e


def pipeline_step(rate: float, durability: str, seconds: float, orders_per_s: float,
                  warmup_s: float = 3.0, order_entry: str = "rest") -> dict:
    symbols = symbols_for(INSTRUMENTS)
    steps = rate / (EVENTS_PER_STEP * INSTRUMENTS)
    books_per_s = steps * BOOK_SHARE * EVENTS_PER_STEP
    every = max(1, round(books_per_s / orders_per_s))
    run = PipelineRun(symbols, steps, "t2t", venues=(VENUE,),
                      extra=f'\n[execution]\ndurability = "{durability}"\norder_entry = "{order_entry}"\n')
    res: dict = {"durability": durability, "order_entry": order_entry,
                 "sim_steps_per_s_per_instrument": round(steps, 1), "instruments": INSTRUMENTS, "every": every}
    helpers: list[subprocess.Popen] = []
    failed = True
    try:
        run.start()
        run.stop_program("strategy.demo")  # our strategy is the only consumer
        env = {**os.environ, **run.ctx.env()}
        rec_file = run.tmp / "t2t.npz"
        tap_file = run.tmp / "tap.npz"
        lg = run.tmp / "helpers.log"
        strat = _child(["-m", "strategies.tick2trade", "--symbols", ",".join(symbols), "--symbol", SYMBOL,
                        "--provider", VENUE, "--every", str(every), "--record", str(rec_file)], env, lg)
        helpers.append(strat)
        _wait_ready([strat])
        time.sleep(warmup_s)  # books of every instrument, the ordering stage's first hold
        tap = _child(["-m", "bench.e2e", "--tap", run.ctx.run_id, str(seconds + 1), str(tap_file), VENUE], env, lg)
        helpers.append(tap)
        _wait_ready([tap])
        seen: dict = {}
        _sent_events(run, seen)
        seen.clear()  # orders of the warm-up
        c0 = counters(run.snapshots())
        cpu = CpuWindow({**run.pids(), "strategy.t2t": strat.pid, "tap": tap.pid})
        cpu.start()
        t0_ns = time.time_ns()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.2)
            _sent_events(run, seen)
        t1_ns = time.time_ns()
        res["cpu_pct"] = cpu.stop()
        c1 = counters(run.snapshots())
        key = "dispatch/fanout.delivered{consumer=t2t}"
        res["delivered_eps"] = round((c1.get(key, 0) - c0.get(key, 0)) / seconds)
        stop_processes([strat])
        tap.wait(seconds + 30)
        time.sleep(1.5)  # the last orders' events
        _sent_events(run, seen)
        res.update(_join(rec_file, tap_file, seen, t0_ns, t1_ns))
        if not res.get("joined"):
            log(f"tick2trade: no order joined; helpers' log:\n{lg.read_text()[-3000:]}")
            run.log_tails()
        failed = False
    finally:
        stop_processes(helpers)
        left = run.stop(failed=failed)
        if left:
            res["leaked_segments"] = left
    return res


def _join(rec_file: Path, tap_file: Path, seen: dict, t0_ns: int, t1_ns: int) -> dict:
    s = np.load(rec_file)
    t = np.load(tap_file)
    win = (s["submit_ns"] >= t0_ns) & (s["submit_ns"] <= t1_ns)
    out = {"orders": int(win.sum()), "accepted": int(s["accepted"][0]), "terminal": int(s["terminal"][0])}
    eid = s["event_id"][win]
    ev = [seen.get(f"t2t-{int(x):016x}") for x in eid.tolist()]
    have = np.array([e is not None for e in ev], bool)
    out["joined"] = int(have.sum())
    if not have.any():
        return out
    paths: dict[str, int] = {}
    for e in ev:
        if e:
            paths[e.get("path", "?")] = paths.get(e.get("path", "?"), 0) + 1
    out["sent_by_path"] = paths   # WS order entry falls back to REST while its session is down
    sent = np.array([e["sent_ns"] for e in ev if e], np.int64)
    created = np.array([e["created_ns"] for e in ev if e], np.int64)
    placed = np.array([e["placed_ns"] for e in ev if e], np.int64)
    ing, rx, sub, eid = (s["ingest_ns"][win][have], s["rx_ns"][win][have], s["submit_ns"][win][have],
                         eid[have])
    total = sent - ing
    out.update(latency("tick_to_trade", total))
    replied = np.array([e["replied_ns"] for e in ev if e], np.int64)
    answered = replied > 0
    # the venue's answer to each order (the simulator's share, and what holds a blocking worker)
    out.update(latency("venue_reply", (replied - sent)[answered]))
    # the tap's read of each triggering record (where it saw it)
    order = np.argsort(t["ids"])
    tid, tt = t["ids"][order], t["t"][order]
    tapped, t_tap = np.zeros(len(eid), bool), np.zeros(len(eid), np.int64)
    if len(tid):
        pos = np.minimum(np.searchsorted(tid, eid), len(tid) - 1)
        tapped, t_tap = tid[pos] == eid, tt[pos]
    out["tapped"] = int(tapped.sum())
    hops = {"ingest_md_ring": (t_tap - ing)[tapped], "dispatch_consumer_ring": (rx - t_tap)[tapped],
            "strategy": sub - rx, "order_channel": created - sub, "exec_checks_persist": placed - created,
            "venue_send": sent - placed}
    out["hops"] = hop_table(hops)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench tick2trade", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rates", default="1000,10000", help="market-data events/s, comma-separated")
    ap.add_argument("--durability", default="process,power", help="execution durability modes to run")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per step")
    ap.add_argument("--orders-per-s", type=float, default=20.0, help="orders/s the strategy aims at")
    ap.add_argument("--order-entry", default="rest,ws",
                    help="execution's order-entry paths to run: rest (key <durability>), ws (key <durability>_ws)")
    ap.add_argument("--quick", action="store_true", help="tiny: 200 events/s, 2 s, process durability")
    a = ap.parse_args(argv)
    if a.quick:
        a.rates, a.durability, a.seconds = "200", "process", 2.0
    entries = a.order_entry.split(",")
    if not entries or any(e not in ENTRY_SUFFIX for e in entries):
        ap.error(f"--order-entry takes rest and/or ws: {a.order_entry!r}")
    t_all = time.monotonic()
    res: dict = {"benchmark": "tick2trade", "loadavg_before": loadavg_text(),
                 "machine_busy_before_pct": machine_busy_pct(0.5), "code": code_state(),
                 "seconds": a.seconds, "orders_per_s": a.orders_per_s, "order_entry": entries, "rates": {}}
    for rate in (float(r) for r in a.rates.split(",")):
        per: dict = {}
        every_floor = max(1, round(rate / a.orders_per_s))
        log(f"tick2trade: floor at {rate:g} events/s ...")
        per["floor"] = floor_step(rate, a.seconds, every_floor)
        for mode in a.durability.split(","):
            for entry in entries:
                key = mode + ENTRY_SUFFIX[entry]
                log(f"tick2trade: pipeline at {rate:g} events/s, durability {mode}, order entry {entry} ...")
                step = pipeline_step(rate, mode, a.seconds, a.orders_per_s, warmup_s=1.0 if a.quick else 3.0,
                                     order_entry=entry)
                fl = per["floor"]
                step["floor_p50_us"], step["floor_p99_us"] = fl["floor_p50_us"], fl["floor_p99_us"]
                for q in ("p50", "p99"):
                    t2t, f = step.get(f"tick_to_trade_{q}_us"), fl[f"floor_{q}_us"]
                    step[f"ratio_{q}"] = round(t2t / f, 2) if t2t and f else None
                per[key] = step
                log(f"tick2trade:   {key}: p50 {step.get('tick_to_trade_p50_us')} us, p99 "
                    f"{step.get('tick_to_trade_p99_us')} us (floor {fl['floor_p50_us']} / {fl['floor_p99_us']}), "
                    f"{step.get('joined')} orders ({step.get('sent_by_path')}), {step.get('delivered_eps')} events/s")
        res["rates"][f"{rate:g}"] = per
    res["targets"] = {}
    for entry in dict.fromkeys(["rest", *entries]):
        ten = res["rates"].get("10000", {}).get("process" + ENTRY_SUFFIX[entry], {})
        sfx = ENTRY_SUFFIX[entry]
        res["targets"].update({
            f"p50_under_300us_at_10k_process{sfx}": bool(ten) and (ten.get("tick_to_trade_p50_us") or 1e9) < 300,
            f"p99_under_1ms_at_10k_process{sfx}": bool(ten) and (ten.get("tick_to_trade_p99_us") or 1e9) < 1000,
            f"ratio_under_3_at_10k_process{sfx}": bool(ten) and (ten.get("ratio_p50") or 1e9) < 3})
    res["loadavg_after"] = loadavg_text()
    res["wall_s"] = round(time.monotonic() - t_all, 1)
    if a.json:
        emit(res, True, "")
    else:
        print(f"bench tick2trade ({res['wall_s']} s; load {res['loadavg_before']} -> {res['loadavg_after']})")
        for rate, per in res["rates"].items():
            fl = per["floor"]
            print(f"  {rate:>6} events/s  floor p50/p99/p99.9 {fl['floor_p50_us']}/{fl['floor_p99_us']}/"
                  f"{fl['floor_p999_us']} us")
            for mode, s in per.items():
                if mode == "floor":
                    continue
                print(f"    {mode:>10}: p50/p99/p99.9 {s.get('tick_to_trade_p50_us')}/{s.get('tick_to_trade_p99_us')}/"
                      f"{s.get('tick_to_trade_p999_us')} us, x{s.get('ratio_p50')} floor, {s.get('joined')} orders, "
                      f"{s.get('delivered_eps')} events/s")
                for h, v in (s.get("hops") or {}).items():
                    print(f"              {h:<24} p50 {v['p50_us']:>8} us  p99 {v['p99_us']:>8} us  share {v['share']}")
        print(f"  targets: {res['targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
