"""Test helpers: a fake clock and synthetic market-data records.

Records are built the way ingest builds them (header per the ingest contract: provider,
instrument, contiguous `seq_provider` per stream, `event_id` from events.event_id), in
numpy, many at once.
"""

from __future__ import annotations

import numpy as np

from events import EVENT, SCHEMA_VERSION, Kind, concat, event_id, instrument_id


class FakeClock:
    """An epoch-ns clock that moves only when told to."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000):
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> int:
        self.now += ns
        return self.now


def records(provider: int, symbol: str | int, kind: Kind, seqs, *, ingest_ts_ns=0,
            event_ts_ns=None, flags: int = 0, px: int = 100_000, trace_base: int = 1) -> np.ndarray:
    """EVENT records of one stream with sequence numbers `seqs` (any order, repeats allowed)."""
    seqs = np.asarray(list(seqs) if not isinstance(seqs, np.ndarray) else seqs, np.int64)
    n = len(seqs)
    inst = instrument_id(symbol) if isinstance(symbol, str) else int(symbol)
    out = np.zeros(n, EVENT)
    out["schema_version"] = SCHEMA_VERSION
    out["kind"] = kind
    out["provider"] = provider
    out["flags"] = flags
    out["instrument"] = inst
    out["seq_provider"] = seqs
    out["ingest_ts_ns"] = ingest_ts_ns
    out["event_ts_ns"] = ingest_ts_ns if event_ts_ns is None else event_ts_ns
    out["event_id"] = [event_id(provider, int(kind), inst, int(s)) for s in seqs]
    out["trace_id"] = np.arange(trace_base, trace_base + n)
    if kind == Kind.BOOK:
        b = out["book"]
        b["depth"], b["n_bids"], b["n_asks"], b["px_scale"], b["sz_scale"] = 20, 1, 1, 2, 4
        b["bid_px"][:, 0] = px + seqs
        b["ask_px"][:, 0] = px + seqs + 1
        b["bid_sz"][:, 0] = b["ask_sz"][:, 0] = 10_000
        b["last_update_id"] = seqs
    elif kind == Kind.TICKER:
        t = out["ticker"]
        t["bid_px"], t["ask_px"] = px + seqs, px + seqs + 1
        t["bid_sz"] = t["ask_sz"] = 10_000
        t["update_id"] = seqs
        t["px_scale"], t["sz_scale"] = 2, 4
    elif kind == Kind.TRADE:
        t = out["trade"]
        t["trade_id"], t["px"], t["sz"], t["side"] = seqs, px + seqs, 5_000, 1
        t["px_scale"], t["sz_scale"] = 2, 4
    return out


def interleave(*batches: np.ndarray) -> np.ndarray:
    """Concatenate record batches round-robin (stream order kept inside each batch)."""
    n = max(len(b) for b in batches)
    return concat(b[i : i + 1] for i in range(n) for b in batches if i < len(b))
