"""The README's examples run as written (keeps the README true)."""

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(60)

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(code, run_ctx):
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=50)
    assert proc.returncode == 0, proc.stderr


def test_readme_gives_the_two_setup_commands():
    text = (REPO / "README.md").read_text()
    assert "make run" in text and "make test" in text
