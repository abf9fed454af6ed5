"""The deterministic dispatch core: consumers, subscriptions, telemetry and metrics
around the pipeline of stages every record takes, drawn and run in `dispatch.pipeline`
(de-dup -> order -> keep state -> merge -> fan-out; a timer's releases join after order).

No sockets, no threads, no wall clock: time comes from the injected `clock` (integer
ns, the epoch clock of `ingest_ts_ns`) or from the `now_ns` argument, so every
decision can be replayed in a test. The process (`dispatch.process`) feeds it batches
read from ingest rings and calls `tick` once per loop.

    core = DispatchCore(DispatchConfig(), clock=time.time_ns)
    sub = core.add_consumer("alpha", RingWriter.create(ns, "consumer.alpha.md", EVENT, 4096,
                                                       policy="lossless"))
    core.subscribe(sub, instrument_id("BTC-USDT"), providers=None, kinds=None)
    core.tick(); core.process(batch)            # per loop: tick, then each ring's batch

De-dup runs first, so a duplicate never takes a reorder-buffer slot nor counts as late.
The newest routed record of every stream is kept (`dispatch.state`): a subscription that
makes a consumer receive a book or ticker stream starts it with that stream's current
state, flagged REPLAYED, not with nothing until the stream next changes.
After each round of reads the process reports what it left unread (`note_input`); when
that shows dispatch cannot keep up, fan-out is metered fairly (`dispatch.saturation`).
"""

from __future__ import annotations

import numpy as np

from events import Kind, Provider
from events.ids import IdSource
from core.dlq import DeadLetterQueue
from core.telemetry import Telemetry
from shm import RingWriter

from .config import DispatchConfig
from .dedup import Deduper
from .fanout import FairShare, Outlet
from .merge import MERGED_PROVIDER_BASE, Merger
from .ordering import Orderer
from .pipeline import Pipeline
from .routing import RoutingTable, Subscriber
from .saturation import Saturation
from .small import SmallBatches
from .state import CurrentState
from .streams import Streams

MAX_REPORTS = 100  # telemetry events / DLQ records of one kind per tick


