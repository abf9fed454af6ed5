"""The simulator stands alone: it imports no other Meltica package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import simulator

pytestmark = pytest.mark.timeout(30)
OURS = {"shm", "events", "marketdata", "venues", "channels", "ingest", "dispatch", "execution", "consumer", "strategies", "bench", "meltica"}


def test_simulator_imports_no_other_meltica_package():
    for path in Path(simulator.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & OURS, f"{path.name}:{node.lineno} imports {roots & OURS}"
            assert "json" not in roots, f"{path.name}:{node.lineno}: use orjson, not json"
