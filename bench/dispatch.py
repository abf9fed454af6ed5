"""Dispatch: core throughput to 1, 3 and 10 consumers; ingest ring -> consumer latency.

    python -m bench dispatch [--json] [--seconds S] [--skip-latency] [--skip-saturation]

`core_eps_to_N`: records/s through the dispatch core (de-dup, order, route, fan-out
into N real consumer rings, each consumer subscribed to everything and drained in the
same process), over 2 providers x 10 instruments x 3 kinds, 4096-record batches.
Baseline in the same run: `raw_copy_eps`, one raw copy of the same records (the
memory floor), and the ratio. `core_batch_<n>_us`: median cost of one `process` call
for a batch of n in-order records to one consumer (what each wake-up costs at 10k/s);
baseline `core_batch_<n>_vector_us`, the same batches through the numpy path only.
`latency_<rate>_p50_us` ...: cross-process, a writer process stamps `ingest_ts_ns`
and writes an md ring at a paced rate, `python -m dispatch` fans out, this process
reads as a consumer through the SDK; baseline `ring_direct_<rate>_*`: this process
reads the writer's ring itself (one hop, the floor of this machine); `*_cores`: CPU
used meanwhile by dispatch and by the reading process, in cores, `*_sleeps_per_record`
their voluntary context switches (parks, naps) per record. `saturation_*`:
a writer offers more than dispatch can fan out to three consumers of unequal appetite
(1, 3 and 10 of the 10 symbols); dispatch finds it is saturated by itself (no
--fanout-rate) and meters; `saturation_share_<consumer>` is the fraction of the
records dispatch routed to a consumer that it delivered (target: min >= 0.25),
`saturation_input_read` the fraction of the written records dispatch read at all.
Each figure checks its own result: every record delivered (unsaturated), per-stream
seq strictly increasing, every control result received.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

from channels.names import consumer_ring, md_ring
from events import EVENT, SCHEMA_VERSION, Kind, event_ids
from events.codec import words
from events.instruments import instrument_id

from .common import stop_processes

SYMBOLS = [f"C{i}-USDT" for i in range(10)]
PROVIDERS = (1, 4)
DISPATCH_ARGS = os.environ.get("BENCH_DISPATCH_ARGS", "").split()
KINDS = (Kind.BOOK, Kind.TRADE, Kind.TICKER)


def synth(n: int, seq0: np.ndarray | None = None, providers=PROVIDERS):
    """n records round-robin over every stream, contiguous seqs per stream (vectorised)."""
    streams = [(p, instrument_id(s), int(k)) for p in providers for s in SYMBOLS for k in KINDS]
    m = len(streams)
    seq0 = np.zeros(m, np.int64) if seq0 is None else seq0
    sid = np.arange(n) % m
    out = np.zeros(n, EVENT)
    st = np.array(streams, np.int64)
    out["schema_version"] = SCHEMA_VERSION
    out["provider"], out["instrument"], out["kind"] = st[sid, 0], st[sid, 1], st[sid, 2]
    seq = seq0[sid] + np.arange(n) // m + 1
    out["seq_provider"] = seq
    out["event_id"] = event_ids(st[sid, 0], st[sid, 2], st[sid, 1], seq)
    out["trace_id"] = np.arange(n)
    return out, seq0 + np.bincount(sid, minlength=m)


def core_throughput(consumers: int, seconds: float) -> dict:
    from dispatch.config import DispatchConfig
    from dispatch.core import DispatchCore
    from shm import Namespace, RingReader, RingWriter

    ns = Namespace("bench" + uuid.uuid4().hex[:8])
    try:
        clock = [time.time_ns()]
        core = DispatchCore(DispatchConfig(consumer_ring_capacity=1 << 15), clock=lambda: clock[0])
        readers = []
        for i in range(consumers):
            w = RingWriter.create(ns, consumer_ring(f"b{i}"), EVENT, 1 << 15, policy="lossless")
            readers.append(RingReader.attach(ns, consumer_ring(f"b{i}"), EVENT, start="oldest"))
            sub = core.add_consumer(f"b{i}", w)
            for s in SYMBOLS:
                core.subscribe(sub, instrument_id(s))
        batches, seq0 = [], None
        for _ in range(64):
            b, seq0 = synth(4096, seq0)
            batches.append(b)
        total = 0
        got = [0] * consumers
        t0 = time.perf_counter()
        deadline = t0 + seconds
        i = 0
        while time.perf_counter() < deadline:
            if i == len(batches):  # fresh seqs for another lap (not timed as setup)
                t_gen = time.perf_counter()
                batches = []
                for _ in range(64):
                    b, seq0 = synth(4096, seq0)
                    batches.append(b)
                deadline += time.perf_counter() - t_gen
                t0 += time.perf_counter() - t_gen
                i = 0
            clock[0] += 1_000_000
            core.tick()
            total += core.process(batches[i])
            i += 1
            for j, r in enumerate(readers):
                while True:
                    k = len(r.try_read(1 << 15))
                    r.release()
                    if not k:
                        break
                    got[j] += k
        dt = time.perf_counter() - t0
        out = core.outlets
        dropped = sum(o.trades_dropped + o.coalesced for o in out.values())
        if any(g != total for g in got) or dropped:
            raise AssertionError(f"fan-out lost records: in={total} got={got} dropped={dropped}")
        for r in readers:
            r.close()
        for o in out.values():
            o.writer.close()
        return {"eps": total / dt, "events": total}
    finally:
        ns.cleanup()


def core_batch_us(size: int, small: bool, batches: int = 3000) -> float:
    """Median cost of one `process` call: `size` in-order records, one consumer."""
    from dispatch.config import DispatchConfig
    from dispatch.core import DispatchCore
    from shm import Namespace, RingReader, RingWriter

    ns = Namespace("bench" + uuid.uuid4().hex[:8])
    try:
        core = DispatchCore(DispatchConfig(), clock=time.time_ns)
        if not small:
            core.small.limit = 0
        w = RingWriter.create(ns, consumer_ring("b"), EVENT, 1 << 16, policy="lossless")
        r = RingReader.attach(ns, consumer_ring("b"), EVENT, start="oldest")
        sub = core.add_consumer("b", w)
        for s in SYMBOLS:
            core.subscribe(sub, instrument_id(s))
        recs, _ = synth(size * (batches + 100), providers=(4,))
        core.process(recs[: size * 100])  # every stream seen: the steady state
        r.try_read(1 << 16)
        r.release()
        took = np.empty(batches, np.int64)
        got = 0
        for i in range(batches):
            b = recs[size * (100 + i) : size * (101 + i)]
            t0 = time.perf_counter_ns()
            core.process(b)
            took[i] = time.perf_counter_ns() - t0
            got += len(r.try_read(1 << 16))
            r.release()
        if got != size * batches:
            raise AssertionError(f"batches of {size}: delivered {got} of {size * batches}")
        r.close()
        w.close()
        return float(np.median(took)) / 1000
    finally:
        ns.cleanup()


def raw_copy_eps(seconds: float) -> float:
    b, _ = synth(4096)
    src = words(b)
    dst = np.empty_like(src)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        dst[:] = src
        n += len(b)
    return n / (time.perf_counter() - t0)


# -- latency: writer process, dispatch process, this process as the consumer ------------

def writer_main(rate: float, seconds: float) -> int:
    """Child: write md.okx at `rate` records/s for `seconds`, stamping ingest_ts_ns."""
    from core.run import RunContext
    from shm import RingWriter
    from shm.wait import lower_timer_slack

    lower_timer_slack()
    ctx = RunContext.from_env()
    w = RingWriter.create(ctx.namespace, md_ring("okx"), EVENT, 1 << 16)
    per = 1 if rate <= 20_000 else int(rate // 10_000)
    period = per / rate
    seq0 = None
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the consumer is subscribed
    n_total = int(rate * seconds)
    buf, seq0 = synth(n_total, seq0, providers=(4,))
    t_next = time.perf_counter()
    for i in range(0, n_total, per):
        chunk = buf[i : i + per]
        chunk["ingest_ts_ns"] = time.time_ns()
        w.write_batch(chunk)
        t_next += period
        delay = t_next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    sys.stdin.readline()
    w.close()
    return 0


def saturate_writer_main(rate: float, seconds: float) -> int:
    """Child: write md.okx at up to `rate` records/s for `seconds`; print the count written."""
    from core.run import RunContext
    from shm import RingWriter

    ctx = RunContext.from_env()
    w = RingWriter.create(ctx.namespace, md_ring("okx"), EVENT, 1 << 16)
    laps = 128  # records per stream and chunk: seqs stay contiguous when advanced by it
    chunk, _ = synth(laps * len(SYMBOLS) * len(KINDS), providers=(4,))
    ids = np.arange(1, len(chunk) + 1, dtype=np.uint64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    written, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < seconds:
        if written > rate * t:
            time.sleep(0.0002)
            continue
        chunk["ingest_ts_ns"] = time.time_ns()
        chunk["event_id"] = ids + np.uint64(written)
        w.write_batch(chunk)
        written += len(chunk)
        chunk["seq_provider"] += laps
    sys.stdout.write(f"{written}\n")
    sys.stdout.flush()
    sys.stdin.readline()
    w.close()
    return 0


SAT_APPETITE = {"small": SYMBOLS[:1], "medium": SYMBOLS[:3], "large": SYMBOLS}


def _check_order(md: np.ndarray, last: dict) -> None:
    """Per stream (instrument, kind): seq strictly increasing within and across batches."""
    key = md["instrument"].astype(np.int64) * 16 + md["kind"]
    order = np.argsort(key, kind="stable")
    k, q = key[order], md["seq_provider"][order]
    same = k[1:] == k[:-1]
    if (q[1:][same] <= q[:-1][same]).any():
        raise AssertionError("a stream's records arrived out of order within a batch")
    starts = np.flatnonzero(np.r_[True, ~same])
    ends = np.r_[starts[1:], len(k)] - 1
    for kk, first, end in zip(k[starts].tolist(), q[starts].tolist(), q[ends].tolist()):
        if first <= last.get(kk, -1):
            raise AssertionError(f"stream {kk}: seq {first} after {last[kk]}")
        last[kk] = end


def saturation(rate: float, seconds: float) -> dict:
    """Offer `rate` records/s to `python -m dispatch` with three unequal consumers."""
    from consumer import Consumer
    from core.run import RunContext

    tmp = Path(tempfile.mkdtemp(prefix="mbench"))
    ctx = RunContext("sat" + uuid.uuid4().hex[:8], tmp / "run")
    env = {**os.environ, **ctx.env()}
    procs, cons = [], {}
    try:
        d = subprocess.Popen([sys.executable, "-m", "dispatch", "--telemetry", "",
                              "--ring-capacity", str(1 << 16), *DISPATCH_ARGS,
                              "--instruments", ",".join(SYMBOLS)], env=env,
                             stderr=subprocess.PIPE, start_new_session=True)
        procs.append(d)
        d.stderr.readline()
        wr = subprocess.Popen([sys.executable, "-m", "bench.dispatch", "--saturate", str(rate),
                               str(seconds)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, start_new_session=True)
        procs.append(wr)
        wr.stdout.readline()
        for name, syms in SAT_APPETITE.items():
            c = cons[name] = Consumer(name, run=ctx, timeout_s=5)
            for sym in syms:
                assert c.subscribe(sym).ok
        time.sleep(0.3)  # dispatch discovers md.okx
        wr.stdin.write(b"go\n")
        wr.stdin.flush()
        got = {n: 0 for n in cons}
        results = {n: 0 for n in cons}
        last: dict = {n: {} for n in cons}
        end = time.monotonic() + seconds + 1.5  # the writer, then dispatch's backlog
        while time.monotonic() < end:
            for n, c in cons.items():
                b = c.events(1 << 16)
                md = b[b["kind"] <= Kind.TICKER]
                if len(md):
                    _check_order(md, last[n])
                    got[n] += len(md)
                results[n] += int(np.count_nonzero(b["kind"] == Kind.CONTROL_RESULT))
        wr.stdin.write(b"done\n")
        wr.stdin.flush()
        written = int(wr.stdout.readline())
        for n, syms in SAT_APPETITE.items():
            if results[n] < 1 + len(syms):  # register, one subscribe per symbol (and listings)
                raise AssertionError(f"{n}: {results[n]} control results, {1 + len(syms)} asked")
        d.terminate()
        d.wait(10)
        tail = d.stderr.read().decode().strip().splitlines()
        counters = orjson.loads(tail[-1].split("stopped: ", 1)[1])
        out = {"written": written, "input_read": counters["dispatch.events_in"] / written,
               "saturated_s": counters.get("dispatch.saturated_ns", 0) / 1e9}
        for n in cons:
            offered = counters[f"fanout.offered{{consumer={n}}}"]
            out[f"share_{n}"] = got[n] / offered if offered else 0.0
        out["share_min"] = min(out[f"share_{n}"] for n in cons)
        return out
    finally:
        for c in cons.values():
            c.close()
        stop_processes(procs)
        ctx.namespace.cleanup()


def _usage(pid: int | str) -> tuple[float, int]:
    """CPU seconds (user + system) and voluntary context switches (sleeps) of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as f:
        sleeps = next(int(line.split()[1]) for line in f
                      if line.startswith("voluntary_ctxt_switches"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), sleeps


def latency(rate: float, seconds: float, direct: bool = False) -> dict:
    """Ingest ring -> consumer latency through `python -m dispatch`; `direct`: the
    baseline, this process reading the ingest ring itself (one hop, no dispatch)."""
    from consumer import Consumer
    from core.run import RunContext
    from shm import RingReader

    tmp = Path(tempfile.mkdtemp(prefix="mbench"))
    ctx = RunContext("lat" + uuid.uuid4().hex[:8], tmp / "run")
    env = {**os.environ, **ctx.env()}
    procs = []
    c = reader = None
    try:
        if not direct:
            d = subprocess.Popen([sys.executable, "-m", "dispatch", "--telemetry", "",
                                  "--ring-capacity", str(1 << 16), *DISPATCH_ARGS,
                                  "--instruments", ",".join(SYMBOLS)], env=env,
                                 stderr=subprocess.PIPE, start_new_session=True)
            procs.append(d)
            d.stderr.readline()  # "dispatch: run=... control=..."
        wr = subprocess.Popen([sys.executable, "-m", "bench.dispatch", "--writer", str(rate),
                               str(seconds)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, start_new_session=True)
        procs.append(wr)
        wr.stdout.readline()
        if direct:
            reader = RingReader.attach(ctx.namespace, md_ring("okx"), EVENT, start="oldest")

            def read():
                reader.release()
                return reader.wait_read(4096, timeout_s=0.05)
        else:
            c = Consumer("lat", run=ctx, timeout_s=5)
            for s in SYMBOLS:
                assert c.subscribe(s).ok

            def read():
                return c.events(4096, timeout_s=0.05)
            time.sleep(0.3)  # dispatch discovers md.okx
        use0 = {"consumer": _usage("self")} if direct else {"consumer": _usage("self"),
                                                              "dispatch": _usage(procs[0].pid)}
        t0 = time.monotonic()
        wr.stdin.write(b"go\n")
        wr.stdin.flush()
        expected = int(rate * seconds)
        lat = np.empty(expected, np.int64)
        last_seq: dict = {}
        n = 0
        deadline = time.monotonic() + seconds + 10
        while n < expected and time.monotonic() < deadline:
            b = read()
            now = time.time_ns()
            md = b[b["kind"] <= Kind.TICKER]
            k = len(md)
            if not k:
                continue
            lat[n : n + k] = now - md["ingest_ts_ns"]
            for key, seq in zip(zip(md["instrument"].tolist(), md["kind"].tolist()),
                                md["seq_provider"].tolist()):
                if seq <= last_seq.get(key, -1):
                    raise AssertionError(f"out of order: {key} {seq} after {last_seq[key]}")
                last_seq[key] = seq
            n += k
        wall, cpu = time.monotonic() - t0, {}
        for who, (cpu_s, sleeps) in use0.items():
            now_cpu, now_sleeps = _usage("self" if who == "consumer" else procs[0].pid)
            cpu[f"{who}_cores"] = (now_cpu - cpu_s) / wall
            cpu[f"{who}_sleeps_per_record"] = (now_sleeps - sleeps) / max(n, 1)
        wr.stdin.write(b"done\n")
        wr.stdin.flush()
        if n < expected:
            raise AssertionError(f"latency run at {rate}/s delivered {n} of {expected}")
        warm = lat[n // 10 : n] / 1000
        return {"p50_us": float(np.percentile(warm, 50)), "p99_us": float(np.percentile(warm, 99)),
                "p999_us": float(np.percentile(warm, 99.9)), "events": int(n), **cpu}
    finally:
        if c is not None:
            c.close()
        if reader is not None:
            reader.release()
            reader.close()
        stop_processes(procs)
        ctx.namespace.cleanup()


def main(argv) -> int:
    if argv and argv[0] == "--writer":
        return writer_main(float(argv[1]), float(argv[2]))
    if argv and argv[0] == "--saturate":
        return saturate_writer_main(float(argv[1]), float(argv[2]))
    ap = argparse.ArgumentParser(prog="python -m bench dispatch")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-saturation", action="store_true")
    ap.add_argument("--saturation-rate", type=float, default=2e6,
                    help="records/s offered in the saturation run")
    a = ap.parse_args(argv)
    res: dict = {}
    res["raw_copy_eps"] = round(raw_copy_eps(0.5))
    for n in (1, 3, 10):
        r = core_throughput(n, a.seconds)
        res[f"core_eps_to_{n}"] = round(r["eps"])
        print(f"core -> {n:2d} consumers: {r['eps'] / 1e6:.2f} M events/s", file=sys.stderr)
    res["core_to_3_vs_raw_copy"] = round(res["core_eps_to_3"] / res["raw_copy_eps"], 4)
    for size in (1, 10):
        res[f"core_batch_{size}_us"] = round(core_batch_us(size, small=True), 1)
        res[f"core_batch_{size}_vector_us"] = round(core_batch_us(size, small=False), 1)
        print(f"core, one batch of {size:2d}: {res[f'core_batch_{size}_us']} us "
              f"(vector path {res[f'core_batch_{size}_vector_us']} us)", file=sys.stderr)
    if not a.skip_latency:
        for rate, label in ((10_000, "10k"), (100_000, "100k")):
            for direct, name in ((True, "ring_direct"), (False, "latency")):
                r = latency(rate, a.seconds, direct)
                for k in ("p50_us", "p99_us", "p999_us"):
                    res[f"{name}_{label}_{k}"] = round(r[k], 1)
                for k in ("consumer_cores", "dispatch_cores", "consumer_sleeps_per_record",
                          "dispatch_sleeps_per_record"):
                    if k in r:
                        res[f"{name}_{label}_{k}"] = round(r[k], 2)
                print(f"{name} at {label}/s: p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, "
                      f"p99.9 {r['p999_us']:.0f} us", file=sys.stderr)
            res[f"latency_{label}_p99_vs_ring_direct"] = round(
                res[f"latency_{label}_p99_us"] / res[f"ring_direct_{label}_p99_us"], 2)
    if not a.skip_saturation:
        r = saturation(a.saturation_rate, a.seconds)
        for k in ("input_read", "saturated_s", "share_min", *(f"share_{n}" for n in SAT_APPETITE)):
            res[f"saturation_{k}"] = round(r[k], 3)
        print(f"saturation at {a.saturation_rate / 1e6:.1f} M/s offered: read "
              f"{r['input_read']:.0%}, metered {r['saturated_s']:.1f} s, shares "
              + ", ".join(f"{n} {r[f'share_{n}']:.2f}" for n in SAT_APPETITE), file=sys.stderr)
    if a.json:
        print(orjson.dumps(res).decode())
    else:
        for k, v in res.items():
            print(f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
