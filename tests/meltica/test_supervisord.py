"""Under supervisord (deploy/supervisord.conf) a configuration error is not restarted,
any other exit is: checked on the real file, then live with its own program settings."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time

import pytest

from core.config import EX_CONFIG

from ..conftest import REPO

CONF = REPO / "deploy" / "supervisord.conf"
SUPERVISORD = REPO / ".venv" / "bin" / "supervisord"
pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]


def programs() -> dict[str, dict]:
    cp = configparser.RawConfigParser()
    cp.read(CONF)
    return {s.split(":", 1)[1]: dict(cp.items(s)) for s in cp.sections() if s.startswith("program:")}


def test_every_program_is_restarted_unless_it_exits_with_a_configuration_error():
    progs = programs()
    assert {"collector", "simulator", "execution", "dispatch", "strategy-demo"} <= set(progs)
    for name, opts in progs.items():
        assert opts.get("autorestart") == "unexpected", name
        assert [int(c) for c in opts["exitcodes"].split(",")] == [EX_CONFIG], name
        assert opts.get("startsecs") == "0", name  # else a quick exit is a failed start, retried


@pytest.mark.skipif(not SUPERVISORD.exists(), reason=f"supervisord not installed at {SUPERVISORD}")
def test_supervisord_leaves_a_config_error_exited_and_restarts_a_crash(tmp_path):
    """The [program:dispatch] settings of the real file, on two small programs."""
    keep = {k: v for k, v in programs()["dispatch"].items() if k not in ("command", "priority")}
    settings = "".join(f"{k}={v}\n" for k, v in keep.items())
    run = [sys.executable, "-m", "tests.meltica.exiter"]
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\ndirectory={REPO}\nlogfile={tmp_path}/supervisord.log\n"
        f"pidfile={tmp_path}/supervisord.pid\nchildlogdir={tmp_path}\n\n"
        f"[program:bad]\ncommand={' '.join(run)} exit {EX_CONFIG} config-error\n{settings}\n"
        f"[program:crash]\ncommand={' '.join(run)} exit 1 crash\n{settings}\n")
    log = tmp_path / "supervisord.log"
    proc = subprocess.Popen([str(SUPERVISORD), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 40
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            if text.count("spawned: 'crash'") >= 3 and "exited: bad" in text:
                break
            time.sleep(0.1)
        assert text.count("spawned: 'crash'") >= 3, text
        assert "exited: crash (exit status 1; not expected)" in text, text
        assert f"exited: bad (exit status {EX_CONFIG}; expected)" in text, text
        assert text.count("spawned: 'bad'") == 1, text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
