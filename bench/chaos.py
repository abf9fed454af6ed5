"""`python -m bench chaos [--json]`: the whole pipeline under load, every process type
SIGKILLed in turn and restarted by the launcher; how fast it recovers, and proof that
nothing was lost, duplicated or leaked.

The scenario (`run_scenario`, also what tests/e2e/test_chaos.py runs):

  1. `meltica.pipeline.Pipeline` in a fresh run: the simulator at `--rate` steps/s,
     execution, dispatch, ingest for binance-spot and okx, the demo strategy placing an
     order every 0.5 s, the monitor; plus `bench._chaos_trader` (a strategy that sends
     `--trader-rate` order commands/s and keeps every exec report it is handed) and a
     probe consumer (every kind of every symbol of both venues, merged BTC-USDT).
  2. `--cycles` unsubscribe / subscribe cycles of SOL-USDT on a consumer of its own:
     command -> effect at the consumer (see `_chaos_harness.sub_unsub_cycle`).
  3. SIGKILL, one at a time, each waiting for the recovery of the one before:
     ingest.binance-spot, ingest.okx, dispatch, execution, strategy.demo, strategy.trader.
  4. The trader stops sending; the demo is switched off by an operator command; once
     every order is settled, the evidence is taken: the trader's report log, the exec
     journal, execution's order store, the venue's record of what it received, the
     run's shared-memory segments (live set; what the programs left at stop; after).

Figures (ms): per killed program, SIGKILL -> restarted by the launcher; ingest: restart
-> a SNAPSHOT/RESYNCED book of every symbol again (target < 5000); dispatch: SIGKILL ->
the probe and the monitor receive again, every consumer registered again; execution:
SIGKILL -> ready, -> the next exec report; strategies: SIGKILL -> registered again.
Subscribe / unsubscribe effect p50 / p99 (target < 1000). Counts that must be 0: exec
reports lost or duplicated, orders the venue received twice, orders whose state differs
from the venue's, leaked segments. `targets_met` holds one boolean per target.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from channels.identity import consumer_key
from channels.journal import JournalReader
from channels.names import EXEC_RING, consumer_ring, journal_path, md_ring
from consumer import Consumer
from events import EVENT, EXEC_REPORT, ExecStatus, PeerGone
from events.codec import byte_rows, offset
from events.records import RECORD_BYTES
from meltica.launcher import Program

from ._chaos_harness import (VENUE_STATUS, VENUES, Kill, Operator, PipelineRun, Probe,
                             percentile_ms, sub_unsub_cycle)
from ._chaos_trader import orders_of
from .common import emit, log

KILL_ORDER = ("ingest.binance-spot", "ingest.okx", "dispatch", "execution", "strategy.demo", "strategy.trader")
TRADER = "trader"
CONSUMERS = ("demo", "monitor", "probe", TRADER)
LIVE_SET = {md_ring(v) for v in VENUES} | {EXEC_RING} | {consumer_ring(c) for c in CONSUMERS}
RESYNC_TARGET_MS = 5000
EFFECT_TARGET_MS = 1000


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 1)


def trader_log(run: PipelineRun) -> np.ndarray:
    try:
        raw = run.ctx.path("chaos", f"{TRADER}.reports").read_bytes()
    except FileNotFoundError:
        raw = b""
    return np.frombuffer(raw[: len(raw) // RECORD_BYTES * RECORD_BYTES], EVENT)


def journal(run: PipelineRun) -> np.ndarray:
    j = JournalReader(journal_path(run.ctx.run_dir))
    try:
        return j.read(1, j.last_seq())
    finally:
        j.close()


def trader_commands(run: PipelineRun) -> int:
    try:
        return int(run.ctx.path("chaos", f"{TRADER}.next").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def ring_identity(run: PipelineRun, consumer: str) -> tuple[int, int] | None:
    """(inode, ctime) of `consumer.<name>.md`: dispatch creates it anew at every registration."""
    try:
        st = os.stat(run.ctx.namespace.path(consumer_ring(consumer)))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns


def registered_again(run: PipelineRun, op: Operator, consumer: str, ring_at_kill) -> bool:
    """`consumer` registered since the kill (its ring is another one) and subscribed.

    (Not from dispatch's consumer.registered event: telemetry is PUB/SUB, and a dispatch
    that just started may lose its first events before its connection is up.)"""
    ring = ring_identity(run, consumer)
    if ring is None or ring == ring_at_kill:
        return False
    return bool(op.consumers().get(consumer, {}).get("subscriptions"))


def dispatch_counter(run: PipelineRun, key: str) -> int:
    """Counter `key` of the dispatch running now (0 until its first metrics snapshot)."""
    snap = run.pipeline.collector.snapshots().get("dispatch") or {}
    if snap.get("pid") != run.pid("dispatch"):
        return 0
    return int(snap.get("counters", {}).get(key, 0))


# -- recoveries, one per program type ------------------------------------------------------

def recover_ingest(run: PipelineRun, probe: Probe, k: Kill, venue: str, with_dispatch: bool) -> None:
    """Books of every symbol come again, the first after the restart flagged SNAPSHOT or
    RESYNCED ("flagged"). Allowed instead of the flag, with books of every symbol ingested
    after the kill arriving:
      "coalesced"  dispatch coalesced the flagged book away in the probe's full ring;
      "unflagged"  only when dispatch was killed too: a new dispatch reads the ingest
                   rings from their newest record, seeding each stream with only its newest
                   book (REPLAYED, dispatch/seed.py), so a flagged book the new ingest wrote
                   before it attached is routed only if nothing newer followed it."""
    def back():
        if probe.resynced_after(venue, k.wall_ns):
            return "flagged"
        if probe.books_after(venue, k.wall_ns):
            if dispatch_counter(run, "fanout.coalesced{consumer=probe}"):
                return "coalesced"
            if with_dispatch:
                return "unflagged"
        return None
    k.figures["outcome"] = run.wait_until(back, 30, f"books of every symbol of {venue} after its restart")
    arrivals = probe.resynced_after(venue, k.wall_ns) or {}
    if arrivals:
        last = max(arrivals.values())
        k.figures["respawn_to_books_ms"] = _ms(last - k.respawned_ns)
        k.figures["kill_to_books_ms"] = _ms(last - k.mono_ns)


def recover_dispatch(run: PipelineRun, probe: Probe, k: Kill, n: int) -> None:
    """Every consumer registers again with its subscriptions and receives again."""
    mon = run.pipeline.monitor
    op = Operator(run.ctx, timeout_s=0.5)  # short: the loop also restarts what died
    seen: dict[str, int] = {}

    def stamp(what: str, ok: bool) -> None:
        if ok and what not in seen:
            seen[what] = time.monotonic_ns()

    def back():
        stamp("probe", probe.received_after_recovery(n) > 0)
        stamp("monitor", mon.recoveries >= n and mon.md_since_recovery > 0)
        listing = op.consumers() if len(seen) >= 2 else {}
        stamp("registered", all(listing.get(c, {}).get("subscriptions") for c in CONSUMERS))
        stamp("delivering", all(dispatch_counter(run, f"fanout.delivered{{consumer={c}}}") > 0
                                for c in CONSUMERS))
        return len(seen) == 4
    run.wait_until(back, 30, "every consumer registered with the new dispatch and receiving")
    k.figures["kill_to_probe_receives_ms"] = _ms(probe.received_after_recovery(n) - k.mono_ns)
    k.figures["kill_to_monitor_receives_ms"] = _ms(seen["monitor"] - k.mono_ns)
    k.figures["kill_to_all_registered_ms"] = _ms(seen["registered"] - k.mono_ns)


def recover_execution(run: PipelineRun, k: Kill, journaled_at_kill: int) -> None:
    """execution is ready again (its pid in exec/ready) and journals new reports."""
    ready = run.wait_until(lambda: run.execution_ready() and time.monotonic_ns(), 30, "execution ready again")
    k.figures["kill_to_ready_ms"] = _ms(ready - k.mono_ns)
    t = run.wait_until(lambda: len(journal(run)) > journaled_at_kill and time.monotonic_ns(), 30,
                       "a new exec report after the execution restart")
    k.figures["kill_to_next_report_ms"] = _ms(t - k.mono_ns)


def recover_strategy(run: PipelineRun, k: Kill, consumer: str, sent_at_kill: int, ring_at_kill) -> None:
    """The strategy registers again and subscribes; the trader sends commands again."""
    op = Operator(run.ctx, timeout_s=0.5)  # short: the loop also restarts what died
    t = run.wait_until(lambda: registered_again(run, op, consumer, ring_at_kill) and time.monotonic_ns(), 30,
                       f"{consumer} registered again")
    k.figures["kill_to_registered_ms"] = _ms(t - k.mono_ns)
    if consumer == TRADER:
        t = run.wait_until(lambda: trader_commands(run) > sent_at_kill and time.monotonic_ns(), 30,
                           "the trader sending again")
        k.figures["kill_to_trading_ms"] = _ms(t - k.mono_ns)


# -- the scenario --------------------------------------------------------------------------

def run_scenario(root: str | Path, *, rate: float = 50.0, trader_rate: float = 10.0, cycles: int = 10,
                 kills=KILL_ORDER) -> dict:
    """Run the scenario under `root` (config, run directory); return evidence and figures.

    `kills`: program names, killed one after another, each after the recovery of the one
    before; an item that is a tuple of names is killed at once.

    The pipeline is stopped and the run's segments removed before this returns, also
    when it raises.
    """
    run = PipelineRun(root, rate=rate, orders=True, order_interval_s=0.5)
    out: dict = {"kills": [], "effects": []}
    probe = None
    try:
        run.start()
        log(f"chaos: run {run.ctx.run_id} in {run.ctx.run_dir}")
        run.pipeline.launcher.start(Program(f"strategy.{TRADER}", "bench._chaos_trader",
                                            ["--name", TRADER, "--rate", str(trader_rate)]))
        probe = Probe(run.ctx, "probe").start_and_wait()
        run.wait_until(lambda: len(trader_log(run)) >= 5 and all(probe.books_after(v, 0) for v in VENUES),
                       30, "the trader's first reports and books of every symbol at the probe")
        probe.phase = "steady"
        out["effects"] = effects(run, cycles)
        dispatch_kills = 0
        for group in kills:
            names = (group,) if isinstance(group, str) else tuple(group)
            probe.phase = f"after SIGKILL {'+'.join(names)}"
            journaled, sent = len(journal(run)), trader_commands(run)
            rings = {c: ring_identity(run, c) for c in CONSUMERS}
            ks = [run.kill(name) for name in names]
            log(f"chaos: SIGKILL {', '.join(f'{k.name} (pid {k.pid})' for k in ks)}")
            for k in ks:
                run.wait_respawn(k)
                k.figures["kill_to_respawn_ms"] = _ms(k.respawned_ns - k.mono_ns)
            for k in ks:
                if k.name.startswith("ingest."):
                    recover_ingest(run, probe, k, k.name.split(".", 1)[1], "dispatch" in names)
                elif k.name == "dispatch":
                    dispatch_kills += 1
                    recover_dispatch(run, probe, k, dispatch_kills)
                elif k.name == "execution":
                    recover_execution(run, k, journaled)
                else:
                    consumer = k.name.split(".", 1)[1]
                    recover_strategy(run, k, consumer, sent, rings[consumer])
            run.wait_until(lambda: set(run.ctx.namespace.names()) == LIVE_SET, 30,
                           f"the live set of segments after restarting {names}: {sorted(LIVE_SET)}")
            for k in ks:
                out["kills"].append({"name": k.name, "with": [n for n in names if n != k.name], "pid": k.pid,
                                     "new_pid": k.new_pid, **k.figures})
                log(f"chaos: {k.name} recovered: {k.figures}")
        out.update(settle(run))
        out["live_segments"] = sorted(run.ctx.namespace.names())
        out["restarts"] = run.pipeline.launcher.restarts()
        out["probe_error"] = repr(probe.error) if probe.error else None
        out["probe_disorder"], out["probe_disorder_samples"] = dict(probe.disorder), list(probe.disorder_samples)
        out["monitor"] = {k: v for k, v in run.pipeline.monitor.snapshot().items() if k != "top"}
    finally:
        if probe is not None:
            probe.stop()
        run.stop()
    out["left_by_programs"] = run.left_by_programs
    out["left_after_stop"] = run.left_after_stop
    out["exit_codes"] = run.exit_codes
    out["run_dir"] = str(run.ctx.run_dir)
    return out


def effects(run: PipelineRun, cycles: int) -> list[dict]:
    """Unsubscribe / subscribe SOL-USDT `cycles` times on consumer "subfx" (BTC-USDT the anchor)."""
    if not cycles:
        return []
    c = Consumer("subfx", run.ctx, filter_stale=False)
    try:
        for s in ("SOL-USDT", "BTC-USDT"):
            assert c.subscribe(s, providers=list(VENUES)).ok
        return [sub_unsub_cycle(c, "SOL-USDT", "BTC-USDT", run.poll) for _ in range(cycles)]
    finally:
        c.close()


def settle(run: PipelineRun) -> dict:
    """Stop the order flow and wait until every order is settled; return the evidence."""
    run.ctx.path("chaos", f"{TRADER}.stop").write_text("stop\n")
    op = Operator(run.ctx)
    run.wait_until(lambda: _try(lambda: op.request("set_trading_mode", consumer="demo",
                                                                  key=consumer_key(run.ctx.run_dir, "demo"),
                                                                  enabled=False))
                   .get("ok"), 20, "the operator switching the demo's trading off")
    tid = run.consumer_id(TRADER)
    state: dict = {}

    def settled() -> bool:
        done = run.ctx.path("chaos", f"{TRADER}.done")
        if not done.exists():
            return False
        rows = run.store_rows()
        if any(r["status"] == ExecStatus.PENDING for r in rows):
            return False
        j = journal(run)
        mine = j[j["consumer_id"] == tid]
        got = trader_log(run)
        if not len(mine) or not len(got) or int(got[-1]["exec"]["exec_seq"]) < int(mine[-1]["exec"]["exec_seq"]):
            return False
        venue = run.venue_orders()
        mism = mismatches(rows, venue)
        unexpected = run.ctx.path("chaos", f"{TRADER}.unexpected")
        state.update(rows=rows, venue=venue, journal=j, log=got, mismatches=mism,
                     commands=int(done.read_text()),
                     unexpected=unexpected.read_text().splitlines() if unexpected.exists() else [])
        return not mism
    try:
        run.wait_until(settled, 40, "every order settled: none PENDING, the trader's log caught up, "
                                    "every order's state equal to the venue's")
    except AssertionError:
        if not state:
            raise
        # report what differs instead of failing here: the caller judges
    return evidence(state, tid)


def _try(f) -> dict:
    try:
        return f()
    except PeerGone:
        return {}


def mismatches(rows: list[dict], venue: dict) -> list[tuple]:
    """Orders whose state differs from the venue's. Allowed: the venue never saw an order
    that we REJECTED (the request never left before a kill; rejected after the recvWindow)."""
    at_venue = {o.get("clientOrderId"): o for o in venue["orders"]}
    out = []
    for r in rows:
        ours = ExecStatus(r["status"]).name
        v = at_venue.get(r["venue_coid"])
        if v is None:
            if ours != "REJECTED":
                out.append((r["client_order_id"], ours, None))
        elif VENUE_STATUS[v["status"]] != ours:
            out.append((r["client_order_id"], ours, v["status"]))
    return out


def evidence(state: dict, tid: int) -> dict:
    """Counts of what must not happen, from the settled state."""
    j, got, rows = state["journal"], state["log"], state["rows"]
    mine = j[j["consumer_id"] == tid]
    want = [int(s) for s in mine["exec"]["exec_seq"]]
    have = [int(s) for s in got["exec"]["exec_seq"]]
    lost = sorted(set(want) - set(have))
    duplicated = len(have) - len(set(have)) + len(set(have) - set(want))
    covered = offset("exec") + EXEC_REPORT.itemsize  # header + exec payload; the rest belongs to no field
    same_bytes = have == want and (byte_rows(got)[:, :covered] == byte_rows(mine)[:, :covered]).all()
    trader_rows = {r["client_order_id"]: r for r in rows if r["consumer_id"] == tid}
    expected = set(orders_of(state["commands"]))
    last_status_wrong = []
    for coid, r in trader_rows.items():
        recs = got[got["exec"]["client_order_id"] == coid.encode()]
        if not len(recs) or int(recs[-1]["exec"]["status"]) != r["status"] \
                or int(recs["exec"]["last_qty"].sum()) != r["filled"]:
            last_status_wrong.append(coid)
    seqs = j["exec"]["exec_seq"]
    last_journaled = {}  # (consumer id, client order id) -> status of its last report
    for rec in j:
        last_journaled[(int(rec["consumer_id"]), bytes(rec["exec"]["client_order_id"]).rstrip(b"\0").decode())] = \
            int(rec["exec"]["status"])
    journal_vs_store = sorted(r["client_order_id"] for r in rows
                              if last_journaled.get((r["consumer_id"], r["client_order_id"])) != r["status"])
    received = state["venue"]["received"]
    return {
        "journal_gap_free": [int(s) for s in seqs] == list(range(1, len(seqs) + 1)),
        "journal_last_report_differs_from_store": journal_vs_store,
        "orders": len(rows), "trader_orders": len(trader_rows), "trader_commands": state["commands"],
        "exec_reports_journaled": int(j["exec"]["exec_seq"][-1]) if len(j) else 0,
        "trader_reports": len(have),
        "exec_reports_lost": len(lost), "exec_reports_duplicated": duplicated,
        "trader_log_equals_journal": bool(same_bytes),
        "trader_orders_missing": sorted(expected - set(trader_rows)),
        "trader_orders_unexpected": sorted(set(trader_rows) - expected),
        "trader_last_report_differs_from_store": sorted(last_status_wrong),
        "trader_unexpected_replies": state["unexpected"],
        "venue_received": sum(received.values()),
        "venue_duplicates": sorted(c for c, n in received.items() if n != 1),
        "state_mismatches": state["mismatches"],
        "statuses": _count(ExecStatus(r["status"]).name for r in rows),
    }


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# -- the benchmark -------------------------------------------------------------------------

def figures(out: dict) -> dict:
    """The flat result: recovery figures, effect percentiles, what must be 0, targets met."""
    res: dict = {}
    for k in out["kills"]:
        for key, value in k.items():
            if key not in ("name", "with", "pid", "new_pid"):
                res[f"{k['name']}.{key}"] = value
    unsub = [e["unsub_effect_ns"] for e in out["effects"]]
    sub = [e["sub_effect_ns"] for e in out["effects"]]
    res.update({
        "subscribe_effect_ms_p50": percentile_ms(sub, 50), "subscribe_effect_ms_p99": percentile_ms(sub, 99),
        "unsubscribe_effect_ms_p50": percentile_ms(unsub, 50),
        "unsubscribe_effect_ms_p99": percentile_ms(unsub, 99),
        "effect_cycles": len(out["effects"]),
        "unsubscribed_records_leaked": sum(e["leaked"] for e in out["effects"]),
    })
    for key in ("orders", "trader_commands", "exec_reports_journaled", "trader_reports",
                "exec_reports_lost", "exec_reports_duplicated", "venue_received"):
        res[key] = out.get(key)
    res["venue_duplicates"] = len(out.get("venue_duplicates", []))
    res["state_mismatches"] = len(out.get("state_mismatches", []))
    res["journal_gap_free"] = out.get("journal_gap_free")
    res["journal_last_report_differs_from_store"] = len(out.get("journal_last_report_differs_from_store", []))
    res["md_out_of_order_at_probe"] = sum((out.get("probe_disorder") or {}).values())
    res["leaked_segments_live"] = len(set(out.get("live_segments", [])) ^ LIVE_SET)
    res["leaked_segments_by_programs_at_stop"] = len(out.get("left_by_programs") or [])
    res["leaked_segments_after_stop"] = len(out.get("left_after_stop") or [])
    resync = [k.get("respawn_to_books_ms") for k in out["kills"] if k["name"].startswith("ingest.")]
    res["targets_met"] = {
        "book_resync_within_5s": all(v is not None and v < RESYNC_TARGET_MS for v in resync),
        "subscribe_effect_p99_under_1s": (res["subscribe_effect_ms_p99"] or 1e9) < EFFECT_TARGET_MS,
        "unsubscribe_effect_p99_under_1s": (res["unsubscribe_effect_ms_p99"] or 1e9) < EFFECT_TARGET_MS,
        "no_exec_report_lost_or_duplicated": out.get("exec_reports_lost") == 0
        and out.get("exec_reports_duplicated") == 0 and bool(out.get("trader_log_equals_journal"))
        and bool(out.get("journal_gap_free")),
        "no_venue_duplicate": res["venue_duplicates"] == 0,
        "every_order_matches_venue": res["state_mismatches"] == 0
        and res["journal_last_report_differs_from_store"] == 0,
        "no_leaked_segment": res["leaked_segments_live"] == 0 and res["leaked_segments_after_stop"] == 0,
    }
    return res


def code_state() -> dict:
    """The commit measured and the files that differed from it (the working tree is shared)."""
    def git(*args) -> str:
        try:
            return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent,
                                  capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": [line[3:] for line in git("status", "--porcelain").splitlines()]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--rate", type=float, default=50.0, help="simulator steps per second per instrument")
    ap.add_argument("--trader-rate", type=float, default=10.0, help="trader commands per second")
    ap.add_argument("--cycles", type=int, default=20, help="unsubscribe/subscribe cycles")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs) and print it")
    a = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="meltica-chaos-")
    t0 = time.monotonic()
    env = {"cpus": os.cpu_count(), "load_1m_start": round(os.getloadavg()[0], 2), "code": code_state()}
    out = run_scenario(tmp, rate=a.rate, trader_rate=a.trader_rate, cycles=a.cycles)
    res = {"bench": "chaos", "rate": a.rate, "trader_rate": a.trader_rate, **env, **figures(out),
           "seconds": round(time.monotonic() - t0, 1)}
    if a.keep:
        res["run_dir"] = out["run_dir"]
    else:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    emit(res, a.json, "chaos: SIGKILL every process type under load, recovery and losses")
    return 0 if all(res["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
