"""Fixtures of the bridge tests: real NATS servers from the wheel, two runs ("hosts").

- `nats_node`: one nats-server with JetStream on loopback; stopped and its store removed
  at teardown, also when the test failed.
- `nats_cluster`: three routed nodes with JetStream (streams with replicas=3); the same.
- `hosts`: two runs (namespaces, run directories) that share nothing but NATS: the
  execution host's and the consumer host's; every segment of both removed at teardown.
- `secured`: one node with the users and permissions of `bridge.config` (consumers a, b).
- `spawn(ctx, reap, module, *args)`: a program of run `ctx`, in its own process group;
  `auth_args(ctx, user, passwords)` its --user/--password-file; `as_user` a raw client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import nats
import orjson
import pytest

from bridge.config import ROLES, authorization, inbox_prefix
from bridge.servers import NatsCluster, NatsNode
from core.run import RunContext
from tests.conftest import REPO


@pytest.fixture
def nats_node(tmp_path):
    node = NatsNode.start(tmp_path / "nats")
    try:
        yield node
    finally:
        node.stop()
        node.remove_store()


@pytest.fixture
def nats_cluster(tmp_path):
    cluster = NatsCluster.start(tmp_path / "nats")
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.remove_store()


@pytest.fixture
def secured(tmp_path):
    passwords = {u: uuid.uuid4().hex for u in (*ROLES, "a", "b")}
    node = NatsNode.start(tmp_path / "nats", extra=authorization(["a", "b"], passwords))
    try:
        yield node, passwords
    finally:
        node.stop()
        node.remove_store()


@pytest.fixture
def hosts(tmp_path):
    made = []
    for name in ("exech", "consh"):
        ctx = RunContext(f"{name}{uuid.uuid4().hex[:8]}", tmp_path / name)
        ctx.ensure_dir()
        made.append(ctx)
    try:
        yield made
    finally:
        for ctx in made:
            ctx.namespace.cleanup()


def spawn(ctx, reap, module: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, **ctx.env(), "PYTHONPATH": str(REPO)}
    with open(ctx.path("logs", f"{module.rsplit('.', 1)[-1]}-{args[0] if args else ''}.log"), "ab") as log:
        p = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=REPO, stdout=log,
                             stderr=log, start_new_session=True)
    reap.append(p)
    return p


def kill(p: subprocess.Popen) -> None:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)


def wait_until(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def auth_args(ctx, user: str, passwords: dict) -> list[str]:
    pw = ctx.path("bridge", f"{user}.password")
    pw.write_text(passwords[user] + "\n")
    return ["--user", user, "--password-file", str(pw)]


async def as_user(url, user, passwords, **kw):
    errors: list[str] = []

    async def on_error(e):
        errors.append(str(e))

    nc = await nats.connect(url, user=user, password=passwords[user], error_cb=on_error,
                            inbox_prefix=inbox_prefix(user) if user not in ROLES else "_INBOX", **kw)
    return nc, errors


async def raw_request(nc, subject: str, body: dict, timeout: float = 3.0):
    try:
        return orjson.loads((await nc.request(subject, orjson.dumps(body), timeout=timeout)).data)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return None
