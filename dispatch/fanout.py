"""Fan-out into consumer rings: never block, coalesce latest-wins, never drop critical.

Each consumer has one lossless ring (`consumer.<name>.md`) written only by dispatch.
`Outlet.offer` copies a batch into it with raw 8-byte-word copies and stamps
`routing_version` and `consumer_id` on the copies. What does not fit (the consumer
lags, or its fair share is spent) goes to the outlet's backlog:

- critical kinds (ControlAck, ControlResult, ExecReport) queue in order, never dropped;
- coalescable kinds (book, ticker, merged) keep only the newest record per stream;
- trades are dropped and counted (the caller writes the DLQ record).

While a backlog exists, newer records of the consumer join it too (a stream never
overtakes itself); `drain` empties it as space frees up, critical records first.

`FairShare` meters fan-out when a budget (records/s) is in force: a fixed one
(--fanout-rate) or the one dispatch sets itself once it finds it cannot keep up
(`dispatch.saturation`). One token bucket per consumer, refilled in proportion to the
consumer's measured demand, so that under saturation every consumer receives the same
fraction of what it subscribed to — the largest possible minimum fraction, which meets
the 25% floor whenever the budget is at least a quarter of the total demand (the
governor never sets less). Critical records are never metered.
"""

from __future__ import annotations

import numpy as np

from events import RECORD_BYTES, Kind
from events.codec import WORDS, lane, offset, packer, row, words
from shm import RingWriter

SMALL_WRITE = 4  # records; up to this many are copied one by one as stamped bytes
# The two fields stamped on every copy: in words / uint32 lanes (batches), in bytes (one record)
_VERSION_WORD = lane("routing_version", np.uint64)
_CONSUMER_LANE = lane("consumer_id", np.uint32)
_VERSION_AT, _CONSUMER_AT = offset("routing_version"), offset("consumer_id")
_PUT_VERSION = packer(["routing_version"]).pack_into
_PUT_CONSUMER = packer(["consumer_id"]).pack_into
_CRITICAL = np.zeros(256, bool)
_COALESCE = np.zeros(256, bool)
for _k in Kind:
    _CRITICAL[int(_k)] = _k.critical
    _COALESCE[int(_k)] = _k.coalescable


class Latest:
    """The newest waiting record of each stream, as rows of words indexed by stream.

    Coalescing a batch and draining are a few numpy calls whatever the number of
    streams (a dict of per-stream copies cost ~2 us per stream and batch, as much as
    the copies metering saves). Streams drain in the order they started waiting; a
    newer record of a waiting stream replaces it in place and keeps its turn.
    """

    def __init__(self, streams: int = 64):
        self.words = np.zeros((streams, WORDS), np.uint64)
        self.since = np.zeros(streams, np.int64)  # 0: nothing waits; else its turn
        self._turn = 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, streams: np.ndarray, src: np.ndarray) -> int:
        """Keep `src` rows (words) as the newest of distinct `streams`; return replacements."""
        if streams.max() >= len(self.since):
            n = max(2 * len(self.since), int(streams.max()) + 1)
            self.words = np.concatenate([self.words, np.zeros((n - len(self.since), WORDS),
                                                              np.uint64)])
            self.since = np.concatenate([self.since, np.zeros(n - len(self.since), np.int64)])
        fresh = streams[self.since[streams] == 0]
        self.since[fresh] = np.arange(self._turn, self._turn + len(fresh))
        self._turn += len(fresh)
        self._count += len(fresh)
        self.words[streams] = src
        return len(streams) - len(fresh)

    def oldest(self, k: int) -> np.ndarray:
        """The `k` streams that have waited longest, oldest first."""
        waiting = np.flatnonzero(self.since)
        return waiting[np.argsort(self.since[waiting], kind="stable")[:k]]

    def take(self, streams: np.ndarray) -> None:
        self.since[streams] = 0
        self._count -= len(streams)


