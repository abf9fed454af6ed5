"""The whole pipeline in a fresh run, watched from outside: what the end-to-end tests
(tests/e2e) and `python -m bench chaos` share.

    with PipelineRun(tmp_dir, rate=50) as run:     # config in tmp, unique run, started
        probe = Probe(run.ctx, "probe", SYMBOLS, VENUES).start_and_wait()
        t = run.kill("ingest.okx")                  # SIGKILL; `run.poll()` restarts it
        run.wait_until(lambda: ..., 20, "books of okx again")
    # stopped: every program ended, `run.left_by_programs` / `run.left_after_stop` say
    # which shared-memory segments outlived them

`PipelineRun.poll()` (called by every `wait_until`) is the launcher's supervision loop:
it restarts what died and stamps when. `Probe` is a consumer on its own thread that
stamps when records arrive. `Operator` speaks to dispatch's control socket as an
operator does (commands for any consumer, listings of all). Times are
`time.monotonic_ns()` unless a name says wall (`time.time_ns()`, comparable with a
record's `ingest_ts_ns`).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import zmq

from channels.names import dispatch_endpoint
from events import HeaderFlag, Kind, PeerGone, Provider, instrument_id
from core import config
from meltica.pipeline import Pipeline
from core.run import RunContext

VENUES = ("binance-spot", "okx")
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
RESYNC_FLAGS = int(HeaderFlag.SNAPSHOT) | int(HeaderFlag.RESYNCED)
# Binance order status at the venue -> ours (events.ExecStatus names)
VENUE_STATUS = {"NEW": "ACK", "PARTIALLY_FILLED": "PARTIAL", "FILLED": "FILLED", "CANCELED": "CANCELLED",
                "EXPIRED": "EXPIRED", "EXPIRED_IN_MATCH": "EXPIRED", "REJECTED": "REJECTED"}


def config_text(*, rate: float, merge_window_ms: int, orders: bool, order_interval_s: float,
                instruments: int = len(SYMBOLS)) -> str:
    """A run configuration for one machine: no metrics port, short merge windows."""
    return (f"[run]\nmetrics_port = 0\norders = {'true' if orders else 'false'}\n"
            f"trade_venues = \"binance-spot\"\n"   # the checks below read Binance spot's order states
            f"venues = \"{','.join(VENUES)}\"\n\n"
            f"[simulator]\nrate = {rate}\ninstruments = {instruments}\n\n"
            f"[dispatch]\nmerge_window_ms = {merge_window_ms}\n\n"
            f"[strategy]\norder_interval_s = {order_interval_s}\n")


class PipelineRun:
    """One `meltica.pipeline.Pipeline` in a fresh run under `root`; a context manager."""

    def __init__(self, root: str | os.PathLike, *, run_id: str | None = None, rate: float = 50.0,
                 merge_window_ms: int = 1000, orders: bool = True, order_interval_s: float = 2.0):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.ctx = RunContext(run_id or f"e2e{uuid.uuid4().hex[:10]}", root / "run")
        self.config_path = root / "meltica.toml"
        self.config_path.write_text(config_text(rate=rate, merge_window_ms=merge_window_ms, orders=orders,
                                                order_interval_s=order_interval_s))
        self.pipeline = Pipeline(config.load(self.config_path), self.ctx, config_path=str(self.config_path))
        self.respawned: dict[str, list[int]] = {}  # program -> when the launcher started it again
        self.left_by_programs: list[str] | None = None
        self.left_after_stop: list[str] | None = None
        self.exit_codes: dict | None = None
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> "PipelineRun":
        try:
            self.pipeline.start()
            self.wait_until(self.ready, timeout_s, "the pipeline to run: every program up, "
                                                   "the monitor receiving books of every venue")
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        p = self.pipeline
        if any(s["state"] != "running" for s in p.launcher.states()):
            return False
        if p.trading and not self.execution_ready():
            return False
        mon = p.monitor
        if mon is None or not mon.subscribed.is_set():
            return False
        counts = mon.snapshot()["counts"]
        return all(counts.get(f"{v}/book", 0) > 0 for v in p.venues)

    def execution_ready(self) -> bool:
        """execution wrote `exec/ready` with the pid it runs under now."""
        try:
            pid = int(self.ctx.path("exec", "ready").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return False
        return pid == self.pipeline.launcher.pid("execution")

    def stop(self) -> None:
        """Stop every program; note what they left in shared memory, then what is left."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.exit_codes = self.pipeline.stop()
            self.left_by_programs = self.pipeline.launcher.left_by_programs
        finally:
            self.pipeline.close()
            self.left_after_stop = self.ctx.namespace.names()
            self.ctx.namespace.cleanup()

    def __enter__(self) -> "PipelineRun":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- supervision -----------------------------------------------------------------

    def poll(self) -> list[str]:
        names = self.pipeline.poll()
        now = time.monotonic_ns()
        for name in names:
            self.respawned.setdefault(name, []).append(now)
        return names

    def wait_until(self, cond, timeout_s: float, what: str, step_s: float = 0.02):
        """Poll (restarting what died) until `cond()` is truthy; return it, or fail saying `what`."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                     f"processes: {self.pipeline.launcher.states()}; logs in {self.ctx.run_dir / 'logs'}")
            time.sleep(step_s)

    def pid(self, name: str) -> int | None:
        return self.pipeline.launcher.pid(name)

    def kill(self, name: str) -> "Kill":
        """SIGKILL program `name` (its whole process group); the next `poll()` restarts it."""
        pid = self.pid(name)
        if pid is None:
            raise AssertionError(f"{name} is not running: {self.pipeline.launcher.states()}")
        k = Kill(name, pid, time.monotonic_ns(), time.time_ns())
        os.killpg(pid, signal.SIGKILL)
        return k

    def wait_respawn(self, k: "Kill", timeout_s: float = 20.0) -> int:
        """Wait until the launcher started `k.name` again; return when (monotonic ns)."""
        def again():
            return next((t for t in self.respawned.get(k.name, []) if t > k.mono_ns), None)
        k.respawned_ns = self.wait_until(again, timeout_s, f"the launcher to restart {k.name}")
        k.new_pid = self.pid(k.name)
        return k.respawned_ns

    # -- what the venue and execution hold ---------------------------------------------

    def venue_get(self, path: str, venue: str = "binance-spot"):
        with urllib.request.urlopen(self.pipeline.endpoints[venue]["rest"] + path, timeout=5) as r:
            return orjson.loads(r.read())

    def venue_orders(self) -> dict:
        """Every order the simulated binance-spot received: {"orders": [...], "received": {cid: n}}."""
        return self.venue_get("/_sim/orders")

    def consumer_id(self, name: str) -> int:
        """The id execution assigned to consumer `name` (-1: none yet)."""
        path = self.ctx.path("exec", "orders.sqlite")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT id FROM consumers WHERE name=?", (name,)).fetchone()
            return row[0] if row else -1
        finally:
            db.close()

    def store_rows(self) -> list[dict]:
        """execution's order store, one dict per order."""
        path = self.ctx.path("exec", "orders.sqlite")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT consumer_id, client_order_id, venue_coid, status, filled, reason, last_exec_seq "
                "FROM orders")]
        finally:
            db.close()