class DispatchCore:
    """Every decision of dispatch, for one thread, with an injected clock."""

    def __init__(self, config: DispatchConfig | None = None, clock=None,
                 telemetry: Telemetry | None = None, dlq: DeadLetterQueue | None = None,
                 ids: IdSource | None = None):
        self.config = cfg = config or DispatchConfig()
        self.clock = clock
        self.tel = telemetry or Telemetry("dispatch", None)
        self.dlq = dlq
        self.ids = ids or IdSource()
        self.streams = Streams()
        self.routing = RoutingTable(self.streams, cfg.max_consumers)
        self.orderer = Orderer(self.streams, cfg.lateness_ns, cfg.flush_ns, cfg.max_held,
                               cfg.order_mode, cfg.probe_records)
        self.dedup = Deduper(cfg.dedup_bits)
        self.merger = Merger(cfg.merge_window_ns, cfg.merge_max_events)
        self.fair = FairShare(cfg.fanout_rate, cfg.fair_burst_ns)
        self.small = SmallBatches(self.streams, self.dedup, self.orderer)
        self.state = CurrentState()
        self.saturation = (Saturation(cfg.saturation_interval_ns, cfg.fair_min_share,
                                      cfg.saturation_backlog)
                           if cfg.saturation_interval_ns else None)
        self.outlets: dict[int, Outlet] = {}   # slot -> outlet
        self.configured: set[int] = set()      # instrument ids from config
        self.pipeline = Pipeline(self.streams, self.dedup, self.orderer, self.small, self.state,
                                 self.merger, self.routing, self.outlets, self.fair,
                                 self.saturation)
        self.events_in = 0
        self._last_dlq_ns = 0
        self._published: dict[str, int] = {}

    def _now(self, now_ns: int | None) -> int:
        return self.clock() if now_ns is None else now_ns

    @property
    def version(self) -> int:
        return self.routing.version

    @property
    def events_out(self) -> int:
        """Records written to consumer rings so far."""
        return self.pipeline.delivered

    # -- consumers and subscriptions -------------------------------------------------

    def add_consumer(self, name: str, writer: RingWriter) -> Subscriber:
        sub = self.routing.add_consumer(name)
        self.outlets[sub.slot] = Outlet(writer, sub.consumer_id, name)
        return sub

    def remove_consumer(self, sub: Subscriber) -> Outlet:
        """Forget a consumer; the caller closes (and unlinks) its ring."""
        for k in self.routing.remove_consumer(sub.slot):
            self.merger.discard(k)
        self.fair.forget(sub.consumer_id)
        return self.outlets.pop(sub.slot)

    def knows(self, instrument: int) -> bool:
        """Configured, or published by some provider."""
        return instrument in self.configured or bool(
            np.any(self.streams.instrument[: len(self.streams)] == instrument))

    def subscribe(self, sub: Subscriber, instrument: int, providers=None, kinds=None) -> bool:
        """Subscribe; every book or ticker stream `sub` receives only from now on starts
        with its current state (the newest record routed, flagged REPLAYED)."""
        before = self._receives(sub)
        changed = self.routing.subscribe(sub, instrument, providers, kinds)
        if changed:
            self._start_streams(sub, before)
        return changed

    def _receives(self, sub: Subscriber) -> np.ndarray:
        """Per stream: does `sub` receive it (plain routing)."""
        return (self.routing.route[: len(self.streams)] & np.uint64(sub.bit)) != 0

    def _start_streams(self, sub: Subscriber, before: np.ndarray) -> None:
        """Hand `sub` the kept state of the streams it receives now and did not before.

        Outside ordering and de-dup, on purpose: it is a copy of a record already routed
        (to others, or to `sub` before an unsubscribe), and the stream's next record
        follows it in sequence. Metered and coalesced like any market data.
        """
        fresh = np.flatnonzero(self._receives(sub) & ~before)
        if not len(fresh):
            return
        fresh = self.state.starting(fresh, self.streams.kind[fresh])
        if len(fresh):
            recs = self.state.records(fresh)
            self.pipeline.offer(self.outlets[sub.slot], recs, fresh, None, len(fresh),
                                self.version)

    def unsubscribe(self, sub: Subscriber, instrument: int, providers=None, kinds=None) -> bool:
        return self.routing.unsubscribe(sub, instrument, providers, kinds)

    def merged_subscribe(self, sub: Subscriber, instrument: int, providers) -> bool:
        changed, k = self.routing.merged_subscribe(sub, instrument, providers)
        self.merger.add(k, instrument, tuple(sorted(set(providers))))
        return changed

    def merged_unsubscribe(self, sub: Subscriber, instrument: int, providers) -> bool:
        changed, orphans = self.routing.merged_unsubscribe(sub, instrument, providers)
        for k in orphans:
            self.merger.discard(k)
        return changed

    def deliver_critical(self, sub: Subscriber, rec: np.ndarray) -> bool:
        """Put one critical record (1-record EVENT array) on a consumer's ring, or queue it."""
        rec["consumer_id"] = sub.consumer_id
        return self.outlets[sub.slot].put_critical(rec, self.version)

    # -- records in ------------------------------------------------------------------

    def process(self, batch: np.ndarray, now_ns: int | None = None) -> int:
        """One batch of one source, along the pipeline (`dispatch.pipeline`); return its size."""
        n = len(batch)
        if n:
            self.events_in += n
            self.pipeline.process(batch, self.clock() if now_ns is None else now_ns)
        return n

    def note_input(self, waiting: int, lost: int = 0) -> None:
        """After a round of reads: records still waiting on the inputs, records lapped there.

        This is how dispatch finds it is saturated (`dispatch.saturation`).
        """
        if self.saturation is not None:
            self.saturation.observe(waiting, lost)

    def source_lapped(self, provider: int, now_ns: int | None = None) -> None:
        """Records of `provider` were overwritten before dispatch read them: skip their gaps."""
        released = self.orderer.skip_gaps(self.streams.of_provider(provider))
        if released:
            self.pipeline.release(released, self._now(now_ns))

    def reset_source(self, provider: int, now_ns: int | None = None) -> None:
        """An ingest ring was replaced (ingest restarted): restart its streams' sequences.

        Their kept state goes: the new ingest publishes books built afresh.
        """
        streams = self.streams.of_provider(provider)
        released = self.orderer.reset(streams)
        if released:
            self.pipeline.release(released, self._now(now_ns))
        self.state.forget(streams)

    # -- timers ----------------------------------------------------------------------

    def next_due_ns(self) -> int | None:
        """When `tick` next has a timer to serve: held records, a merge window (None: none).

        A backlogged outlet is not a timer: it drains when its consumer reads, which
        nothing signals, so the loop polls it (`backlogged`).
        """
        due = [t for t in (self.orderer.next_expiry_ns(), self.merger.next_close_ns())
               if t is not None]
        return min(due) if due else None

    @property
    def backlogged(self) -> bool:
        """Some consumer has records waiting for room in its ring (or for tokens)."""
        return any(o.backlogged for o in self.outlets.values())

    def tick(self, now_ns: int | None = None) -> int:
        """Release expired gaps, close windows whose time is up, drain backlogs; report."""
        now = self._now(now_ns)
        work = self.pipeline.tick(now)
        self._report(now)
        return work

    def _report(self, now: int) -> None:
        """Publish what the stages decided as telemetry events and DLQ records.

        Counters are not touched here: `publish_metrics` copies them from the stages.
        """
        tel = self.tel
        late = self.orderer.take_late()
        if len(late) > MAX_REPORTS:  # a burst: report the first ones, count the rest
            tel.event("late_event.dropped", stage="order", unreported=len(late) - MAX_REPORTS,
                      trace_id=late[MAX_REPORTS][2], decision_id=self.ids.next())
            late = late[:MAX_REPORTS]
        for s in self.orderer.sparse:
            tel.event("order.stream_sparse", stream=self._stream_label(s), trace_id=0,
                      decision_id=self.ids.next())
        self.orderer.sparse.clear()
        for s, seq, trace in late:
            did = self.ids.next()
            p, i, k = (int(self.streams.provider[s]), int(self.streams.instrument[s]),
                       int(self.streams.kind[s]))
            tel.event("late_event.dropped", stage="order", provider=_slug(p), instrument=i,
                      kind=Kind(k).name.lower(), seq_provider=seq, trace_id=trace, decision_id=did)
            if self.dlq is not None:
                self.dlq.put("late_event.dropped", stage="order", provider=_slug(p), instrument=i,
                             kind=Kind(k).name.lower(), seq_provider=seq, trace_id=trace,
                             decision_id=did)
        suppressed, late = self.merger.take_events()
        for st, missing, trace in suppressed:
            tel.event("merge.suppressed_partial", merge_key=st.label,
                      missing_providers=[_slug(p) for p in missing], trace_id=trace,
                      decision_id=self.ids.next())
        for st, trace in late[:MAX_REPORTS]:
            tel.event("late_event.dropped", stage="merge", merge_key=st.label, trace_id=trace,
                      decision_id=self.ids.next())
        if now - self._last_dlq_ns >= self.config.dlq_interval_ns:
            self._last_dlq_ns = now
            for outlet in self.outlets.values():
                total, ids = outlet.take_drops()
                if ids and self.dlq is not None:
                    self.dlq.put("fanout.trade_dropped", consumer=outlet.name,
                                 dropped_total=total, event_ids=[e for e, _ in ids],
                                 trace_id=ids[0][1], decision_id=self.ids.next())

    # -- metrics ---------------------------------------------------------------------

    def metrics(self) -> dict:
        """Current figures: counters (monotonic) and gauges, by Prometheus-style key."""
        o, m = self.orderer.counts, self.merger.counts
        c = {
            "dispatch.events_in": self.events_in,
            "dispatch.events_out": self.events_out,
            "dedup.dropped": self.dedup.dropped,
            "order.reordered": o["reordered"],
            "order.gap_unresolved": o["gap_unresolved"],
            "order.duplicate": o["duplicate"],
            "order.sparse_streams": o["sparse_streams"],
            "order.lapped": o["lapped"],
            "late_event.dropped{stage=order}": o["late"],
            "late_event.dropped{stage=merge}": m["late"],
            "merge.windows_opened": m["opened"],
            "merge.windows_closed{reason=time}": m["closed_time"],
            "merge.windows_closed{reason=count}": m["closed_count"],
            "merge.emitted": m["emitted"],
            "merge.suppressed_partial": m["suppressed"],
        }
        g = {"routing.version": self.routing.version, "dispatch.consumers": len(self.outlets),
             "fanout.budget": self.fair.rate, "fanout.demand": round(self.fair.total_demand),
             "dispatch.saturated": int(self.saturation is not None and self.saturation.saturated)}
        if self.saturation is not None:
            c["dispatch.saturated_ns"] = self.saturation.saturated_ns
        depth = self.orderer.depth()
        g["order.buffer_depth_max"] = max(depth.values(), default=0)
        for s, d in depth.items():
            g[f"order.buffer_depth{{stream={self._stream_label(s)}}}"] = d
        for outlet in self.outlets.values():
            lab = f"{{consumer={outlet.name}}}"
            c["fanout.offered" + lab] = self.fair.offered.get(outlet.consumer_id, 0)
            c["fanout.delivered" + lab] = outlet.delivered
            c["fanout.coalesced" + lab] = outlet.coalesced
            c[f"fanout.dropped{{consumer={outlet.name},kind=trade}}"] = outlet.trades_dropped
            c["fanout.throttled_ns" + lab] = outlet.throttled_ns
            g["consumer.lag" + lab] = outlet.lag()
            g["fanout.pending" + lab] = len(outlet.latest) + len(outlet.critical)
        return {"counters": c, "gauges": g}

    def _stream_label(self, s: int) -> str:
        st = self.streams
        return (f"{_slug(int(st.provider[s]))}:{int(st.instrument[s])}:"
                f"{Kind(int(st.kind[s])).name.lower()}")

    def publish_metrics(self) -> dict:
        """Copy `metrics()` into the Telemetry counters and gauges."""
        snap = self.metrics()
        for key, value in snap["counters"].items():
            delta = value - self._published.get(key, 0)
            if delta:
                self.tel.inc(key, delta)  # the key already carries its labels
                self._published[key] = value
        for key, value in snap["gauges"].items():
            self.tel.gauge(key, value)  # Telemetry publishes its snapshot (topic "metrics")
        return snap


def _slug(p: int) -> str:
    try:
        return Provider(p).slug
    except ValueError:
        return f"merged-{p & 0x7FFF}" if p & MERGED_PROVIDER_BASE else str(p)
