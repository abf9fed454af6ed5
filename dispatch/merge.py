"""Windowed merge (LM-05): one instrument, two or more providers, one event per window.

A merge key is (instrument, providers). Its window opens on the first BOOK or TICKER
record of any of its providers (at that record's `ingest_ts_ns`) and closes when the
clock passes open + `window_ns` or after `max_events` records. A closed window that
holds every provider is emitted as one MERGED record (each leg: that provider's last
top of book in the window; `merge_id` from the key and the opening time); a window
missing a provider is suppressed. A record older than the last close of its key
(`ingest_ts_ns` < close) is a late fragment and is dropped. Windows live in memory
only: a restarted dispatch starts without them (LM-09).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from events import EVENT, MAX_MERGE_LEGS, SCHEMA_VERSION, Kind
from events.ids import mix64

FEED_KINDS = (int(Kind.BOOK), int(Kind.TICKER))
MERGED_PROVIDER_BASE = 0x8000  # merged records' header.provider: base | merge key index


@dataclass
class Window:
    open_ns: int
    count: int = 0
    legs: dict = field(default_factory=dict)  # provider -> tuple of leg values
    trace_id: int = 0


@dataclass
class MergeState:
    instrument: int
    providers: tuple[int, ...]
    window: Window | None = None
    last_close_ns: int = -1
    windows: int = 0

    @property
    def label(self) -> str:
        return f"{self.instrument}:{'+'.join(str(p) for p in self.providers)}"


def merge_id(instrument: int, providers: tuple[int, ...], open_ns: int) -> int:
    key = instrument
    for p in providers:
        key = mix64(key ^ (p << 40))
    return mix64(key ^ mix64(open_ns & ((1 << 64) - 1))) or 1


class Merger:
    """Merge windows of every merged subscription. One dispatch thread."""

    def __init__(self, window_ns: int, max_events: int):
        self.window_ns = window_ns
        self.max_events = max_events
        self.keys: dict[int, MergeState] = {}  # merge key index -> state
        self.counts = {"opened": 0, "closed_time": 0, "closed_count": 0, "emitted": 0,
                       "suppressed": 0, "late": 0}
        self.suppressed: list[tuple[MergeState, list[int], int]] = []  # since last drain
        self.late: list[tuple[MergeState, int]] = []                   # (key, trace id)

    def add(self, k: int, instrument: int, providers: tuple[int, ...]) -> None:
        if k not in self.keys:
            self.keys[k] = MergeState(instrument, tuple(sorted(providers)))

    def discard(self, k: int) -> None:
        """Forget key `k` and its in-flight window (nobody subscribes any more)."""
        self.keys.pop(k, None)

    def feeds(self, k: int, provider: int, instrument: int, kind: int) -> bool:
        st = self.keys[k]
        return instrument == st.instrument and provider in st.providers and kind in FEED_KINDS

    # -- records in ------------------------------------------------------------------

    def feed(self, k: int, recs: np.ndarray, now_ns: int, out: list) -> None:
        """Add `recs` (arrival order, already ordered per stream) to key `k`'s window."""
        st = self.keys[k]
        ts = recs["ingest_ts_ns"]
        start = 0
        n = len(recs)
        while start < n:
            late = ts[start:] < st.last_close_ns
            if late.any():
                for r in np.flatnonzero(late) + start:
                    self.late.append((st, int(recs[r]["trace_id"])))
                self.counts["late"] += int(late.sum())
                keep = np.flatnonzero(~late) + start
                recs, ts = recs[keep], ts[keep]
                n, start = len(recs), 0
                if n == 0:
                    return
            w = st.window
            if w is None:
                w = st.window = Window(int(ts[start]))
                self.counts["opened"] += 1
            m = min(n - start, self.max_events - w.count)
            chunk = recs[start : start + m]
            self._update_legs(st, w, chunk)
            w.count += m
            start += m
            if w.count >= self.max_events:
                self._close(k, st, int(chunk["ingest_ts_ns"][-1]), now_ns, "count", out)

    def _update_legs(self, st: MergeState, w: Window, chunk: np.ndarray) -> None:
        prov = chunk["provider"]
        for p in st.providers:
            hit = np.flatnonzero(prov == p)
            if len(hit) == 0:
                continue
            rec = chunk[hit[-1]]
            if rec["kind"] == Kind.BOOK:
                b = rec["book"]
                bid = (b["bid_px"][0], b["bid_sz"][0]) if b["n_bids"] else (0, 0)
                ask = (b["ask_px"][0], b["ask_sz"][0]) if b["n_asks"] else (0, 0)
                scales = (b["px_scale"], b["sz_scale"])
            else:
                t = rec["ticker"]
                bid, ask = (t["bid_px"], t["bid_sz"]), (t["ask_px"], t["ask_sz"])
                scales = (t["px_scale"], t["sz_scale"])
            w.legs[p] = (int(rec["seq_provider"]), int(rec["event_ts_ns"]), *map(int, bid),
                         *map(int, ask), *map(int, scales))
        w.trace_id = int(chunk["trace_id"][-1])

    # -- windows out -----------------------------------------------------------------

    def next_close_ns(self) -> int | None:
        """When the first open window's time is up (None: no window is open)."""
        opens = [st.window.open_ns for st in self.keys.values() if st.window is not None]
        return min(opens) + self.window_ns if opens else None

    def expire(self, now_ns: int) -> list:
        """Close every window whose time is up; return their merged records (key, record)."""
        out: list = []
        for k, st in self.keys.items():
            w = st.window
            if w is not None and now_ns >= w.open_ns + self.window_ns:
                self._close(k, st, w.open_ns + self.window_ns, now_ns, "time", out)
        return out

    def _close(self, k: int, st: MergeState, close_ns: int, now_ns: int, reason: str, out) -> None:
        w = st.window
        st.window = None
        st.last_close_ns = max(st.last_close_ns, close_ns)
        st.windows += 1
        self.counts["closed_" + reason] += 1
        missing = [p for p in st.providers if p not in w.legs]
        if missing:
            self.counts["suppressed"] += 1
            self.suppressed.append((st, missing, w.trace_id))
            return
        out.append((k, self._record(k, st, w, close_ns, now_ns)))
        self.counts["emitted"] += 1

    def _record(self, k: int, st: MergeState, w: Window, close_ns: int, now_ns: int) -> np.ndarray:
        rec = np.zeros(1, EVENT)
        mid = merge_id(st.instrument, st.providers, w.open_ns)
        rec["schema_version"] = SCHEMA_VERSION
        rec["kind"] = Kind.MERGED
        rec["provider"] = MERGED_PROVIDER_BASE | k
        rec["instrument"] = st.instrument
        rec["seq_provider"] = st.windows
        rec["ingest_ts_ns"] = now_ns
        rec["event_ts_ns"] = max(leg[1] for leg in w.legs.values())
        rec["event_id"] = mid
        rec["trace_id"] = w.trace_id
        m = rec["merged"]
        m["merge_id"] = mid
        m["window_open_ns"] = w.open_ns
        m["window_close_ns"] = close_ns
        m["event_count"] = w.count
        m["n_legs"] = len(st.providers)
        legs = m["legs"][0]
        for i, p in enumerate(st.providers[:MAX_MERGE_LEGS]):
            seq, ets, bpx, bsz, apx, asz, pxs, szs = w.legs[p]
            legs[i] = (p, b"", seq, ets, bpx, bsz, apx, asz)
            m["px_scale"], m["sz_scale"] = pxs, szs
        return rec

    def take_events(self):
        sup, late = self.suppressed, self.late
        self.suppressed, self.late = [], []
        return sup, late