@dataclass
class Kill:
    name: str
    pid: int
    mono_ns: int
    wall_ns: int
    respawned_ns: int = 0
    new_pid: int | None = None
    figures: dict = field(default_factory=dict)


class Operator:
    """dispatch's control socket, used as an operator: any consumer's name, or none."""

    def __init__(self, ctx: RunContext, timeout_s: float = 3.0):
        self.endpoint = dispatch_endpoint(ctx.run_dir)
        self.timeout_s = timeout_s
        self._ctx = zmq.Context.instance()
        self._rid = 0

    def request(self, cmd: str, **fields) -> dict:
        """Send one command, return its result (acks skipped); PeerGone if none in time."""
        self._rid += 1
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.endpoint)
            sock.send(orjson.dumps({"cmd": cmd, "request_id": self._rid, **fields}))
            deadline = time.monotonic() + self.timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sock.poll(int(left * 1000) + 1):
                    raise PeerGone(f"dispatch did not answer {cmd} within {self.timeout_s}s")
                reply = orjson.loads(sock.recv())
                if reply.get("request_id") == self._rid and reply.get("type") == "result":
                    return reply
        finally:
            sock.close(0)

    def consumers(self) -> dict:
        """Every registered consumer's subscriptions ({} while dispatch does not answer)."""
        try:
            return self.request("list_subscriptions").get("consumers") or {}
        except PeerGone:
            return {}


