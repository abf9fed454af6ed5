"""Raw record copies: EVENT rows as 96 uint64 words, never field by field.

Never `np.concatenate` or `astype` EVENT arrays: numpy rebuilds a union dtype with
overlapping fields as a packed one (1800 bytes, not 768) and copies field by field.
"""

from __future__ import annotations

import numpy as np

from events import EVENT

WORDS = EVENT.itemsize // 8


def words(recs: np.ndarray) -> np.ndarray:
    """The records as rows of uint64 words (a view: no copy)."""
    return recs.view(np.uint64).reshape(len(recs), WORDS)


def row(recs: np.ndarray, i: int) -> np.ndarray:
    """A private copy of row `i`, as a 1-record EVENT array."""
    out = np.empty(1, EVENT)
    words(out)[0] = words(recs)[i]
    return out


def concat(parts) -> np.ndarray:
    """One EVENT array holding every record of `parts` (EVENT arrays), in order."""
    parts = list(parts)
    out = np.empty(sum(len(p) for p in parts), EVENT)
    w = words(out)
    i = 0
    for p in parts:
        w[i : i + len(p)] = words(p)
        i += len(p)
    return out
