"""cryptofeed 3.0 for `bench ingest`: find a Python >= 3.13, build its environment, drive the child.

cryptofeed 3.0 (asyncio core, msgspec) needs Python >= 3.13, so it cannot share this
process's interpreter. The benchmark looks for one (pyenv's installed versions, then
`python3.13` / `python3.14` on PATH), builds a virtual environment with it in
`.venv-cf3/` at the repository root (git-ignored; rebuilt when the pin below changes)
and runs `bench/_cryptofeed3_child.py` there. Each step that fails becomes a plain
reason in the benchmark's JSON instead of a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

SPEC = "cryptofeed>=3.0,<3.1"
ROOT = Path(__file__).resolve().parent.parent
ENV = ROOT / ".venv-cf3"
CHILD = Path(__file__).resolve().parent / "_cryptofeed3_child.py"
MIN_VERSION = (3, 13)


class Unavailable(Exception):
    """cryptofeed 3 cannot run here; the message says why."""


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def _pyenv_candidates() -> list[str]:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    try:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for v in out.stdout.split():
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
        if m and (int(m[1]), int(m[2])) >= MIN_VERSION:
            found.append(((int(m[1]), int(m[2]), int(m[3])), v))
    paths = []
    for _key, v in sorted(found, reverse=True):  # the newest first
        prefix = subprocess.run([pyenv, "prefix", v], capture_output=True, text=True, timeout=30).stdout.strip()
        exe = Path(prefix) / "bin" / "python3"
        if prefix and exe.exists():
            paths.append(str(exe))
    return paths


def find_python() -> str:
    """A Python >= 3.13 interpreter on this machine, or Unavailable saying where it looked."""
    candidates = [os.environ["MELTICA_PY313"]] if os.environ.get("MELTICA_PY313") else []
    candidates += _pyenv_candidates()
    candidates += [p for p in (shutil.which("python3.14"), shutil.which("python3.13")) if p]
    for c in candidates:
        v = _version_of(c)
        if v is not None and v >= MIN_VERSION:
            return c
    raise Unavailable("no Python >= 3.13 found (looked at $MELTICA_PY313, pyenv's installed versions, "
                      "python3.14 / python3.13 on PATH); cryptofeed 3.0 needs one")


def ensure_env(log=lambda *_: None) -> str:
    """The environment's interpreter, with cryptofeed 3.0 installed (built once, then reused)."""
    py = ENV / "bin" / "python"
    stamp = ENV / ".installed"
    if py.exists() and stamp.exists() and stamp.read_text() == SPEC:
        return str(py)
    base = find_python()
    if os.environ.get("MELTICA_CF3_NO_BUILD"):  # tests: no network, use only what is built
        raise Unavailable(f"{ENV.name}/ is not built (python -m bench._cryptofeed3 builds it with {base})")
    log(f"bench ingest: building {ENV.name}/ with {base} for {SPEC} ...")
    steps = [[base, "-m", "venv", "--clear", str(ENV)],
             [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SPEC]]
    for cmd in steps:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Unavailable(f"building the cryptofeed 3 environment failed: {' '.join(cmd[:4])}: {e}") from e
        if out.returncode != 0:
            tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
            raise Unavailable(f"building the cryptofeed 3 environment failed: {' '.join(cmd[:4])}: {tail}")
    stamp.write_text(SPEC)
    return str(py)


class Child:
    """The 3.13 process holding the recordings; `run("binance")` / `run("okx", n)` time one run."""

    def __init__(self, python: str, data: Path):
        # -I: isolated, so neither this repository nor PYTHON* variables reach the child.
        self.proc = subprocess.Popen([python, "-I", str(CHILD), "--data", str(data)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.info = self._answer()
        if not self.info.get("ready"):
            raise Unavailable(f"cryptofeed 3 child did not start: {self.info}")

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().strip().splitlines()[-3:] if self.proc.poll() is not None else []
            raise Unavailable(f"cryptofeed 3 child ended: {' | '.join(err) or 'no output'}")
        return orjson.loads(line)

    def run(self, feed: str, passes: int = 1) -> dict:
        self.proc.stdin.write(f"{feed} {passes}\n")
        self.proc.stdin.flush()
        res = self._answer()
        if "error" in res:
            raise Unavailable(f"cryptofeed 3 child: {res['error']}")
        return res

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def start(data: Path, log=lambda *_: None) -> Child:
    """A running child, or Unavailable with the reason."""
    return Child(ensure_env(log), data)


if __name__ == "__main__":  # build the environment ahead of a benchmark run
    try:
        print(ensure_env(print))
    except Unavailable as e:
        print(e, file=sys.stderr)
        sys.exit(1)
