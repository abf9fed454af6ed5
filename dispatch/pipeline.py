"""The route of every record through dispatch, stage after stage, in one place.

Each stage is `stage(batch, now) -> batch`: it takes the records that reached it and
hands on those that go further (None: none do). A route is a tuple of stages that `run`
takes a batch through, top to bottom. These are all of them (a test checks the drawing
against the tuples):

    batch of one source ring (`process`)
      vector route     dedup ─► index ─► order ─► keep ──────► merge ─► fan_out
      small route      small.admit ─────────────► keep_rows ─► merge ─► fan_out_rows
    held records that ordering releases (`tick`, `release`)
      released route                              keep ──────► merge ─► fan_out
    merged records of windows whose time is up (`tick`)
      closed route                                                      fan_out
    then, on `tick`: each consumer's backlog drains within its fair share (`drain`)

The small route is the vector route for a tiny batch of Python ints (`dispatch.small`):
its gate, `SmallBatches.admit`, makes exactly the decisions of dedup, index and order
when they have nothing to decide (every record new and next in its stream) and declines
otherwise, and the batch takes the vector route; `keep_rows` and `fan_out_rows` copy row
by row where numpy's per-call cost would dominate. Records that ordering held join after
`order`, whether a later record of the same batch or a timer released them; merged
records join at `fan_out`, ahead of the batch (those the merge stage made) or alone
(`tick`).

    pipe = Pipeline(streams, dedup, orderer, small, state, merger, routing, outlets, fair,
                    saturation)
    pipe.process(records, now); pipe.tick(now)

One dispatch thread; time comes from the caller.
"""

from __future__ import annotations

import numpy as np

from events import EVENT, Kind
from events.codec import words

from .dedup import Deduper
from .fanout import FairShare, Outlet
from .merge import MERGED_PROVIDER_BASE, Merger
from .ordering import Orderer
from .routing import RoutingTable
from .saturation import Saturation
from .small import SmallBatches
from .state import CurrentState
from .streams import Streams, stream_key

_EMPTY = np.empty(0, EVENT)
_NONE = np.empty(0, np.int64)


class Batch:
    """Records on their way along a route, with what the stages found out about them."""

    __slots__ = ("recs", "sidx", "ix", "merged")

    def __init__(self, recs: np.ndarray, sidx=None, ix=None):
        self.recs = recs    # EVENT records, arrival order (each stream's in sequence after order)
        self.sidx = sidx    # stream index of every row: int64 array (small route: list of ints)
        self.ix = ix        # streams.BatchIndex while the rows are those it indexed
        self.merged: list | None = None  # (merge key, 1-record array) to fan out first

    @classmethod
    def joined(cls, recs: np.ndarray, sidx: np.ndarray, rows, pairs: list) -> Batch:
        """Rows `rows` of `recs` (of streams `sidx`), then the (stream, 1-record array)
        pairs that ordering released, in order, as one batch."""
        n, m = len(rows), len(pairs)
        out = np.empty(n + m, EVENT)
        w = words(out)
        np.take(words(recs), rows, axis=0, out=w[:n])
        streams = np.empty(n + m, np.int64)
        streams[:n] = sidx[rows]
        for i, (s, one) in enumerate(pairs, n):
            w[i] = words(one)[0]
            streams[i] = s
        return cls(out, streams)

    @classmethod
    def closed(cls, merged: list) -> Batch:
        """A batch holding only merged records (windows closed by time)."""
        b = cls(_EMPTY, _NONE)
        b.merged = merged
        return b


def run(route: tuple, batch: Batch | None, now: int) -> None:
    """Pass `batch` through the stages of `route`, top to bottom, while records remain."""
    for stage in route:
        batch = stage(batch, now)
        if batch is None:
            return


