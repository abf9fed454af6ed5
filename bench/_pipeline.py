"""The benchmark harness of the whole pipeline, shared by `bench e2e` and `bench soak`.

  PipelineRun       one fresh pipeline (meltica.pipeline.Pipeline on the simulator) in a
                    namespace and a temporary run directory of its own, stopped and cleaned
                    up by close(); its telemetry snapshots and the simulator's /_sim/stats
  Receiver          the benchmark consumer: every kind of every instrument of every venue,
                    latency per record (now - ingest_ts_ns, now - event_ts_ns), per-stream
                    order and duplicate checks
  drain             after the ingests stop: read until dispatch's count of what it
                    delivered equals what the Receiver got
  counters / drops / sim_sent   telemetry and simulator figures between two readings
  CpuWindow, cpu_ticks, machine_busy_pct, quiet, loadavg   /proc figures of a window
  symbols_for / config_text / code_state   the run's instruments, its TOML, the commit measured
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import orjson

from bench.common import log

VENUES = ("binance-spot", "okx")
MD_KINDS = (1, 2, 3)  # Kind.BOOK, TRADE, TICKER
RESET = 1 | 2 | 4     # HeaderFlag.SNAPSHOT | RESYNCED | REPLAYED (a stream restarts, or state re-sent)
REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def symbols_for(n: int) -> list[str]:
    from simulator.instruments import default_instruments
    return [i.canonical for i in default_instruments(n)]


def config_text(symbols: list[str], rate: float, demo_symbols: str = "BTC-USDT",
                ring_capacity: int = 16384, venues=VENUES, extra: str = "") -> str:
    """The run configuration of one step (merged over core/defaults.toml); `extra`: more tables."""
    syms = ",".join(symbols)
    ingest = "".join(f'\n[ingest.{v}]\nsymbols = "{syms}"\nring_capacity = {ring_capacity}\n'
                     f"status_interval = 1\n" for v in venues)
    return (f'[run]\nmetrics_port = 0\norders = true\nvenues = "{",".join(venues)}"\n'
            f'trade_venues = "binance-spot"\n\n[simulator]\nvenues = "{",".join(venues)}"\n'
            f"instruments = {len(symbols)}\nrate = {rate}\nseed = 1\n{ingest}\n"
            f'[dispatch]\ninstruments = "{syms}"\nring_capacity = {ring_capacity}\n\n'
            f'[strategy]\nsymbols = "{demo_symbols}"\nmerged = "BTC-USDT"\n{extra}')


# -- process figures (/proc) --------------------------------------------------------------

def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (/proc/stat)."""
    with open("/proc/stat", "rb") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class CpuWindow:
    """CPU % per process (and of the machine) between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.c0 = {n: cpu_ticks(p) for n, p in self.pids.items()}
        self.m0 = machine_ticks()

    def stop(self) -> dict:
        dt = time.monotonic() - self.t0
        out = {}
        for n, p in self.pids.items():
            c1 = cpu_ticks(p)
            if c1 is not None and self.c0.get(n) is not None:
                out[n] = round(100.0 * (c1 - self.c0[n]) / TICKS / dt, 1)
        b1, t1 = machine_ticks()
        ncpu = os.cpu_count() or 1
        out["machine_busy"] = round(100.0 * ncpu * (b1 - self.m0[0]) / max(1, t1 - self.m0[1]), 1)
        out["others"] = round(out["machine_busy"] - sum(v for k, v in out.items() if k != "machine_busy"), 1)
        return out


# -- the pipeline of one step ---------------------------------------------------------------

class PipelineRun:
    """A `Pipeline` with this step's configuration, in a temporary run directory."""

    def __init__(self, symbols: list[str], rate: float, tag: str, demo_symbols: str = "BTC-USDT",
                 ring_capacity: int = 16384, venues=VENUES, extra: str = ""):
        from core import config
        from meltica.pipeline import Pipeline
        from core.run import RunContext

        self.symbols = symbols
        self.tmp = Path(tempfile.mkdtemp(prefix=f"meltica-{tag}-"))
        cfg_path = self.tmp / "run.toml"
        cfg_path.write_text(config_text(symbols, rate, demo_symbols, ring_capacity, venues, extra))
        self.ctx = RunContext(f"bench-{tag}-{uuid.uuid4().hex[:8]}", self.tmp / "run")
        self.pipeline = Pipeline(config.load(cfg_path), self.ctx, config_path=str(cfg_path))
        self.pipeline.venues = sorted(venues)  # not also those of core/defaults.toml
        self.stopped = False

    def start(self) -> None:
        self.pipeline.start()
        mon = self.pipeline.monitor
        if mon is not None:  # a second consumer in our process would share our GIL
            mon.stop()

    def pids(self) -> dict[str, int]:
        out = {s["name"]: s["pid"] for s in self.pipeline.launcher.states() if s["pid"]}
        out["bench"] = os.getpid()
        return out

    def sim_stats(self, timeout_s: float = 30.0) -> dict:
        """Every simulated venue's counters (GET /_sim/stats; slow when its loop is saturated)."""
        out = {}
        for venue, ep in self.pipeline.endpoints.items():
            with urllib.request.urlopen(ep["rest"] + "/_sim/stats", timeout=timeout_s) as r:
                out[venue] = orjson.loads(r.read())
        return out

    def snapshots(self) -> dict:
        return self.pipeline.collector.snapshots() if self.pipeline.collector else {}

    def stop_program(self, name: str) -> None:
        """SIGTERM one program (it is not restarted: we never call `poll()` after this)."""
        pid = self.pipeline.launcher.pid(name)
        if pid:
            os.killpg(pid, signal.SIGTERM)

    def states(self) -> dict[str, str]:
        return {s["name"]: s["state"] for s in self.pipeline.launcher.states()}

    def log_tails(self, lines: int = 15) -> None:
        """The end of every program's log, to stderr (when a step failed)."""
        for path in sorted((self.ctx.run_dir / "logs").glob("*.log")):
            tail = path.read_bytes().decode(errors="replace").splitlines()[-lines:]
            log(f"--- {path.name}\n" + "\n".join(tail))

    def stop(self, failed: bool = False) -> list[str]:
        """Stop every program; return the run's segments left in /dev/shm (should be none)."""
        if self.stopped:
            return []
        self.stopped = True
        if failed:
            self.log_tails()
        try:
            mon = self.pipeline.monitor
            if mon is not None:
                mon.join(5)
            self.pipeline.stop()
        finally:
            self.pipeline.close()
        left = self.ctx.namespace.names()
        self.ctx.namespace.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return left


