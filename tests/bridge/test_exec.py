"""Exec reports across hosts through real NATS, with SIGKILLs under load: nothing lost, nothing twice.

The execution host runs a stand-in execution process (the real journal + exec ring
writer) and `bridge exec-out`; the consumer host runs `bridge exec-in`; the consumer
there reads with the real SDK (consumer.orders.OrderClient, journal + ring). Whatever
is killed, and however often (the bridges, a NATS node of three, execution itself, the
consumer process), the consumer ends with its reports exactly once, each byte for byte
the execution host's: every report (a host's exec-in) or only its own (per-consumer
subjects and NATS users, `exec-in --consumer`), and there the ACCOUNT records too (every
consumer's: the SDK's `account()` on the consumer's host is the execution host's).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from channels.journal import JournalReader
from channels.names import journal_path
from consumer.orders import OrderClient
from events import EVENT, Kind, Provider
from events.records import RECORD_BYTES

from .conftest import auth_args, kill, spawn, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(150)]

N = 3000
RATE = "1500"


def read_all(client: OrderClient, got: list, n: int, until_s: float) -> None:
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline and (not got or got[-1]["exec"]["exec_seq"] < n):
        out = client.poll_reports(max_n=512, timeout_s=0.05)
        got.extend(out)


def check_exactly_once(exec_ctx, got: list) -> None:
    seqs = np.array([int(r["exec"]["exec_seq"]) for r in got])
    assert len(seqs) == N, f"got {len(seqs)} reports, want {N}"
    assert (seqs == np.arange(1, N + 1)).all(), "lost, duplicated or out of order"
    src = JournalReader(journal_path(exec_ctx.run_dir))
    try:
        want = src.read(1, N)
    finally:
        src.close()
    assert b"".join(r.tobytes() for r in got) == want.tobytes(), "a report changed on the way"


def run_chaos(hosts, reap, nats_args: list[str], kills) -> None:
    exec_ctx, cons_ctx = hosts
    spawn(exec_ctx, reap, "tests.bridge.exec_writer", str(N), RATE)
    out = spawn(exec_ctx, reap, "bridge", "exec-out", *nats_args)
    inn = spawn(cons_ctx, reap, "bridge", "exec-in", "--nats", nats_args[1])
    client = OrderClient(SimpleNamespace(name="c1"), run=cons_ctx, monitor_all=True, resume_from=0)
    got: list = []
    try:
        for at, action in kills:
            read_all(client, got, at, 60)
            assert got and got[-1]["exec"]["exec_seq"] >= at, f"stalled at {len(got)} before {action}"
            if action == "exec-out":
                kill(out)
                out = spawn(exec_ctx, reap, "bridge", "exec-out", *nats_args)
            elif action == "exec-in":
                kill(inn)
                inn = spawn(cons_ctx, reap, "bridge", "exec-in", "--nats", nats_args[1])
            else:
                action()
        read_all(client, got, N, 90)
        check_exactly_once(exec_ctx, got)
    finally:
        client.close()


def test_exec_reports_survive_bridge_kills(nats_node, hosts, reap):
    run_chaos(hosts, reap, ["--nats", nats_node.url],
              [(500, "exec-out"), (1200, "exec-in"), (2000, "exec-out"), (2001, "exec-in")])


def test_exec_reports_survive_a_nats_node_kill_with_replicas_3(nats_cluster, hosts, reap):
    urls = ",".join(nats_cluster.urls)
    state = {}

    def kill_node():
        state["t"] = time.monotonic()
        nats_cluster.kill(0)

    def restart_node():
        nats_cluster.restart(0)

    run_chaos(hosts, reap, ["--nats", urls, "--replicas", "3"],
              [(600, kill_node), (1200, "exec-out"), (1800, restart_node), (2200, "exec-in")])


def test_a_remote_consumer_gets_its_reports_once_through_kills_of_execution_bridges_and_itself(
        secured, hosts, reap, tmp_path):
    """Per-consumer subjects and users; execution, both bridges and the consumer SIGKILLed under load.
    Consumer a's host gets a's reports and every ACCOUNT record, in place; b's are placeholders."""
    node, passwords = secured
    exec_ctx, cons_ctx = hosts
    mine = tmp_path / "a.reports"
    a_seqs = np.array([s for s in range(2, N + 1, 2) if s % 10], np.int64)  # exec_writer: a (id 1) has the
    want = len(a_seqs)                                                        # even ones, every 10th is ACCOUNT

    def start(what: str):
        if what == "execution":
            return spawn(exec_ctx, reap, "tests.bridge.exec_writer", str(N), "500")
        if what == "exec-out":
            return spawn(exec_ctx, reap, "bridge", "exec-out", "--nats", node.url,
                         *auth_args(exec_ctx, "execution", passwords))
        if what == "exec-in":
            return spawn(cons_ctx, reap, "bridge", "exec-in", "--nats", node.url, "--consumer", "a",
                         *auth_args(cons_ctx, "a", passwords))
        return spawn(cons_ctx, reap, "tests.bridge.exec_reader", "a", "1", str(mine))

    procs = {w: start(w) for w in ("execution", "exec-out", "exec-in", "consumer")}
    progress = lambda: mine.stat().st_size // RECORD_BYTES if mine.exists() else 0  # noqa: E731
    for at, victims in ((150, ["execution"]), (300, ["consumer"]), (450, ["exec-out"]), (600, ["exec-in"]),
                        (750, ["execution", "exec-out"]), (900, ["consumer", "exec-in"])):
        wait_until(lambda: progress() >= at, 60, f"{at} reports at the consumer before killing {victims}")
        for w in victims:
            kill(procs[w])
        for w in victims:
            procs[w] = start(w)
    wait_until(lambda: progress() >= want, 90, f"all {want} reports of consumer a")
    kill(procs["consumer"])
    client = OrderClient(SimpleNamespace(name="a"), run=cons_ctx, monitor_all=True, resume_from=0)
    try:  # the SDK on a's host reads the whole journal (the last record, exec_seq N, is ACCOUNT)
        deadline = time.monotonic() + 60
        while client.next_seq <= N:
            assert time.monotonic() < deadline, f"the SDK on a's host stalled before exec_seq {client.next_seq}"
            client.poll_reports(max_n=512, timeout_s=0.05)
        usdt = client.account(Provider(1)).balances["USDT"]
        assert (usdt.free_m, usdt.scale) == (N, 8), "the account on a's host is not the last balance"
    finally:
        client.close()
    got = np.frombuffer(mine.read_bytes(), EVENT)
    src = JournalReader(journal_path(exec_ctx.run_dir))
    try:
        theirs = src.read(1, N)
    finally:
        src.close()
    seqs = got["exec"]["exec_seq"].astype(np.int64)
    assert len(got) == want and (seqs == a_seqs).all(), "lost, duplicated or out of order"
    reports = theirs["kind"] == Kind.EXEC_REPORT
    assert got.tobytes() == theirs[reports & (theirs["consumer_id"] == 1)].tobytes(), "a report changed on the way"
    local = JournalReader(journal_path(cons_ctx.run_dir))
    try:
        here = local.read(1, N)
    finally:
        local.close()
    assert len(here) == N and (here["exec"]["exec_seq"] == np.arange(1, N + 1)).all()
    account = theirs["kind"] == Kind.ACCOUNT
    assert account.sum() == N // 10 and (here["kind"] == Kind.ACCOUNT).sum() == N // 10
    assert here[account].tobytes() == theirs[account].tobytes(), "an ACCOUNT record missing or changed at a's host"
    assert not (here["consumer_id"] == 2).any(), "consumer b's reports reached a's host"
    b = reports & (theirs["consumer_id"] == 2)
    assert (here[b]["consumer_id"] == 0).all() and not here[b]["exec"]["client_order_id"].any(), \
        "b's exec_seqs are placeholders on a's host"


@pytest.mark.timeout(60)
def test_a_stream_with_other_subjects_is_a_configuration_error(nats_node, hosts):
    """A stream of an older layout (one subject for every consumer) would swallow nothing:
    exec-out says so and exits with EX_CONFIG, not restarted by supervisord."""
    import asyncio
    import os
    import subprocess
    import sys

    import nats
    from nats.js.api import StreamConfig

    from core.config import EX_CONFIG
    from tests.conftest import REPO

    async def old_stream():
        nc = await nats.connect(nats_node.url)
        try:
            await nc.jetstream().add_stream(StreamConfig(name="EXEC", subjects=["exec.reports"]))
        finally:
            await nc.close()

    asyncio.run(old_stream())
    exec_ctx, _ = hosts
    p = subprocess.run([sys.executable, "-m", "bridge", "exec-out", "--nats", nats_node.url], cwd=REPO,
                       env={**os.environ, **exec_ctx.env(), "PYTHONPATH": str(REPO)}, capture_output=True, timeout=40)
    assert p.returncode == EX_CONFIG, p.stderr.decode()[-2000:]
    assert b"stream EXEC has subjects ['exec.reports']" in p.stderr
