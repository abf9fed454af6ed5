"""Identifiers: event ids (for de-dup), trace ids and decision ids (for telemetry).

An event id is a pure function of what identifies an event at its source, (provider,
kind, instrument, seq_provider), so the same venue message seen twice — a duplicate
frame, two ingest connections — gets the same id and dispatch can drop the copy.
"""

from __future__ import annotations

import os
import threading

import numpy as np

_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def event_id(provider: int, kind: int, instrument: int, seq_provider: int) -> int:
    """The de-dup id of an event; never 0."""
    key = ((provider & 0xFFFF) << 48) ^ ((kind & 0xFFFF) << 32) ^ (instrument & 0xFFFFFFFF)
    return mix64(key ^ mix64(seq_provider & _MASK64)) or 1


_U64 = np.uint64
_C0, _C1, _C2 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_S27, _S30, _S31, _S32, _S48 = (_U64(v) for v in (27, 30, 31, 32, 48))


def _mix64_array(x: np.ndarray) -> np.ndarray:
    """mix64 over a uint64 array (numpy uint64 arithmetic wraps mod 2**64)."""
    x = x + _C0
    x = (x ^ (x >> _S30)) * _C1
    x = (x ^ (x >> _S27)) * _C2
    return x ^ (x >> _S31)


def event_ids(provider, kind, instrument, seq) -> np.ndarray:
    """`event_id` over arrays (uint64; same values): `provider` an int or an array, `kind`,
    `instrument` and `seq` (int64) arrays of one length."""
    key = ((np.asarray(provider).astype(_U64) & _U64(0xFFFF)) << _S48) \
        ^ ((np.asarray(kind).astype(_U64) & _U64(0xFFFF)) << _S32) \
        ^ (np.asarray(instrument).astype(_U64) & _U64(0xFFFFFFFF))
    with np.errstate(over="ignore"):
        ids = _mix64_array(key ^ _mix64_array(np.asarray(seq, np.int64).view(_U64)))
    ids[ids == 0] = 1
    return ids


class IdSource:
    """Unique 64-bit ids for this process: a random 24-bit prefix and a 40-bit counter.

    Used for trace ids and decision ids. Thread-safe; no allocation beyond the int.
    """

    def __init__(self, prefix: int | None = None):
        self._prefix = (prefix if prefix is not None else int.from_bytes(os.urandom(3), "little")) << 40
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._prefix | (self._n & ((1 << 40) - 1))


trace_ids = IdSource()