class Probe(threading.Thread):
    """A consumer on its own thread: subscribes to every kind of `symbols` from `providers`
    (and the merged windows of `merged`) and stamps arrivals.

    Kept: per (provider, instrument) the last book's arrival and ingest time, every book
    flagged SNAPSHOT/RESYNCED, the arrival of the first market data after each recovery
    of the SDK (dispatch restarted), counts per (provider, instrument, kind), and every
    break of per-stream order (a seq_provider below or equal to the one before).
    """

    def __init__(self, ctx: RunContext, name: str, symbols=SYMBOLS, providers=VENUES, merged=("BTC-USDT",)):
        super().__init__(name=f"probe-{name}", daemon=True)
        self.ctx, self.consumer_name = ctx, name
        self.symbols, self.providers, self.merged = list(symbols), list(providers), list(merged)
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.error: BaseException | None = None
        self.counts: dict[tuple[int, int, int], int] = {}
        self.last_book: dict[tuple[int, int], tuple[int, int]] = {}   # -> (arrival, ingest_ts wall)
        self.flagged: list[tuple[int, int, int, int, int]] = []      # (arrival, ingest_ts, prov, inst, flags)
        self.recovered: list[int] = []           # first market data after recovery n (0: not yet)
        self.last_md_ns = 0
        self.md_total = 0
        self.last_seq: dict[tuple[int, int, int], int] = {}
        self.disorder: dict[str, int] = {}       # "backwards" / "repeated" -> records
        self.disorder_samples: list[dict] = []   # the first few, with their stream
        self.phase = "start"                     # set by the caller: what happens now

    def run(self) -> None:
        from consumer import Consumer

        try:
            c = None
            deadline = time.monotonic() + 30
            while c is None:
                try:
                    c = Consumer(self.consumer_name, self.ctx, timeout_s=2.0)
                except PeerGone:
                    if time.monotonic() > deadline or self._halt.is_set():
                        raise
            try:
                for s in self.symbols:
                    assert c.subscribe(s, providers=self.providers).ok
                for s in self.merged:
                    assert c.merged_subscribe(s, self.providers).ok
                self.subscribed.set()
                while not self._halt.is_set():
                    batch = c.events(4096, timeout_s=0.1)
                    if c.recoveries > len(self.recovered):
                        with self._lock:
                            self.recovered += [0] * (c.recoveries - len(self.recovered))
                    if len(batch):
                        self._take(batch, time.monotonic_ns())
            finally:
                c.close()
        except BaseException as err:  # noqa: BLE001 - reported to whoever reads the probe
            self.error = err

    def _take(self, batch: np.ndarray, now: int) -> None:
        md = batch[(batch["provider"] != 0) & (batch["kind"] <= Kind.MERGED)]
        if not len(md):
            return
        with self._lock:
            self.last_md_ns = now
            self.md_total += len(md)
            if self.recovered and self.recovered[-1] == 0:
                self.recovered[-1] = now
            streams = (md["provider"].astype(np.int64) << 40) | (md["instrument"].astype(np.int64) << 8) \
                | md["kind"].astype(np.int64)
            for key in np.unique(streams).tolist():
                recs = md[streams == key]
                p, i, k = key >> 40, (key >> 8) & 0xFFFFFFFF, key & 0xFF
                self.counts[(p, i, k)] = self.counts.get((p, i, k), 0) + len(recs)
                if k != Kind.MERGED:    # re-sent state (REPLAYED: dispatch's last book of a stream) may repeat
                    fresh = recs[(recs["flags"] & int(HeaderFlag.REPLAYED)) == 0]
                    if len(fresh):
                        self._order(p, i, k, fresh["seq_provider"], now)
            for rec in md[md["kind"] == Kind.BOOK]:
                key = (int(rec["provider"]), int(rec["instrument"]))
                self.last_book[key] = (now, int(rec["ingest_ts_ns"]))
                if int(rec["flags"]) & RESYNC_FLAGS:
                    self.flagged.append((now, int(rec["ingest_ts_ns"]), key[0], key[1], int(rec["flags"])))

    def _order(self, p: int, i: int, k: int, seqs: np.ndarray, now: int) -> None:
        """Per-stream order at the consumer: count a seq_provider below (backwards) or equal
        to (repeated) the one before, across every restart."""
        prev = self.last_seq.get((p, i, k))
        allseq = seqs if prev is None else np.concatenate([[prev], seqs])
        d = np.diff(allseq)
        for what, n in (("backwards", int(np.count_nonzero(d < 0))), ("repeated", int(np.count_nonzero(d == 0)))):
            if n:
                self.disorder[what] = self.disorder.get(what, 0) + n
                j = int(np.flatnonzero(d < 0 if what == "backwards" else d == 0)[0])
                if len(self.disorder_samples) < 20:
                    self.disorder_samples.append({"what": what, "provider": _slug(p), "instrument": i,
                                                  "kind": Kind(k).name, "before": int(allseq[j]),
                                                  "seq": int(allseq[j + 1]), "phase": self.phase})
        self.last_seq[(p, i, k)] = int(seqs[-1])

    def start_and_wait(self, timeout_s: float = 30.0) -> "Probe":
        self.start()
        if not self.subscribed.wait(timeout_s):
            raise AssertionError(f"probe {self.consumer_name} did not subscribe: {self.error!r}")
        return self

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    # -- what tests ask ----------------------------------------------------------------

    def resynced_after(self, provider: str, wall_ns: int) -> dict[str, int] | None:
        """When (arrival) the first SNAPSHOT/RESYNCED book of every symbol of `provider`
        ingested after `wall_ns` arrived; None until every symbol has one."""
        p = int(Provider.from_slug(provider))
        out = {}
        with self._lock:
            for arrival, ingest_ts, prov, inst, _ in self.flagged:
                if prov == p and ingest_ts > wall_ns:
                    out.setdefault(inst, arrival)
        if not all(instrument_id(s) in out for s in self.symbols):
            return None
        return {s: out[instrument_id(s)] for s in self.symbols}

    def books_after(self, provider: str, wall_ns: int) -> bool:
        """Books of every symbol of `provider` ingested after `wall_ns` arrived."""
        p = int(Provider.from_slug(provider))
        with self._lock:
            return all(self.last_book.get((p, instrument_id(s)), (0, 0))[1] > wall_ns for s in self.symbols)

    def received_after_recovery(self, n: int) -> int:
        """When market data first arrived after the SDK's n-th recovery (0: not yet)."""
        with self._lock:
            return self.recovered[n - 1] if len(self.recovered) >= n else 0


