"""The operator's own consumer: every instrument from every venue, for the live view
and the run report. Market data only; it never trades.

Keeps, per (provider, symbol): best bid / ask and the time of the last book or ticker;
per (provider, kind): records delivered; the ingest -> consumer latency of the last
`keep` records per provider (now - header.ingest_ts_ns, both wall clock ns on this host);
and how often its consumer re-registered with a restarted dispatch (`recoveries`), with
the market-data records received since the last time (`md_since_recovery`).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from events import Kind, PeerGone, Provider, to_decimal

from .symbols import symbol_of

LATENCY_KEEP = 20_000


class Monitor(threading.Thread):
    """Runs a `consumer.Consumer` named `name` on its own thread until `stop()`."""

    def __init__(self, run, symbols: list[str], providers: list[str], merged: list[str],
                 name: str = "monitor", start_timeout_s: float = 30.0, carried: dict | None = None):
        """`carried`: venue -> the symbols it carries (None: every venue carries `symbols`);
        the monitor subscribes to each symbol on the venues that carry it."""
        super().__init__(name="monitor", daemon=True)
        self.run_ctx = run
        carried = carried or {p: list(symbols) for p in providers}
        self.symbols = list(dict.fromkeys([*symbols, *(s for p in providers for s in carried.get(p, ()))]))
        self.providers_of = {s: [p for p in providers if s in carried.get(p, ())] for s in self.symbols}
        self.providers = providers
        self.merged = merged
        self.consumer_name = name
        self.start_timeout_s = start_timeout_s
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.top: dict[tuple[str, str], dict] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self._lat: dict[str, np.ndarray] = {}
        self._lat_n: dict[str, int] = {}
        self.merged_seen = 0
        self.recoveries = 0
        self.md_since_recovery = 0
        self.subscribed = threading.Event()
        self.error: str | None = None
        self.results: list[dict] = []

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        from consumer import Consumer  # the SDK; imported here so meltica stays importable alone

        deadline = time.monotonic() + self.start_timeout_s
        consumer = None
        while consumer is None and not self._halt.is_set():
            try:
                consumer = Consumer(self.consumer_name, self.run_ctx, timeout_s=2.0)
            except (PeerGone, OSError) as err:  # dispatch not up yet
                if time.monotonic() > deadline:
                    self.error = f"monitor could not register with dispatch: {err}"
                    return
                self._halt.wait(0.2)
        if consumer is None:
            return
        try:
            for symbol in self.symbols:
                if self.providers_of[symbol]:
                    self.results.append(dict(consumer.subscribe(symbol, providers=self.providers_of[symbol])))
            for symbol in self.merged:
                venues = self.providers_of.get(symbol) or self.providers
                if len(venues) >= 2:
                    self.results.append(dict(consumer.merged_subscribe(symbol, venues)))
            self.subscribed.set()
            while not self._halt.is_set():
                batch = consumer.events(max_n=4096, timeout_s=0.2)
                if consumer.recoveries != self.recoveries:
                    with self._lock:
                        self.recoveries, self.md_since_recovery = consumer.recoveries, 0
                if len(batch):
                    self._apply(batch, time.time_ns())
        except PeerGone as err:
            self.error = f"dispatch went away: {err}"
        finally:
            consumer.close()

    def _apply(self, batch: np.ndarray, now_ns: int) -> None:
        batch = batch[batch["provider"] != 0]  # control acks and results are not market data
        kinds = batch["kind"]
        provs = batch["provider"]
        lat = now_ns - batch["ingest_ts_ns"]
        with self._lock:
            for p in np.unique(provs):
                sel = provs == p
                slug = _slug(int(p))
                for k in np.unique(kinds[sel]):
                    key = (slug, Kind(int(k)).name.lower())
                    self.counts[key] = self.counts.get(key, 0) + int(np.count_nonzero(kinds[sel] == k))
                md = sel & ((kinds == Kind.BOOK) | (kinds == Kind.TICKER) | (kinds == Kind.TRADE))
                self._keep_latency(slug, lat[md])
            self.merged_seen += int(np.count_nonzero(kinds == Kind.MERGED))
            self.md_since_recovery += len(batch)
            for rec in batch[(kinds == Kind.BOOK) | (kinds == Kind.TICKER)][-64:]:
                self._top_of(rec, now_ns)

    def _keep_latency(self, slug: str, lat: np.ndarray) -> None:
        if not len(lat):
            return
        buf = self._lat.get(slug)
        if buf is None:
            buf = self._lat[slug] = np.zeros(LATENCY_KEEP, np.int64)
            self._lat_n[slug] = 0
        n = self._lat_n[slug]
        lat = lat[-LATENCY_KEEP:]
        idx = (n + np.arange(len(lat))) % LATENCY_KEEP
        buf[idx] = lat
        self._lat_n[slug] = n + len(lat)

    def _top_of(self, rec, now_ns: int) -> None:
        key = (_slug(int(rec["provider"])), symbol_of(int(rec["instrument"]), self.symbols))
        if int(rec["kind"]) == Kind.BOOK:
            b = rec["book"]
            if b["n_bids"] == 0 or b["n_asks"] == 0:
                return
            ps, bid, ask = int(b["px_scale"]), int(b["bid_px"][0]), int(b["ask_px"][0])
        else:
            t = rec["ticker"]
            ps, bid, ask = int(t["px_scale"]), int(t["bid_px"]), int(t["ask_px"])
        self.top[key] = {"bid": to_decimal(bid, ps), "ask": to_decimal(ask, ps),
                         "spread_bps": round((ask - bid) * 1e4 / ask, 2) if ask else None,
                         "age_ns": now_ns, "ingest_to_consumer_us": round((now_ns - int(rec["ingest_ts_ns"])) / 1e3, 1)}

    # -- what the view and the report read -------------------------------------------

    def latency_us(self, provider: str | None = None) -> dict:
        """p50 / p99 / p99.9 of the kept ingest -> consumer latencies (one or all providers)."""
        with self._lock:
            keys = [provider] if provider else list(self._lat)
            parts = [self._lat[k][: min(self._lat_n[k], LATENCY_KEEP)] for k in keys if k in self._lat]
        if not parts or not sum(len(p) for p in parts):
            return {"p50_us": None, "p99_us": None, "p999_us": None, "samples": 0}
        allv = np.concatenate(parts) / 1e3
        p50, p99, p999 = np.percentile(allv, [50, 99, 99.9])
        return {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1),
                "p999_us": round(float(p999), 1), "samples": int(len(allv))}

    def snapshot(self) -> dict:
        with self._lock:
            return {"top": {f"{p}/{s}": v for (p, s), v in self.top.items()},
                    "counts": {f"{p}/{k}": n for (p, k), n in sorted(self.counts.items())},
                    "merged": self.merged_seen, "recoveries": self.recoveries,
                    "md_since_recovery": self.md_since_recovery}


def _slug(p: int) -> str:
    try:
        return Provider(p).slug
    except ValueError:
        return "merged" if p & 0x8000 else str(p)
