"""Exec reports across hosts through real NATS, with SIGKILLs under load: nothing lost, nothing twice.

The execution host runs a stand-in execution process (the real journal + exec ring
writer) and `bridge exec-out`; the consumer host runs `bridge exec-in`; the consumer
there reads with the real SDK (consumer.orders.OrderClient, journal + ring). Whatever
is killed, and however often, the consumer ends with exec_seq 1..N exactly once, each
report byte for byte the execution host's.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from channels.journal import JournalReader
from channels.names import journal_path
from consumer.orders import OrderClient

from .conftest import kill, spawn

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