def _slug(p: int) -> str:
    try:
        return Provider(p).slug
    except ValueError:
        return str(p)


def percentile_ms(samples_ns: list[int], q: float) -> float | None:
    if not samples_ns:
        return None
    return round(float(np.percentile(np.asarray(samples_ns, np.float64), q)) / 1e6, 1)


def sub_unsub_cycle(c, symbol: str, anchor: str, poll, *, after_records: int = 200,
                    timeout_s: float = 20.0) -> dict:
    """Unsubscribe `symbol`, then subscribe it again, on consumer `c` (filter_stale False),
    which also receives `anchor`. Returns what was seen:

    unsub_effect_ns  sending the unsubscribe -> the first record stamped with its result's
                     routing_version or later (from then on the ring holds nothing routed
                     before it)
    leaked           records of `symbol` stamped with that version or later (must be 0)
    sub_effect_ns    sending the subscribe -> the first record of `symbol` stamped with its
                     result's routing_version or later
    `poll()` runs between reads (the supervision loop); AssertionError after `timeout_s`.
    """
    sid = instrument_id(symbol)
    t0 = time.monotonic_ns()
    res = c.unsubscribe(symbol)
    assert res.ok, dict(res)
    rv = res.routing_version
    effect = 0
    after = leaked = 0
    deadline = time.monotonic() + timeout_s
    while after < after_records:
        poll()
        if time.monotonic() > deadline:
            raise AssertionError(f"{anchor} stopped flowing after unsubscribing {symbol}: {after} records")
        batch = c.events(1024, timeout_s=0.05)
        md = batch[(batch["provider"] != 0) & (batch["kind"] <= Kind.MERGED)]
        new = md[md["routing_version"] >= rv]
        if len(new) and not effect:
            effect = time.monotonic_ns() - t0
        leaked += int(np.count_nonzero(new["instrument"] == sid))
        after += len(new)
    t1 = time.monotonic_ns()
    res2 = c.subscribe(symbol)
    assert res2.ok, dict(res2)
    rv2 = res2.routing_version
    sub_effect = 0
    while not sub_effect:
        poll()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {symbol} data after subscribing again (routing_version {rv2})")
        batch = c.events(1024, timeout_s=0.05)
        back = batch[(batch["instrument"] == sid) & (batch["provider"] != 0)
                     & (batch["routing_version"] >= rv2)]
        if len(back):
            sub_effect = time.monotonic_ns() - t1
    return {"unsub_rv": rv, "unsub_effect_ns": effect, "leaked": leaked, "sub_rv": rv2,
            "sub_effect_ns": sub_effect}


__all__ = ["PipelineRun", "Kill", "Operator", "Probe", "VENUES", "SYMBOLS", "RESYNC_FLAGS",
           "VENUE_STATUS", "sub_unsub_cycle", "percentile_ms", "config_text"]