class Pipeline:
    """The stages of dispatch and the routes through them. One dispatch thread."""

    def __init__(self, streams: Streams, dedup: Deduper, orderer: Orderer, small: SmallBatches,
                 state: CurrentState, merger: Merger, routing: RoutingTable,
                 outlets: dict[int, Outlet], fair: FairShare, saturation: Saturation | None):
        self.streams, self.deduper, self.orderer, self.small = streams, dedup, orderer, small
        self.state, self.merger, self.routing = state, merger, routing
        self.outlets, self.fair, self.saturation = outlets, fair, saturation
        self.delivered = 0  # records written to consumer rings (events_out)
        self._last_tick_ns: int | None = None
        # -- the routes -------------------------------------------------------------
        self.small_route = (self.keep_rows, self.merge, self.fan_out_rows)  # after small.admit
        self.vector_route = (self.dedup, self.index, self.order,
                             self.keep, self.merge, self.fan_out)
        self.released_route = self.vector_route[3:]  # held by ordering, released later
        self.closed_route = (self.fan_out,)          # merged records of windows closed by time

    # -- entries ---------------------------------------------------------------------

    def process(self, recs: np.ndarray, now: int) -> None:
        """One batch of one source: the small route if small.admit takes it, else the vector."""
        if len(recs) <= self.small.limit:
            sidx = self.small.admit(recs)  # a tiny batch where dedup, index and order have
            if sidx is not None:           # nothing to decide: their state is committed
                run(self.small_route, Batch(recs, sidx), now)
                return
        run(self.vector_route, Batch(recs), now)

    def release(self, pairs: list, now: int) -> None:
        """Route what ordering released outside a batch (a timer, a lapped or reset source)."""
        run(self.released_route, Batch.joined(_EMPTY, _NONE, _NONE, pairs), now)

    def tick(self, now: int) -> int:
        """The timer route: expired gaps, windows whose time is up, backlogs. Return the work."""
        released = self.orderer.expire(now)
        if released:
            self.release(released, now)
        closed = self.merger.expire(now)
        if closed:
            run(self.closed_route, Batch.closed(closed), now)
        return len(released) + len(closed) + self.drain(now)

    # -- the stages, in route order --------------------------------------------------

    def dedup(self, b: Batch, now: int) -> Batch | None:
        """Drop records whose event id was seen (`dispatch.dedup`)."""
        keep = self.deduper.fresh(b.recs["event_id"])
        if keep is None:
            return b
        b.recs = b.recs[keep]
        return b if len(b.recs) else None

    def index(self, b: Batch, now: int) -> Batch:
        """Find every row's stream and each stream's run of rows (`dispatch.streams`)."""
        b.ix = ix = self.streams.index(b.recs)
        b.sidx = ix.sidx
        return b

    def order(self, b: Batch, now: int) -> Batch | None:
        """Hand on the records in sequence, per stream (`dispatch.ordering`): the passing rows,
        then what their arrival released from the reorder buffers."""
        passing, released = self.orderer.order(b.recs, b.ix, now)
        if passing is None:  # every row passes: the batch stays as indexed
            return b
        if len(passing) + len(released) == 0:
            return None
        return Batch.joined(b.recs, b.sidx, passing, released)

    def keep(self, b: Batch, now: int) -> Batch:
        """Keep each stream's newest record as its current state (`dispatch.state`)."""
        ix = b.ix
        if ix is None:
            self.state.keep(b.recs, b.sidx)
        else:  # the index knows each stream's newest row: the end of its run
            self.state.put(b.recs, ix.streams, ix.order[ix.ends - 1])
        return b

    def keep_rows(self, b: Batch, now: int) -> Batch:
        """`keep` for the small route: row by row."""
        self.state.keep_rows(b.recs, b.sidx)
        return b

    def merge(self, b: Batch, now: int) -> Batch:
        """Feed the merge windows the records of their providers (`dispatch.merge`); the
        windows this closes by count become merged records, fanned out first."""
        if not self.merger.keys:
            return b
        feed = self.routing.merge_feed[b.sidx]
        if feed.any():
            merged: list = []
            for k in list(self.merger.keys):
                sel = np.flatnonzero(feed & np.uint64(1 << k))
                if len(sel):
                    self.merger.feed(k, b.recs[sel], now, merged)
            b.merged = merged
        return b

    def fan_out(self, b: Batch, now: int) -> None:
        """Offer every consumer the records it subscribed to (`dispatch.fanout`)."""
        if b.merged:
            self._fan_out_merged(b.merged)
        recs = b.recs
        if not len(recs):
            return
        rt = self.routing
        masks = rt.route[b.sidx]
        if not masks.any():
            return
        version = rt.version
        for slot, outlet in self.outlets.items():
            hit = (masks & np.uint64(1 << slot)) != 0
            count = int(np.count_nonzero(hit))
            if count:
                sel = None if count == len(recs) else np.flatnonzero(hit)
                self.offer(outlet, recs, b.sidx, sel, count, version)

    def fan_out_rows(self, b: Batch, now: int) -> None:
        """`fan_out` for the small route: Python ints, no numpy per consumer."""
        if b.merged:
            self._fan_out_merged(b.merged)
        sidx = b.sidx
        route = self.routing.route
        masks = [route.item(s) for s in sidx]
        if not any(masks):
            return
        n = len(sidx)
        version = self.routing.version
        for slot, outlet in self.outlets.items():
            rows = [r for r in range(n) if masks[r] >> slot & 1]
            if rows:
                self.offer(outlet, b.recs, sidx, None if len(rows) == n else rows, len(rows),
                           version)

    def _fan_out_merged(self, merged: list) -> None:
        """Offer each merged record (not seen before) to the consumers of its merge key."""
        version = self.routing.version
        for k, rec in merged:
            if self.deduper.seen(int(rec["event_id"][0])):
                continue
            s = self.streams.get(stream_key(MERGED_PROVIDER_BASE | k, int(rec["instrument"][0]),
                                            Kind.MERGED))
            mask = self.routing.merge_consumers.get(k, 0)
            sidx = np.array([s], np.int64)
            for slot, outlet in self.outlets.items():
                if mask >> slot & 1:
                    self.offer(outlet, rec, sidx, None, 1, version)

    def offer(self, outlet: Outlet, recs: np.ndarray, sidx, sel, count: int,
              version: int) -> None:
        """Offer `count` rows to one consumer within its fair share; the rest backlogs."""
        cid = outlet.consumer_id
        allowed = self.fair.grant(cid, count)
        done = outlet.offer(recs, sidx, sel, version, allowed)
        if allowed is not None:
            self.fair.used(cid, done)
            if allowed < count:
                outlet.throttled = True
        self.delivered += done

    def drain(self, now: int) -> int:
        """Refill the fair shares, then write what waits in each backlog as room and
        tokens allow; count the time consumers were held back. Return records written."""
        fair = self.fair
        fair.refill(now)
        if self.saturation is not None:
            fair.govern(self.saturation.update(now, self.delivered, fair.total_demand))
        version = self.routing.version
        work = 0
        for outlet in self.outlets.values():
            if outlet.backlogged:
                before, waiting = outlet.delivered, len(outlet.latest)
                outlet.drain(version, fair.left(outlet.consumer_id))
                done = outlet.delivered - before
                fair.used(outlet.consumer_id, waiting - len(outlet.latest))  # not critical
                self.delivered += done
                work += done
            if (outlet.backlogged or outlet.throttled) and self._last_tick_ns is not None:
                outlet.throttled_ns += now - self._last_tick_ns  # held back since the last tick
            outlet.throttled = False
        self._last_tick_ns = now
        return work
