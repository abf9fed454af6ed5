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

from channels.journal import JournalReader
from channels.names import journal_path
from consumer.orders import OrderClient
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

    venue: str | None = None   # --venue (None: execution's default, binance-spot)

    def venue_args(self) -> list[str]:
        """The flags before the caller's: the venue (if set) and its endpoints on the simulator."""
        ep = self.sim.endpoints[self.venue or VENUE]
        return [*(["--venue", self.venue] if self.venue else []), "--rest-url", ep["rest"], "--ws-url", ep["ws"]]

    def start(self, timeout_s: float = 20.0) -> "ExecProc":
        env = {**os.environ, **self.ctx.env(), "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "execution", *self.venue_args(), *self.args],
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


def gap_free(ctx, reports, first: int = 1) -> list[int]:
    """The exec_seqs of a consumer's `reports`, checked gap-free: strictly increasing from
    `first`, every exec_seq they skip an ACCOUNT record of the journal (the account is on the
    exec channel too, applied by the SDK to `account()`, not handed out as a report)."""
    seqs = [int(r["exec"]["exec_seq"]) for r in reports]
    assert seqs == sorted(set(seqs)) and (not seqs or seqs[0] >= first), seqs
    if not seqs:
        return seqs
    j = JournalReader(journal_path(ctx.run_dir))
    try:
        recs = j.read(first, seqs[-1] - first + 1)
    finally:
        j.close()
    mine = set(seqs)
    kinds = {int(r["exec"]["exec_seq"]): Kind(int(r["kind"])) for r in recs}
    assert sorted(kinds) == list(range(first, seqs[-1] + 1))
    skipped = {s: k for s, k in kinds.items() if s not in mine}
    assert all(k is Kind.ACCOUNT for k in skipped.values()), f"reports missing: {skipped}"
    assert all(kinds[s] is Kind.EXEC_REPORT for s in mine)
    return seqs
