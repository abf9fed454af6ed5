"""The README's examples run as written (keeps the README true).

Self-contained blocks run as they are; a block after `<!-- needs: pipeline -->` runs
against a whole pipeline (simulator, ingest, dispatch, execution) started for it.
"""

import re
import subprocess
import sys

import pytest

from core import config
from meltica.pipeline import Pipeline
from tests.conftest import REPO

TEXT = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"(<!-- needs: pipeline -->\n)?```python\n(.*?)```", TEXT, re.S)
PLAIN = [code for marker, code in BLOCKS if not marker]
NEEDS_PIPELINE = [code for marker, code in BLOCKS if marker]


def run_block(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("code", PLAIN, ids=[f"block{i}" for i in range(len(PLAIN))])
def test_readme_python_example_runs(code, run_ctx):
    proc = run_block(code)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.multiprocess
@pytest.mark.timeout(180)
@pytest.mark.parametrize("code", NEEDS_PIPELINE, ids=[f"pipeline{i}" for i in range(len(NEEDS_PIPELINE))])
def test_readme_sdk_example_runs_against_a_live_pipeline(code, run_ctx):
    import os
    cfg = config.load()
    cfg["run"]["metrics_port"] = 0
    pipeline = Pipeline(cfg, run_ctx)
    try:
        pipeline.start()
        proc = run_block(code, env={**os.environ, **run_ctx.env()})
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert "FILLED" in proc.stdout or "EXPIRED" in proc.stdout
    finally:
        pipeline.stop()
        pipeline.close()
    assert run_ctx.namespace.names() == []


def test_readme_gives_the_two_setup_commands():
    assert "make run" in TEXT and "make test" in TEXT
    assert NEEDS_PIPELINE, "the SDK example is marked as needing a pipeline"
