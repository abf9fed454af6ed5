"""Cleanup leaves nothing in /dev/shm: by run, by staleness, through the CLI."""

import os
import subprocess
import sys

import orjson
import pytest

from shm import Namespace, RingWriter
from shm.segment import SHM_DIR
from tests.conftest import REPO
from tests.shm.workers import REC

pytestmark = pytest.mark.timeout(30)


def test_namespace_cleanup_removes_every_segment_of_the_run_and_only_those(ns):
    other = Namespace(ns.run + "x")
    for name in ("md.a", "md.b", "exec"):
        RingWriter.create(ns, name, REC, 8)  # never closed: as if the process had crashed
    keep = RingWriter.create(other, "md.a", REC, 8)
    assert ns.names() == ["exec", "md.a", "md.b"]
    assert sorted(ns.cleanup()) == ["exec", "md.a", "md.b"]
    assert ns.names() == []
    assert not [e for e in os.listdir(SHM_DIR) if e.startswith(f"{ns.prefix}.{ns.run}.")]
    assert other.names() == ["md.a"]
    keep.close()


def test_cleanup_cli_prints_one_json_object(ns):
    RingWriter.create(ns, "a", REC, 8)
    out = subprocess.run([sys.executable, "-m", "shm.cleanup", "--run", ns.run], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert orjson.loads(out) == {"removed": ["a"], "kept": []}
    assert ns.names() == []


def test_stale_sweep_keeps_segments_of_live_writers(ns):
    from shm.cleanup import sweep_stale
    with RingWriter.create(ns, "live", REC, 8):
        removed, kept = sweep_stale()
        assert ns.full_name("live") in kept and ns.full_name("live") not in removed