def counters(snaps: dict) -> dict[str, float]:
    """Every counter and gauge of every process as 'process/key' -> value."""
    out = {}
    for proc, snap in snaps.items():
        for kind in ("counters", "gauges"):
            for key, value in snap.get(kind, {}).items():
                out[f"{proc}/{key}"] = value
    return out


def drops(c0: dict, c1: dict, consumer: str = "bench") -> dict:
    """Loss and drop figures between two `counters()` readings (counter deltas, gauge levels)."""
    def delta(pred) -> int:
        return int(sum(v - c0.get(k, 0) for k, v in c1.items() if pred(k)))

    return {
        "md_ring_lost": delta(lambda k: k.startswith("dispatch/ingest.lost")),
        "coalesced": delta(lambda k: k == f"dispatch/fanout.coalesced{{consumer={consumer}}}"),
        "trades_dropped": delta(lambda k: k.startswith(f"dispatch/fanout.dropped{{consumer={consumer},")),
        "coalesced_demo": delta(lambda k: k == "dispatch/fanout.coalesced{consumer=demo}"),
        # late at the ordering stage: market data dropped; late at the merge stage: fragments
        # of a merged window (LM-05), the plain streams are not affected
        "late_dropped": delta(lambda k: k == "dispatch/late_event.dropped{stage=order}"),
        "late_merge_dropped": delta(lambda k: k == "dispatch/late_event.dropped{stage=merge}"),
        "dedup_dropped": delta(lambda k: k == "dispatch/dedup.dropped"),
        "gap_unresolved": delta(lambda k: k == "dispatch/order.gap_unresolved"),
        "resyncs": delta(lambda k: "/book.resync{" in k),
        "resyncs_not_refresh": delta(lambda k: "/book.resync{" in k and "reason=refresh" not in k),
        "reconnects": delta(lambda k: "/ws.reconnect" in k),
        # dispatch's own view: time it judged itself saturated (and metered fan-out), and
        # time this consumer's outlet held records back (backlog or fair share)
        "dispatch_saturated_s": round(delta(lambda k: k == "dispatch/dispatch.saturated_ns") / 1e9, 2),
        "throttled_s": round(delta(lambda k: k == f"dispatch/fanout.throttled_ns{{consumer={consumer}}}") / 1e9, 2),
    }


def sim_sent(stats: dict) -> tuple[int, int, int]:
    """(market-data frames sent, market steps, slow-client disconnects) over every venue."""
    sent = sum(sum(v.get("messages", {}).values()) for k, v in stats.items() if k in VENUES)
    steps = max(v.get("market", {}).get("steps", 0) for v in stats.values())
    slow = sum(v.get("slow_disconnects", 0) for v in stats.values())
    return sent, steps, slow


# -- the benchmark consumer -----------------------------------------------------------------

