"""Fixtures shared by every test package.

- `run_ctx`: a fresh run (unique shared-memory namespace, run directory under tmp);
  every segment of the run is removed at teardown, also when the test failed.
- `shared_data`: the path of ../shared/data, or a skip saying it is absent.
- `reap`: a list to append subprocess.Popen objects to; they are killed at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from core.run import RunContext

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def run_ctx(tmp_path, monkeypatch):
    ctx = RunContext(f"t{uuid.uuid4().hex[:10]}", tmp_path / "run")
    ctx.ensure_dir()  # 0700, as its programs require
    monkeypatch.setenv("MELTICA_RUN", ctx.run_id)
    monkeypatch.setenv("MELTICA_RUN_DIR", str(ctx.run_dir))
    try:
        yield ctx
    finally:
        ctx.namespace.cleanup()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"recorded venue data not found at {SHARED_DATA} (../shared/data beside the clone)")
    return SHARED_DATA


@pytest.fixture
def reap():
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL) if _own_group(p) else p.kill()
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def _own_group(p: subprocess.Popen) -> bool:
    try:
        return os.getpgid(p.pid) == p.pid
    except ProcessLookupError:
        return False
