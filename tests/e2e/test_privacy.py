"""Another local user gets nothing of a run: not a file, a directory, a ring segment or
an ipc socket, whatever the umask the run was started with; and nothing of a run
listens beyond loopback.

Two real runs, each started under umask 000: `python -m meltica run` (what `make run`
does) and supervisord with deploy/supervisord.conf (what `make supervise` does). While
orders flow and a bad venue frame has reached the DLQ, every path of the run directory
must be 0700 (directories), 0600 (files) or closed to group and others (sockets), every
segment 0600, and a child process that dropped to `nobody` must be refused everything
(read, write, delete, list, create, connect). The other user needs root to exist in a
test, so these tests run as root only.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

from bench._chaos_harness import config_text
from core.run import RunContext

from ..conftest import REPO
from .test_run import children, journaled

NOBODY = 65534
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(os.geteuid() != 0, reason="another local user (nobody) needs root: "
                                 "a child process drops to uid 65534")]

# What must exist in the run directory before it is checked (a run that made them all).
EXPECTED = ["run.id", "exec/exec.journal", "exec/orders.sqlite", "exec/orders.sqlite-wal",
            "exec/orders.sqlite-shm", "exec/execution.lock", "exec/ready", "consumers/demo.exec_seq",
            "dlq/ingest.okx.low.jsonl", "telemetry.sock", "dispatch.ctl", "execution.ctl"]
RINGS = {"md.binance-spot", "md.okx", "exec", "consumer.demo.md"}

# Run as nobody: try everything on every path; print what was not refused.
PROBE = r"""
import json, os, socket, sys
out = {"uid": os.getuid(), "gid": os.getgid(), "got_in": [], "control": None}
def attempt(what, path, fn):
    try:
        fn()
    except PermissionError:
        return
    except OSError as e:  # anything but a refusal got past the permission check
        out["got_in"].append([what, path, f"{type(e).__name__}: {e}"])
        return
    out["got_in"].append([what, path, "done"])
def opened(path, flags):
    os.close(os.open(path, flags))