class Outlet:
    """One consumer's ring and backlog. Written by the dispatch thread only."""

    def __init__(self, writer: RingWriter, consumer_id: int, name: str):
        self.writer = writer
        self.consumer_id = consumer_id
        self.name = name
        self.critical: list[np.ndarray] = []        # 1-record arrays, oldest first
        self.latest = Latest()                      # newest waiting record per stream
        self.delivered = 0
        self.coalesced = 0
        self.trades_dropped = 0
        self.drop_ids: list[tuple[int, int]] = []   # (event_id, trace_id) of recent drops
        self.throttled_ns = 0      # time spent with a backlog or short of fair-share tokens
        self.throttled = False     # fair share held records back since the last tick
        self._one = bytearray(RECORD_BYTES)  # scratch: one record being stamped

    @property
    def backlogged(self) -> bool:
        return bool(self.critical or len(self.latest))

    def lag(self) -> int:
        """Records written and not yet read by the consumer (0 when it has no reader)."""
        slots = self.writer.reader_slots()
        active = [r["position"] for r in slots if r["state"] == "active"]
        return self.writer.position - min(active) if active else 0

    # -- writing ---------------------------------------------------------------------

    def _write(self, src: np.ndarray, version: int, sel: np.ndarray | None = None) -> int:
        """Copy uint64 rows `src` (rows `sel` of it) into the ring as far as they fit.

        Selected rows are gathered straight into the ring (no temporary copy).
        """
        done = 0
        n = len(src) if sel is None else len(sel)
        w = self.writer
        while done < n:
            dst = w.try_claim(n - done)
            k = len(dst)
            if k == 0:
                break
            d = words(dst)
            if sel is None:                                        # 1. payload, stamped
                d[:] = src[done : done + k]
            else:
                np.take(src, sel[done : done + k], axis=0, out=d, mode="clip")
            d[:, _VERSION_WORD] = version
            d.view(np.uint32)[:, _CONSUMER_LANE] = self.consumer_id
            w.publish()                                            # 2. cursor (see shm._base)
            done += k
        self.delivered += done
        return done

    def _write_rows(self, recs: np.ndarray, rows, version: int) -> int:
        """Copy rows `rows` of `recs` one by one as stamped bytes: cheapest for a few.

        Each row is taken with `tobytes` (~0.2 us), not through a uint8 view of the
        records: numpy checks a view of this union dtype field by field (~1.5 us).
        """
        one, put = self._one, self.writer.try_write_bytes
        done = 0
        for r in rows:
            one[:] = recs[r : r + 1].tobytes()
            _PUT_VERSION(one, _VERSION_AT, version)
            _PUT_CONSUMER(one, _CONSUMER_AT, self.consumer_id)
            if not put(one):  # payload, then cursor (shm: try_write_bytes)
                break
            done += 1
        self.delivered += done
        return done

    def offer(self, recs: np.ndarray, sidx, sel, version: int, allowed: int | None = None) -> int:
        """Deliver rows `sel` of `recs` (None: all), at most `allowed` now; backlog the rest.

        `sidx` (stream of every row of `recs`) and `sel` may be arrays or lists.
        """
        n = len(recs) if sel is None else len(sel)
        if n == 0:
            return 0
        done = 0
        if not self.backlogged:
            limit = n if allowed is None else min(n, allowed)
            if limit <= SMALL_WRITE:
                done = self._write_rows(recs, range(limit) if sel is None else sel[:limit], version)
            else:
                src = words(recs)
                done = (self._write(src[:limit], version) if sel is None
                        else self._write(src, version, np.asarray(sel[:limit], np.intp)))
            if done == n:
                return done
        rest = np.arange(done, n) if sel is None else np.asarray(sel[done:], np.int64)
        self._backlog(recs, np.asarray(sidx, np.int64), rest)
        return done

    def _backlog(self, recs: np.ndarray, sidx: np.ndarray, rows: np.ndarray) -> None:
        kinds = recs["kind"][rows]
        crit = _CRITICAL[kinds]
        coal = _COALESCE[kinds]
        for r in rows[crit]:
            self.critical.append(row(recs, r))
        c_rows = rows[coal & ~crit]
        if len(c_rows):
            s_rows = sidx[c_rows]
            # newest per stream: the last occurrence, found on the reversed rows
            uniq, first_rev = np.unique(s_rows[::-1], return_index=True)
            newest = c_rows[::-1][first_rev]
            replaced = self.latest.put(uniq, words(recs)[newest])
            self.coalesced += len(c_rows) - len(uniq) + replaced
        t_rows = rows[~coal & ~crit]
        if len(t_rows):
            self.trades_dropped += len(t_rows)
            if len(self.drop_ids) < 64:
                ids = recs["event_id"][t_rows[:64]].tolist()
                trs = recs["trace_id"][t_rows[:64]].tolist()
                self.drop_ids.extend(zip(ids, trs))

    def put_critical(self, rec: np.ndarray, version: int) -> bool:
        """Deliver one critical record now, or queue it; True if written now."""
        if not self.critical and self._write(words(rec), version) == 1:
            return True
        self.critical.append(row(rec, 0))
        return False

    def drain(self, version: int, allowed: int | None = None) -> int:
        """Write the backlog as space frees: critical first, then newest-per-stream."""
        done = 0
        while self.critical:
            if self._write(words(self.critical[0]), version) == 0:
                return done
            self.critical.pop(0)
            done += 1
        waiting = len(self.latest)
        budget = waiting if allowed is None else min(allowed, waiting)
        if budget <= 0:
            return done
        streams = self.latest.oldest(budget)
        k = self._write(self.latest.words, version, streams)
        self.latest.take(streams[:k])
        return done + k

    def take_drops(self) -> tuple[int, list[tuple[int, int]]]:
        ids, self.drop_ids = self.drop_ids, []
        return self.trades_dropped, ids


