"""The whole pipeline for the end-to-end tests: one `PipelineRun` per module (a fresh
run under tmp, its own configuration: simulator at 50 steps/s, 1 s merge windows, no
metrics port), always stopped at the end, which must leave no shared-memory segment."""

from __future__ import annotations

import pytest

from bench._chaos_harness import PipelineRun


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    run = PipelineRun(tmp_path_factory.mktemp("e2e"), rate=50.0, merge_window_ms=1000, orders=True)
    run.start()
    try:
        yield run
    finally:
        run.stop()
        assert run.left_after_stop == [], f"segments left after stop: {run.left_after_stop}"
