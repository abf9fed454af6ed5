"""`python -m simulator`: help, the endpoints line, clean stop on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from .venue_testkit import get

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_help_lists_the_flags():
    out = subprocess.run([sys.executable, "-m", "simulator", "--help"], cwd=ROOT,
                         capture_output=True, timeout=30, check=True).stdout.decode()
    for flag in ("--venues", "--instruments", "--rate", "--seed", "--replay", "--replay-venue",
                 "--port-base", "--endpoints-file", "--fault"):
        assert flag in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_endpoints_serves_and_stops_on_signal(tmp_path, sig):
    file = tmp_path / "endpoints.json"
    proc = _run("--venues", "binance-spot,okx", "--instruments", "1", "--rate", "10",
                "--seed", "3", "--endpoints-file", str(file), "--fault", "okx:gap:count=2")
    try:
        line = orjson.loads(proc.stdout.readline())
        assert set(line["endpoints"]) == {"binance-spot", "okx"}
        assert orjson.loads(file.read_bytes()) == line
        status, _ = get(line["endpoints"]["binance-spot"]["rest"] + "/api/v3/ping")
        assert status == 200
        _, stats = get(line["endpoints"]["okx"]["rest"] + "/_sim/stats")
        assert stats["faults"]["armed"][0]["fault"] == "gap"
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_arguments_fail_with_a_message():
    proc = _run("--venues", "bitmex")
    try:
        assert proc.wait(timeout=30) == os.EX_CONFIG  # a restart cannot fix it
        assert b"unknown venue" in proc.stderr.read()
    finally:
        if proc.poll() is None:   # it started after all: do not leave it running
            proc.kill()
            proc.wait()
