"""Real processes for execution tests: the simulator (in-process), `python -m execution`
(a subprocess in its own session), and order clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from consumer.orders import OrderClient
from channels import names as channel_names
from channels.journal import JournalReader
from events import ExecStatus, Kind

REPO = Path(__file__).resolve().parents[2]
VENUE = "binance-spot"


class Consumer:
    """The smallest object OrderClient accepts: a name and a trading switch."""

    def __init__(self, name: str, trading_enabled: bool = True):
        self.name = name
        self.trading_enabled = trading_enabled


def rest_get(sim, path: str):
    with urllib.request.urlopen(sim.endpoints[VENUE]["rest"] + path, timeout=5) as r:
        return orjson.loads(r.read())


def sim_orders(sim) -> dict:
    """Every order the venue received: {"orders": [...], "received": {cid: n}, ...}."""
    return rest_get(sim, "/_sim/orders")


def top(sim, symbol: str = "BTCUSDT") -> tuple[tuple[str, str], tuple[str, str]]:
    d = rest_get(sim, f"/api/v3/depth?symbol={symbol}&limit=5")
    return tuple(d["bids"][0]), tuple(d["asks"][0])


class ExecProc:
    """`python -m execution` against the simulator, in the run of `ctx`."""

    def __init__(self, ctx, sim, reap: list, *args: str):
        self.ctx, self.sim, self.reap, self.args = ctx, sim, reap, list(args)
        self.proc: subprocess.Popen | None = None
        self.log = ctx.path("exec", "process.log")

    def start(self, timeout_s: float = 20.0) -> "ExecProc":
        ep = self.sim.endpoints[VENUE]
        env = {**os.environ, **self.ctx.env(), "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "execution", "--rest-url", ep["rest"], "--ws-url", ep["ws"], *self.args],
                env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        self.reap.append(self.proc)
        ready = self.ctx.run_dir / "exec" / "ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"execution exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if ready.read_text().split()[0] == str(self.proc.pid):
                    return self
            except (FileNotFoundError, IndexError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"execution not ready in {timeout_s}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def client(ctx, name: str = "c1", **kw) -> OrderClient:
    oc = OrderClient(Consumer(name, kw.pop("trading_enabled", True)), run=ctx, **kw)
    oc.hello()
    return oc


def statuses(reports) -> list[str]:
    return [ExecStatus(int(r["exec"]["status"])).name for r in reports]


def collect(oc: OrderClient, until, timeout_s: float = 10.0, got: list | None = None) -> list:
    """Poll reports (copies) into `got` until `until(got)` is true; fail after `timeout_s`."""
    got = [] if got is None else got
    deadline = time.monotonic() + timeout_s
    while not until(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; reports so far: {[(r['exec']['client_order_id'], s) for r, s in zip(got, statuses(got))]}")
        got.extend(r.copy() for r in oc.poll_reports(timeout_s=0.2))
    return got


def assert_journal_order(ctx, got) -> None:
    """The exec reports a consumer got are exactly its own reports in the exec journal, once
    each and in order, from the first to the last one it got; and the journal's exec_seq is
    gap-free.
    (A consumer's own exec_seq has gaps where other consumers' reports and the venues'
    ACCOUNT records stand in the one sequence.)"""
    seqs = [int(r["exec"]["exec_seq"]) for r in got]
    if not seqs:
        return
    consumer_id = int(got[0]["consumer_id"])
    reader = JournalReader(channel_names.journal_path(ctx.run_dir))
    try:
        recs = reader.read(1, seqs[-1])
    finally:
        reader.close()
    assert [int(s) for s in recs["exec"]["exec_seq"]] == list(range(1, seqs[-1] + 1))
    mine = (recs["kind"] == Kind.EXEC_REPORT) & (recs["consumer_id"] == consumer_id) \
        & (recs["exec"]["exec_seq"] >= seqs[0])
    assert seqs == [int(s) for s in recs["exec"]["exec_seq"][mine]]


def own_journaled(journal: JournalReader, consumer_id: int):
    """The journal's records that are this consumer's exec reports, in order (the journal
    also holds other consumers' reports and the venues' ACCOUNT records); the journal's
    exec_seq is checked gap-free on the way."""
    last = journal.last_seq()
    recs = journal.read(1, last)
    assert [int(s) for s in recs["exec"]["exec_seq"]] == list(range(1, last + 1))
    return recs[(recs["kind"] == Kind.EXEC_REPORT) & (recs["consumer_id"] == consumer_id)]


def of(reports, coid: str) -> list:
    return [r for r in reports if r["exec"]["client_order_id"] == coid.encode()]


def terminal(coid: str):
    """A `collect` condition: `coid` reached a terminal status."""
    return lambda got: any(ExecStatus(int(r["exec"]["status"])).terminal for r in of(got, coid))