class FairShare:
    """Token buckets: one for the whole fan-out, one per consumer, shared by demand.

    Demand, the records/s offered to each consumer, is measured always (an EWMA over
    windows of `window_ns`). The budget is the lower of `cap_rate` (a fixed cap,
    --fanout-rate; 0: none) and the one `govern` sets (`dispatch.saturation`); with
    neither, nothing is metered. While the total demand fits the budget only the
    global bucket meters (nobody is held back). Beyond it (saturation) a consumer also
    needs tokens of its own bucket, refilled at budget x its share of the demand, so
    that every consumer receives the same fraction of what it subscribed to: the
    largest possible minimum, at least 25% whenever the budget is at least a quarter
    of the demand (the governor never sets less). Critical records are never metered.

    `grant` says how many records may go now; `used` takes the tokens of those that
    went (a backlogged outlet writes none of them, and must not spend tokens for them).
    """

    def __init__(self, rate: float, burst_ns: int, alpha: float = 0.2,
                 window_ns: int = 10_000_000):
        self.cap_rate = rate   # records/s from the configuration; 0: no fixed cap
        self.rate = rate       # the budget in force; 0: unlimited
        self.burst_ns = burst_ns
        self.alpha = alpha
        self.window_ns = window_ns
        self.cap = max(1.0, rate * burst_ns / 1e9)
        self.pool = self.cap                 # the global bucket, full at start
        self.tokens: dict[int, float] = {}   # per-consumer buckets
        self.demand: dict[int, float] = {}   # EWMA of offered records/s
        self.offered: dict[int, int] = {}    # records offered so far (a counter)
        self.saturated = False
        self._asked: dict[int, int] = {}
        self._last_ns: int | None = None
        self._window_ns: int | None = None   # start of the current demand window

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @property
    def total_demand(self) -> float:
        return sum(self.demand.values())

    def forget(self, cid: int) -> None:
        for d in (self.tokens, self.demand, self._asked, self.offered):
            d.pop(cid, None)

    def govern(self, budget: float | None) -> None:
        """Set the governed budget (records/s; None: lift it). The fixed cap still holds."""
        rate = self.cap_rate if budget is None else (
            min(self.cap_rate, budget) if self.cap_rate else budget)
        if rate == self.rate:
            return
        if rate and not self.rate:  # metering starts: a full global bucket, empty own ones
            self.tokens.clear()
            self.pool = max(1.0, rate * self.burst_ns / 1e9)
        self.rate = rate
        self.cap = max(1.0, rate * self.burst_ns / 1e9)
        self.pool = min(self.pool, self.cap)
        self.saturated = self.enabled and self.total_demand > rate

    def refill(self, now_ns: int) -> None:
        """Add tokens for the time since the last refill; re-measure demand every window."""
        last, self._last_ns = self._last_ns, now_ns
        if last is None or self._window_ns is None:
            self._window_ns = now_ns
            return
        if now_ns <= last:
            return
        if now_ns - self._window_ns >= self.window_ns:
            span, a = (now_ns - self._window_ns) / 1e9, self.alpha
            for cid, asked in self._asked.items():
                self.demand[cid] = (1 - a) * self.demand.get(cid, 0.0) + a * asked / span
                self._asked[cid] = 0
            self._window_ns = now_ns
        if not self.enabled:
            return
        dt = (now_ns - last) / 1e9
        depth = max(self.burst_ns / 1e9, dt)  # a slow round must not lose its refill
        total = self.total_demand
        self.saturated = total > self.rate
        self.pool = min(max(self.cap, self.rate * dt), self.pool + self.rate * dt)
        if total <= 0:
            return
        for cid, d in self.demand.items():
            share = self.rate * d / total
            self.tokens[cid] = min(max(1.0, share * depth), self.tokens.get(cid, 0.0) + share * dt)

    def grant(self, cid: int, n: int) -> int | None:
        """How many of `n` offered records consumer `cid` may receive now (None: all)."""
        self._asked[cid] = self._asked.get(cid, 0) + n
        self.offered[cid] = self.offered.get(cid, 0) + n
        return self.left(cid) if self.enabled else None

    def left(self, cid: int) -> int | None:
        """Tokens left for consumer `cid` (None: unlimited)."""
        if not self.enabled:
            return None
        if self.saturated:
            return int(min(self.tokens.get(cid, 0.0), self.pool))
        return int(self.pool)

    def used(self, cid: int, n: int) -> None:
        """Consumer `cid` received `n` metered records: take their tokens."""
        if self.enabled and n:
            self.pool -= n
            if self.saturated:
                self.tokens[cid] = self.tokens.get(cid, 0.0) - n
