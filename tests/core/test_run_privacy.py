"""A run's directory and everything in it are its user's alone, whatever the umask; the
run directory alone (MELTICA_RUN_DIR) attaches a process to its run from anywhere; the
Prometheus endpoint listens on loopback only. (The same through real pipeline runs, with
another user trying to get in: tests/e2e/test_privacy.py.)"""

from __future__ import annotations

import os
import stat
import uuid

import pytest

from meltica import __main__ as meltica_main
from meltica.collector import Collector
from meltica.metrics import serve
from core.run import RunContext, RunDirError
from shm.segment import Namespace, Segment

pytestmark = pytest.mark.timeout(30)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_000(monkeypatch):
    """The most careless umask there is; the test's own umask is restored afterwards."""
    for var in ("MELTICA_RUN", "MELTICA_RUN_DIR"):
        monkeypatch.delenv(var, raising=False)
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_joining_a_run_under_umask_000_creates_private_directories_and_files(tmp_path, umask_000):
    ctx = RunContext.from_env("r1", tmp_path / "runs" / "r1")
    assert os.umask(0o077) == 0o077  # from_env set it for the whole process
    assert mode(tmp_path / "runs") == 0o700 and mode(ctx.run_dir) == 0o700  # missing parents too
    cursor = ctx.path("consumers", "deep", "x.exec_seq")
    assert mode(ctx.run_dir / "consumers") == 0o700 and mode(ctx.run_dir / "consumers" / "deep") == 0o700
    cursor.write_text("1\n")
    assert mode(cursor) == 0o600
    assert mode(ctx.run_dir / "run.id") == 0o600


def test_a_run_directory_open_to_other_users_is_refused_with_the_fix(tmp_path, umask_000):
    for m in (0o755, 0o770, 0o777, 0o701):
        d = tmp_path / f"open{m:o}"
        d.mkdir()
        os.chmod(d, m)
        with pytest.raises(RunDirError, match=rf"open to other users \(mode {m:04o}\): `chmod 700 {d}`"):
            RunContext.from_env("r", d)
        with pytest.raises(RunDirError):
            RunContext("r", d).path("exec", "orders.sqlite")
        assert not (d / "exec").exists() and not (d / "run.id").exists()  # nothing written in it


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_run_directory_of_another_user_is_refused(tmp_path, umask_000):
    d = tmp_path / "theirs"
    d.mkdir(0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(RunDirError, match=r"belongs to (nobody \()?uid 65534.*not to this user"):
        RunContext.from_env("r", d)


def test_meltica_run_refuses_an_open_run_directory_before_starting_anything(tmp_path, umask_000, monkeypatch,
                                                                           capsys):
    d = tmp_path / "shared"
    d.mkdir(0o777)
    monkeypatch.setenv("MELTICA_RUN_DIR", str(d))
    assert meltica_main.main(["run", "--run-id", "refused", "--headless", "--duration", "1"]) == 2
    assert f"run directory {d} is open to other users" in capsys.readouterr().err
    assert os.listdir(d) == []


def test_the_run_directory_alone_attaches_a_process_to_its_run_from_any_directory(tmp_path, umask_000,
                                                                               monkeypatch):
    started = RunContext.from_env("run-20261202-070000", tmp_path / "run" / "run-20261202-070000")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MELTICA_RUN_DIR", str(started.run_dir))
    attached = RunContext.from_env()
    assert attached == started and attached.namespace.run == "run-20261202-070000"
    monkeypatch.setenv("MELTICA_RUN", "other")  # an explicit id still wins, and is recorded
    assert RunContext.from_env().run_id == "other"
    monkeypatch.delenv("MELTICA_RUN")
    assert RunContext.from_env().run_id == "other"


def test_a_ring_segment_is_its_creators_alone_under_umask_000(umask_000):
    ns = Namespace(f"priv{uuid.uuid4().hex[:8]}")
    seg = Segment.create(ns.path("ring"), 4096)
    try:
        assert mode(seg.path) == 0o600
        seg.commit()
        assert mode(ns.path("ring")) == 0o600
    finally:
        seg.close()
        ns.cleanup()


def test_the_prometheus_endpoint_listens_on_loopback_only_by_default(tmp_path):
    col = Collector(f"ipc://{tmp_path}/tel.sock")
    server, _ = serve(col, 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
        col.close()
