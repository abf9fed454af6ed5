import numpy as np
import pytest

from core.run import RunContext
from tests.shm.workers import REC


@pytest.fixture
def ns(run_ctx: RunContext):
    return run_ctx.namespace


def records(start: int, n: int) -> np.ndarray:
    out = np.zeros(n, REC)
    out["seq"] = np.arange(start, start + n)
    out["check"] = ~out["seq"]
    return out
