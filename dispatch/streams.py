"""Streams: (provider, instrument, kind) -> a small dense index, for whole batches at once.

A stream key is one uint64, `provider << 48 | kind << 32 | instrument`. `index(batch)`
sorts the batch's keys once (stable, so each stream's records keep arrival order) and
returns everything the ordering stage needs: per-row stream index, the sort order,
and where each stream's run starts. New streams are registered on first sight; the
per-stream state arrays grow by doubling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_SEQ = np.iinfo(np.int64).min  # "no record released yet": the next one is the baseline
_P_SHIFT = np.uint64(48)
_K_SHIFT = np.uint64(32)


def stream_key(provider: int, instrument: int, kind: int) -> int:
    return (int(provider) << 48) | (int(kind) << 32) | int(instrument)


def split_key(key: int) -> tuple[int, int, int]:
    """(provider, instrument, kind) of a stream key."""
    return key >> 48, key & 0xFFFFFFFF, (key >> 32) & 0xFFFF


def batch_keys(batch: np.ndarray) -> np.ndarray:
    return ((batch["provider"].astype(np.uint64) << _P_SHIFT)
            | (batch["kind"].astype(np.uint64) << _K_SHIFT)
            | batch["instrument"].astype(np.uint64))


@dataclass
class BatchIndex:
    """One batch's stream layout: rows sorted by stream (stable), runs per stream."""

    sidx: np.ndarray      # stream index of every row, arrival order
    order: np.ndarray     # rows sorted by stream, arrival order kept inside a stream
    starts: np.ndarray    # where each stream's run starts in `order`
    ends: np.ndarray      # where it ends (exclusive)
    streams: np.ndarray   # the stream index of each run


class Streams:
    """Every stream seen so far, and its per-stream state arrays. One dispatch thread."""

    def __init__(self, initial: int = 256):
        self._index: dict[int, int] = {}
        self.keys: list[int] = []
        self.provider = np.zeros(initial, np.int64)
        self.instrument = np.zeros(initial, np.int64)
        self.kind = np.zeros(initial, np.int64)
        self.last_seq = np.full(initial, NO_SEQ, np.int64)   # ordering: last released seq
        self.held = np.zeros(initial, np.int64)              # ordering: records held
        self.seen = np.zeros(initial, np.int64)              # ordering: records seen
        self.mode = np.zeros(initial, np.int8)               # ordering: PROBE/GAPLESS/SPARSE
        self.on_new = None  # callback(stream index) for routing and merge tables

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: int) -> int:
        """The index of stream `key`, registering it on first sight."""
        s = self._index.get(key)
        if s is None:
            s = len(self.keys)
            if s == len(self.provider):
                self._grow()
            self._index[key] = s
            self.keys.append(key)
            p, i, k = split_key(key)
            self.provider[s], self.instrument[s], self.kind[s] = p, i, k
            if self.on_new is not None:
                self.on_new(s)
        return s

    def find(self, key: int) -> int | None:
        return self._index.get(key)

    def _grow(self) -> None:
        n = 2 * len(self.provider)
        for name, fill in (("provider", 0), ("instrument", 0), ("kind", 0),
                           ("last_seq", NO_SEQ), ("held", 0), ("seen", 0), ("mode", 0)):
            old = getattr(self, name)
            new = np.full(n, fill, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def index(self, batch: np.ndarray) -> BatchIndex:
        """Stream index and stream runs of every row of `batch`."""
        keys = batch_keys(batch)
        n = len(keys)
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        cut = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [n]))
        index, get = self._index, self.get
        streams = np.array([index.get(k) if k in index else get(k) for k in ks[starts].tolist()],
                           np.int64)
        sidx = np.empty(n, np.int64)
        sidx[order] = np.repeat(streams, ends - starts)
        return BatchIndex(sidx, order, starts, ends, streams)

    def of_provider(self, provider: int) -> np.ndarray:
        return np.flatnonzero(self.provider[: len(self)] == provider)