class Receiver:
    """A `consumer.Consumer` subscribed to everything, checking what it gets.

    `poll()` reads one batch: per-stream order and duplicates are always checked;
    latencies are kept while `recording`.
    """

    def __init__(self, ctx, symbols: list[str], name: str = "bench", patience_s: float = 60.0,
                 keep_ids: bool = True):
        from consumer import Consumer
        from events import PeerGone

        deadline = time.monotonic() + patience_s
        while True:
            try:
                self.c = Consumer(name, ctx, timeout_s=3.0)
                break
            except (PeerGone, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for s in symbols:
            res = self.c.subscribe(s)
            if not res.ok:
                raise SystemExit(f"subscribe {s} refused: {dict(res)}")
        self.keep_ids = keep_ids
        self.last: dict[int, int] = {}
        self.seen_books: set[tuple[int, int]] = set()
        self.total = 0            # every record, critical ones included (dispatch's count)
        self.md = 0
        self.out_of_order = 0
        self.resets = 0
        self.recording = False
        self._ing: list[np.ndarray] = []
        self._ven: list[np.ndarray] = []
        self._v2i: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._t_ids: list[np.ndarray] = []
        self._sk: list[np.ndarray] = []

    def poll(self, timeout_s: float = 0.01) -> int:
        b = self.c.events(8192, timeout_s=timeout_s)
        now = time.time_ns()
        n = len(b)
        if not n:
            return 0
        self.total += n
        kind = b["kind"]
        md = b[(b["provider"] != 0) & (kind >= MD_KINDS[0]) & (kind <= MD_KINDS[-1])]
        if not len(md):
            return n
        self.md += len(md)
        self._check_order(md)
        if not self.recording and len(self.seen_books) < 10_000:  # the warm-up's question
            bk = md[md["kind"] == MD_KINDS[0]]
            self.seen_books.update(zip(bk["provider"].tolist(), bk["instrument"].tolist()))
        if self.recording:
            self._ing.append(now - md["ingest_ts_ns"])
            ev = md["event_ts_ns"]
            has = ev != 0
            self._ven.append(now - ev[has])
            self._v2i.append(md["ingest_ts_ns"][has] - ev[has])
            if self.keep_ids:
                self._ids.append(md["event_id"].copy())
                self._t_ids.append(np.full(len(md), now, np.int64))
                self._sk.append((md["provider"].astype(np.int64) << 8) | md["kind"])
        return n

    def _check_order(self, md: np.ndarray) -> None:
        key = (md["provider"].astype(np.int64) << 48) | (md["kind"].astype(np.int64) << 32) | \
            md["instrument"].astype(np.int64)
        order = np.argsort(key, kind="stable")
        k, s = key[order], md["seq_provider"][order]
        reset = (md["flags"][order] & RESET) != 0
        self.resets += int(reset.sum())
        same = k[1:] == k[:-1]
        bad = same & (s[1:] <= s[:-1]) & ~reset[1:]
        self.out_of_order += int(bad.sum())
        starts = np.flatnonzero(np.r_[True, ~same])
        ends = np.r_[starts[1:], len(k)]
        last = self.last
        for i, j, kk in zip(starts.tolist(), ends.tolist(), k[starts].tolist()):
            prev = last.get(kk)
            if prev is not None and s[i] <= prev and not reset[i]:
                self.out_of_order += 1
            last[kk] = int(s[j - 1])

    def take(self) -> dict:
        """The recorded samples (ns arrays); recording stops."""
        self.recording = False
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
        out = {"ingest": cat(self._ing), "venue": cat(self._ven), "venue_to_ingest": cat(self._v2i),
               "ids": cat(self._ids).astype(np.uint64), "t": cat(self._t_ids), "sk": cat(self._sk)}
        self._ing, self._ven, self._v2i, self._ids, self._t_ids, self._sk = [], [], [], [], [], []
        return out

    def close(self) -> None:
        self.c.close()


def drain(run: PipelineRun, rx: Receiver, patience_s: float = 15.0) -> int | None:
    """After the ingests stop: read until dispatch's count of what it delivered to us
    (its telemetry, published every second) equals what we received, for a second."""
    key = "dispatch/fanout.delivered{consumer=bench}"
    deadline = time.monotonic() + patience_s
    agree_since = None
    while time.monotonic() < deadline:
        rx.poll(0.05)
        if counters(run.snapshots()).get(key) == rx.total:
            agree_since = agree_since or time.monotonic()
            if time.monotonic() - agree_since > 1.2:
                break
        else:
            agree_since = None
    return counters(run.snapshots()).get(key)


def code_state() -> dict:
    """The commit measured, and the files that differed from it (a shared working tree)."""
    def git(*args) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit and (REPO / "COMMIT").exists():  # an export (`git archive`) of one commit
        return {"commit": (REPO / "COMMIT").read_text().strip(), "modified": [], "export": str(REPO)}
    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": commit, "modified": dirty}


def machine_busy_pct(seconds: float = 1.0) -> float:
    """CPU the whole machine uses now (100 = one core): between steps, that is others' work."""
    b0, t0 = machine_ticks()
    time.sleep(seconds)
    b1, t1 = machine_ticks()
    return round(100.0 * (os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0), 1)


def quiet(wait_s: float, threshold: float = 25.0) -> float:
    """Wait (up to `wait_s`) until the machine is quieter than `threshold`; return its busy %."""
    busy = machine_busy_pct()
    deadline = time.monotonic() + wait_s
    while busy > threshold and time.monotonic() < deadline:
        log(f"e2e: machine busy {busy:.0f}% (others' work); waiting")
        busy = machine_busy_pct(2.0)
    return busy