def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
for kind, path in json.load(sys.stdin):
    if kind == "dir":
        attempt("list", path, lambda: os.listdir(path))
        attempt("create in", path, lambda: opened(os.path.join(path, "intruder"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    elif kind == "sock":
        attempt("connect", path, lambda: connect(path))
    else:
        attempt("read", path, lambda: opened(path, os.O_RDONLY))
        attempt("write", path, lambda: opened(path, os.O_WRONLY))
        attempt("delete", path, lambda: os.unlink(path))
with open("/etc/passwd", "rb") as f:  # the control: this process can read what is open to it
    out["control"] = len(f.read()) > 0
print(json.dumps(out))
"""


def as_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def umask_000() -> None:
    os.umask(0)


def kind_of(st: os.stat_result) -> str:
    return "dir" if stat.S_ISDIR(st.st_mode) else "sock" if stat.S_ISSOCK(st.st_mode) else \
        "file" if stat.S_ISREG(st.st_mode) else f"other {stat.S_IFMT(st.st_mode):o}"


def run_paths(run_dir: Path) -> list[tuple[str, str, int]]:
    """(kind, path, mode) of the run directory and everything in it (what vanished meanwhile left out)."""
    out = []
    for path in [run_dir, *sorted(run_dir.rglob("*"))]:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        out.append((kind_of(st), str(path), stat.S_IMODE(st.st_mode)))
    return out


def not_private(paths: list[tuple[str, str, int]]) -> list[str]:
    wrong = []
    for kind, path, mode in paths:
        ok = {"dir": mode == 0o700, "file": mode == 0o600, "sock": mode & 0o077 == 0}.get(kind, False)
        if not ok:
            wrong.append(f"{kind} {path} {mode:04o}")
    return wrong


def python_for_nobody() -> str:
    """A Python interpreter that nobody may run (ours may sit in root's home), or a skip."""
    for exe in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")):
        try:
            if exe and subprocess.run([exe, "-I", "-c", "pass"], cwd="/", preexec_fn=as_nobody,
                                      capture_output=True).returncode == 0:
                return exe
        except PermissionError:  # exec refused: the interpreter is not open to nobody
            continue
    pytest.skip("no Python interpreter that the user nobody may run")


def nobody_gets_in(targets: list[tuple[str, str]]) -> list:
    proc = subprocess.run([python_for_nobody(), "-I", "-c", PROBE], input=orjson.dumps(targets), cwd="/",
                          preexec_fn=as_nobody, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = orjson.loads(proc.stdout)
    assert (out["uid"], out["gid"], out["control"]) == (NOBODY, NOBODY, True), out
    return out["got_in"]


def listening(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket these processes listen on."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        except FileNotFoundError:
            continue
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            hexaddr, hexport = f[1].split(":")
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host order
            found.append((socket.inet_ntop(family, raw), int(hexport, 16), inodes[f[9]]))
    return found


def is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def free_port(n: int = 1) -> int:
    """A port p with p..p+n-1 free on loopback now."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()


def wait_until(cond, timeout_s: float, what: str, alive, log_dir: Path):
    deadline = time.monotonic() + timeout_s
    while not (value := cond()):
        if not alive() or time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                             for p in sorted(log_dir.glob("*.log"))) if log_dir.is_dir() else ""
            raise AssertionError(f"{what}: not seen (launcher alive: {alive()})\n{logs}")
        time.sleep(0.1)
    return value


def malformed_frame(venue_rest: str) -> None:
    """The simulator sends okx one frame that is not JSON: ingest files it in the DLQ."""
    req = urllib.request.Request(f"{venue_rest}/_sim/fault", data=b'{"fault": "malformed", "kind": "json"}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert orjson.loads(r.read())["ok"]


def check_run(ctx: RunContext, pids: list[int], ports: set[int]) -> None:
    """Every path private, every segment 0600, nobody refused everything, TCP on loopback only."""
    paths = run_paths(ctx.run_dir)
    names = {str(Path(p).relative_to(ctx.run_dir)) for _, p, _ in paths}
    assert set(EXPECTED) <= names, f"missing from the run: {sorted(set(EXPECTED) - names)}"
    assert any(n.startswith("logs/") for n in names)
    assert not_private(paths) == []
    segments = [ctx.namespace.path(n) for n in ctx.namespace.names()]
    assert RINGS <= set(ctx.namespace.names())
    assert [s for s in segments if stat.S_IMODE(os.stat(s).st_mode) != 0o600] == []
    targets = [(kind, path) for kind, path, _ in paths] + [("file", s) for s in segments]
    assert nobody_gets_in(targets) == []
    listeners = listening(pids)
    assert [x for x in listeners if not is_loopback(x[0])] == []
    assert ports <= {port for _, port, _ in listeners}, (ports, listeners)


ATTACHED = """
from consumer import Consumer
from events import Kind
with Consumer("attached", timeout_s=10) as c:
    assert c.subscribe("BTC-USDT", providers=["binance-spot"]).ok
    while not any(rec["kind"] == Kind.BOOK for rec in c.events(max_n=64, timeout_s=0.5)):
        pass
    print("run", c.run.run_id, "books")
"""


def attach_from_elsewhere(ctx: RunContext, elsewhere: Path) -> None:
    """A consumer started in another directory with MELTICA_RUN_DIR alone joins the run."""
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MELTICA_RUN"} | {"MELTICA_RUN_DIR": str(ctx.run_dir)}
    proc = subprocess.run([sys.executable, "-c", ATTACHED], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and f"run {ctx.run_id} books" in proc.stdout, proc.stderr[-2000:]
    assert os.listdir(elsewhere) == []  # no stray run directory where it started


def test_make_run_under_umask_000_leaves_another_user_nothing(tmp_path, reap):
    ctx = RunContext(f"priv{uuid.uuid4().hex[:8]}", tmp_path / "run")
    metrics_port = free_port()
    cfg = tmp_path / "meltica.toml"
    cfg.write_text(config_text(rate=50, merge_window_ms=1000, orders=True, order_interval_s=0.5)
                   .replace("metrics_port = 0", f"metrics_port = {metrics_port}"))
    report, err = tmp_path / "report.json", tmp_path / "meltica.err"
    with open(err, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "meltica", "run", "--headless", "--config", str(cfg),
                              "--run-id", ctx.run_id, "--report", str(report)], cwd=REPO, stdout=f,
                             stderr=subprocess.STDOUT, env={**os.environ, **ctx.env()}, start_new_session=True,
                             preexec_fn=umask_000)
    reap.append(p)
    alive = lambda: p.poll() is None  # noqa: E731
    logs = ctx.run_dir / "logs"
    try:
        wait_until(lambda: RINGS <= set(ctx.namespace.names()) and journaled(ctx) >= 2, 90,
                   "the run's rings and the demo's first exec reports", alive, logs)
        endpoints = orjson.loads((ctx.run_dir / "simulator.endpoints.json").read_bytes())["endpoints"]
        malformed_frame(endpoints["okx"]["rest"])
        wait_until(lambda: all((ctx.run_dir / n).exists() for n in EXPECTED), 60,
                   f"every one of {EXPECTED}", alive, logs)
        attach_from_elsewhere(ctx, tmp_path / "elsewhere")
        venue_ports = {int(e["rest"].rsplit(":", 1)[1]) for e in endpoints.values()}
        check_run(ctx, descendants(p.pid), venue_ports | {metrics_port})
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        code = p.wait(60)
        ctx.namespace.cleanup()
    assert code == 0, err.read_text()[-3000:]
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600  # the report too
    assert not_private(run_paths(ctx.run_dir)) == []  # and what the stop wrote


def supervisord_conf(tmp: Path, run_id: str, metrics_port: int, port_base: int) -> Path:
    """deploy/supervisord.conf for a run in `tmp`: its own run id, run directory and ports."""
    text = (REPO / "deploy" / "supervisord.conf").read_text()
    for old, new in (("%(here)s/../run/prod", str(tmp / "run")), ('MELTICA_RUN="prod"', f'MELTICA_RUN="{run_id}"'),
                     ("%(here)s/..", str(REPO)), ("--metrics-port 9464", f"--metrics-port {metrics_port}"),
                     ("18100", str(port_base)), ("18102", str(port_base + 2))):
        assert old in text, old
        text = text.replace(old, new)
    assert "%(here)s" not in text
    conf = tmp / "supervisord.conf"
    conf.write_text(text)
    return conf


def test_supervisord_under_umask_000_leaves_another_user_nothing(tmp_path, reap):
    supervisord = REPO / ".venv" / "bin" / "supervisord"
    if not supervisord.exists():
        pytest.skip(f"supervisord not installed at {supervisord}")
    run_id = f"privsup{uuid.uuid4().hex[:8]}"
    ctx = RunContext(run_id, tmp_path / "run")
    metrics_port, port_base = free_port(), free_port(4)
    conf = supervisord_conf(tmp_path, run_id, metrics_port, port_base)
    out = tmp_path / "supervisord.out"
    env = {**os.environ, "MELTICA_RUN": run_id, "MELTICA_RUN_DIR": str(ctx.run_dir)}
    # what `make supervise` runs, from a shell whose umask is 000
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    script = (f"{q(sys.executable)} -m core.run && (umask 077 && mkdir -p {q(ctx.run_dir / 'logs')}) "
              f"&& umask 077 && exec {q(supervisord)} -c {q(conf)}")
    with open(out, "wb") as f:
        p = subprocess.Popen(["sh", "-c", script], cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, preexec_fn=umask_000)
    reap.append(p)
    alive = lambda: p.poll() is None  # noqa: E731
    logs = ctx.run_dir / "logs"
    try:
        wait_until(lambda: RINGS <= set(ctx.namespace.names()) and journaled(ctx) >= 2, 120,
                   "the run's rings and the demo's first exec reports", alive, logs)
        malformed_frame(f"http://127.0.0.1:{port_base + 2}")  # okx: port base + 2
        wait_until(lambda: all((ctx.run_dir / n).exists() for n in EXPECTED), 60,
                   f"every one of {EXPECTED}", alive, logs)
        names = os.listdir(ctx.run_dir)
        assert {"supervisord.log", "supervisord.pid", "supervisor.sock"} <= set(names), names
        check_run(ctx, descendants(p.pid), {port_base, port_base + 2, metrics_port})
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)  # supervisord stops every program, then exits
        try:
            p.wait(60)
        finally:
            ctx.namespace.cleanup()
    assert not_private(run_paths(ctx.run_dir)) == [], out.read_text()[-2000:]


def test_nobody_probe_is_refused_by_permissions_not_by_absence(tmp_path):
    """The probe tells a refusal from anything else: a path open to others is reported."""
    here = Path(f"/tmp/meltica-probe-{uuid.uuid4().hex[:8]}")
    here.mkdir(0o755)
    try:
        os.chmod(here, 0o755)
        open_file = here / "open"
        open_file.write_bytes(b"x")
        os.chmod(open_file, 0o644)
        closed = here / "closed"
        closed.write_bytes(b"x")
        os.chmod(closed, 0o600)
        got_in = nobody_gets_in([("file", str(open_file)), ("file", str(closed)), ("dir", str(here))])
        assert got_in == [["read", str(open_file), "done"], ["list", str(here), "done"]]
    finally:
        shutil.rmtree(here)
