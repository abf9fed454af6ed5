"""Exec reports between hosts, the consumer host's side: JetStream -> a local journal + `exec` ring.

Consumer host: `ExecIn` keeps a local journal and lossless `exec` ring exactly as
execution does (`execution.publisher.ExecPublisher`), so the consumer SDK there resumes
from its exec_seq unchanged. It reads the stream from its journal's last exec_seq + 1
with an ephemeral pull consumer (no server-side acks: the local journal is the cursor),
appends in exec_seq order and drops what it already has; on a stall or error it makes
a new consumer at its cursor (a NATS node that died took the old one with it).

Per consumer (`ExecIn(consumer=NAME)`, NATS user NAME): it reads only `<subject>.NAME`
and the account subject, through two consumers, `exec-in-NAME` filtered on its own
subject and `exec-acct-NAME` filtered on the account subject (the server lets user NAME
create, read and delete those two only, each pinned to its filter: `bridge.config`; one
consumer with two filters cannot be pinned so), so the other consumers' reports never
reach this host. Both deliver in exec_seq order; they are merged by exec_seq: the journal
is written up to the lowest exec_seq up to which both are known complete (what one has
delivered; for one that is idle, what the other had delivered when the server said it has
nothing pending and nothing delivered that we did not get: `_Feed`). The local journal
stays gap-free by exec_seq, as the SDK reads it by position: each exec_seq of another
consumer (one neither delivered, which the stream sequences prove is not NAME's nor an
ACCOUNT record) is a placeholder record: kind EXEC_REPORT, consumer_id 0, status 0, only
`exec_seq` set, that the SDK never hands out (it keeps its own consumer_id's reports and
applies the ACCOUNT records; a `monitor_all` reader on such a host sees the placeholders
for what they are). A delivery lost (a gap in a consumer's delivery sequence) or any
error re-makes both consumers at the journal's cursor.

What both sides agree on (stream, subjects, consumer names, connecting) is in `bridge.execs`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats
import numpy as np
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from channels.journal import JournalError
from core.run import RunContext
from events import EVENT, Kind
from events.kinds import SCHEMA_VERSION
from events.records import RECORD_BYTES

from .execs import ACCOUNT_TOKEN, STREAM, SUBJECT, account_consumer_name, connect, consumer_name, retry

log = logging.getLogger("bridge.exec")


class _Feed:
    """One ordered JetStream consumer of a per-consumer ExecIn: what it delivered, not yet journaled.

    `complete`: every record of its filter up to this exec_seq has reached us. At least
    the last it delivered (`seen`: the stream delivers a filter in sequence order); more
    when the server says it has nothing pending for it and has delivered nothing we did not
    get (`ExecIn._probe`): then it is complete up to what the stream held by then."""

    def __init__(self, name: str, filter: str, sub, start: int):
        self.name, self.filter, self.sub = name, filter, sub
        self.recs = np.zeros(0, EVENT)   # delivered, exec_seq > the journal's last, in order
        self.seen = self.complete = start
        self.dseq = 0                    # its last delivery (consumer) sequence: a fresh consumer's start at 1
        self.duplicates = 0              # records delivered again (dropped)
        self.late = 0                    # records delivered after it was known complete past them
        self.task: asyncio.Future | None = None

    def take(self, recs: np.ndarray, dseqs: list[int | None]) -> bool:
        """Keep `recs` (in exec_seq order); False if a delivery was lost or out of order."""
        for d in dseqs:
            if d is not None:
                if d != self.dseq + 1:
                    log.error("%s: delivery %d after %d: a delivery was lost", self.name, d, self.dseq)
                    return False
                self.dseq = d
        if not len(recs):
            return True
        seqs = recs["exec"]["exec_seq"].astype(np.int64)
        if len(seqs) > 1 and not (np.diff(seqs) > 0).all():
            log.error("%s: exec stream out of order after exec_seq %d", self.name, self.seen)
            return False
        old = seqs <= self.seen
        late = ~old & (seqs <= self.complete)
        if late.any():  # the server said it had nothing pending: cannot happen, and cannot be undone
            log.error("%s: exec_seqs %s delivered after its consumer was idle past them: journaled as "
                      "placeholders", self.name, seqs[late].tolist()[:10])
        self.duplicates += int(old.sum())
        self.late += int(late.sum())
        keep = seqs > self.complete
        self.seen = max(self.seen, int(seqs[-1]))
        recs, seqs = recs[keep], seqs[keep]
        if not len(recs):
            return True
        self.recs = np.concatenate([self.recs, recs]) if len(self.recs) else recs
        self.seen = int(seqs[-1])
        self.complete = max(self.complete, self.seen)
        return True

    def upto(self, seq: int) -> np.ndarray:
        """Its records up to exec_seq `seq`, removed from it."""
        n = int(np.searchsorted(self.recs["exec"]["exec_seq"], seq, side="right"))
        out, self.recs = self.recs[:n], self.recs[n:]
        return out


class ExecIn:
    """Consumer host: the stream into run `ctx`'s local journal and `exec` ring."""

    def __init__(self, ctx: RunContext, servers: list[str], *, stream: str = STREAM, subject: str = SUBJECT,
                 batch: int = 512, stall_s: float = 2.0, sync: bool = True, auth: dict | None = None,
                 consumer: str | None = None):
        from execution.publisher import ExecPublisher  # the one writer of a journal + exec ring

        self.ctx, self.servers, self.stream, self.subject = ctx, servers, stream, subject
        self.consumer = consumer
        self.filter = f"{subject}.{consumer}" if consumer else f"{subject}.>"
        self.auth = auth or {}
        self.batch, self.stall_s = batch, stall_s
        self.pub = ExecPublisher(ctx, sync=sync)
        self.received = 0
        self.duplicates = 0     # reports we already had (dropped)
        self.restarts = 0       # consumers re-made at our cursor
        self.withheld = 0       # other consumers' exec_seqs, journaled here as placeholders
        self.accounts = 0       # ACCOUNT records journaled (per consumer: through exec-acct-NAME)
        self.probes = 0         # consumer infos asked to complete an idle consumer
        self.late = 0           # records delivered after their consumer was known complete past them
        self._feeds: list[_Feed] = []

    @property
    def last_seq(self) -> int:
        return self.pub.last_seq

    def _config(self) -> ConsumerConfig:
        return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1,
                              ack_policy=AckPolicy.NONE, inactive_threshold=10.0, mem_storage=True,
                              num_replicas=1)

    async def _subscribe(self, js):
        log.info("reading %s of stream %s from exec_seq %d", self.filter, self.stream, self.last_seq + 1)
        return await js.pull_subscribe(self.filter, durable=None, stream=self.stream, config=self._config())

    async def _named(self, js, name: str, filter: str):
        """A pull subscription on a new consumer `name` on `filter` at our cursor."""
        try:  # the one a killed bridge left: it starts elsewhere, and a consumer's start is fixed
            await js.delete_consumer(self.stream, name)
        except NotFoundError:
            pass
        cfg = self._config()
        cfg.name, cfg.filter_subject = name, filter
        await js.add_consumer(self.stream, cfg)
        return await js.pull_subscribe_bind(name, stream=self.stream)

    async def _open_feeds(self, js) -> list[_Feed]:
        """Our reports' consumer and the ACCOUNT records', both at our cursor."""
        log.info("reading %s and %s.%s of stream %s from exec_seq %d", self.filter, self.subject, ACCOUNT_TOKEN,
                 self.stream, self.last_seq + 1)
        feeds: list[_Feed] = []
        try:
            for name, filter in ((consumer_name(self.consumer), self.filter),
                                 (account_consumer_name(self.consumer), f"{self.subject}.{ACCOUNT_TOKEN}")):
                feeds.append(_Feed(name, filter, await self._named(js, name, filter), self.last_seq))
        except BaseException:
            await self._drop_feeds(feeds)
            raise
        self._feeds = feeds
        return feeds

    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self.servers, "bridge-exec-in", **self.auth)
        js = nc.jetstream()
        try:
            if self.consumer is None:
                await self._run_all(js, stop)
            else:
                await self._run_merged(js, stop)
            self.pub.pump()
        finally:
            await nc.close()
            self.pub.close()

    async def _run_all(self, js, stop: asyncio.Event) -> None:
        """Every record, through one ephemeral consumer (the host user)."""
        sub = None
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                self.pub.pump()
                self.pub.heartbeat()
                if sub is None:
                    sub = await retry("subscribe", lambda: self._subscribe(js), stop=stop, timeout_s=3600)
                    idle_since = time.monotonic()
                try:
                    msgs = await sub.fetch(self.batch, timeout=0.1)
                except (asyncio.TimeoutError, nats.errors.TimeoutError):
                    msgs = []
                except (nats.errors.Error, NotFoundError) as exc:
                    log.warning("fetch: %s; new consumer at exec_seq %d", exc, self.last_seq + 1)
                    msgs, sub = [], await self._drop(sub)
                    self.restarts += 1
                    continue
                if msgs:
                    idle_since = time.monotonic()
                    if not self._append(msgs):
                        sub = await self._drop(sub)
                        self.restarts += 1
                elif time.monotonic() - idle_since > self.stall_s:
                    # nothing for a while: if the stream is ahead of us, the consumer is gone
                    if await self._behind(js):
                        sub = await self._drop(sub)
                        self.restarts += 1
                    idle_since = time.monotonic()
        finally:
            if sub is not None:
                await self._drop(sub)

    async def _run_merged(self, js, stop: asyncio.Event) -> None:
        """Our reports and the ACCOUNT records, two consumers fetched at once, merged by exec_seq."""
        feeds: list[_Feed] | None = None
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                self.pub.pump()
                self.pub.heartbeat()
                if feeds is None:
                    feeds = await retry("subscribe", lambda: self._open_feeds(js), stop=stop, timeout_s=3600)
                    idle_since = time.monotonic()
                for f in feeds:
                    if f.task is None:
                        f.task = asyncio.ensure_future(f.sub.fetch(self.batch, timeout=0.1))
                await asyncio.wait([f.task for f in feeds], return_when=asyncio.FIRST_COMPLETED)
                ok, got = True, False
                for f in feeds:
                    if not f.task.done():
                        continue
                    task, f.task = f.task, None
                    try:
                        msgs = task.result()
                    except (asyncio.TimeoutError, nats.errors.TimeoutError):
                        continue
                    except (nats.errors.Error, NotFoundError) as exc:
                        log.warning("fetch %s: %s; new consumers at exec_seq %d", f.name, exc, self.last_seq + 1)
                        ok = False
                        continue
                    got = got or bool(msgs)
                    ok = ok and f.take(self._records(msgs, drop_old=False), [self._delivery(m) for m in msgs])
                if ok:
                    ok = await self._merge(js, feeds)
                if got:
                    idle_since = time.monotonic()
                elif ok and time.monotonic() - idle_since > self.stall_s:
                    # nothing for a while: if either is gone or holds back what it has, make both anew
                    ok = not await self._feeds_behind(js, feeds)
                    idle_since = time.monotonic()
                if not ok:
                    feeds = await self._drop_feeds(feeds)
                    self.restarts += 1
        finally:
            if feeds is not None:
                await self._drop_feeds(feeds)

    @staticmethod
    def _delivery(msg) -> int | None:
        """The message's delivery (consumer) sequence; None if it has no JetStream metadata."""
        try:
            return int(msg.metadata.sequence.consumer)
        except (ValueError, AttributeError, IndexError, TypeError, nats.errors.Error):
            return None

    def _records(self, msgs, drop_old: bool = True) -> np.ndarray:
        """The records of `msgs`; past the journal's last only if `drop_old` (those before: counted
        duplicates; a per-consumer feed tells duplicates from late ones itself)."""
        recs = np.frombuffer(b"".join(m.data for m in msgs), EVENT)
        if len(recs) * RECORD_BYTES != sum(len(m.data) for m in msgs):
            raise JournalError("a message on the exec stream is not whole EVENT records")
        self.received += len(recs)
        if not drop_old:
            return recs
        keep = recs["exec"]["exec_seq"] > self.last_seq
        self.duplicates += int((~keep).sum())
        return recs[keep]

    async def _probe(self, js, f: _Feed, upto: int) -> bool:
        """Mark `f` complete up to `upto` (an exec_seq the stream held before this call) if the server
        has nothing pending for it and delivered nothing we lack. False if its consumer is gone."""
        self.probes += 1
        try:
            info = await js.consumer_info(self.stream, f.name)
        except NotFoundError:
            return False
        except (nats.errors.Error, asyncio.TimeoutError):
            return True  # ask again on the next round
        if int(info.num_pending or 0) == 0 and info.delivered is not None \
                and int(info.delivered.consumer_seq or 0) == f.dseq:
            f.complete = max(f.complete, upto)
        return True

    async def _merge(self, js, feeds: list[_Feed]) -> bool:
        """Journal every exec_seq up to where both feeds are complete; False if a consumer is gone."""
        upto = max(f.seen for f in feeds)
        if upto <= self.last_seq:
            return True
        for f in feeds:
            if f.complete < upto and not await self._probe(js, f, upto):
                return False
        end = min(f.complete for f in feeds)
        if end <= self.last_seq:
            return True
        first = self.last_seq + 1
        out = np.zeros(end - self.last_seq, EVENT)
        out["schema_version"] = SCHEMA_VERSION
        out["kind"] = Kind.EXEC_REPORT
        out["exec"]["exec_seq"] = np.arange(first, end + 1)
        real = 0
        for f in feeds:
            recs = f.upto(end)
            out[recs["exec"]["exec_seq"].astype(np.int64) - first] = recs
            real += len(recs)
        self.accounts += int((out["kind"] == Kind.ACCOUNT).sum())
        self.withheld += len(out) - real
        self.pub.append(out)
        self.pub.pump()
        return True

    async def _feeds_behind(self, js, feeds: list[_Feed]) -> bool:
        for f in feeds:
            try:
                info = await js.consumer_info(self.stream, f.name)
                if int(info.num_pending or 0) > 0:
                    return True
            except NotFoundError:
                return True
            except (nats.errors.Error, asyncio.TimeoutError):
                pass
        return False

    async def _drop_feeds(self, feeds: list[_Feed]) -> None:
        for f in feeds:
            self.duplicates += f.duplicates
            self.late += f.late
            f.duplicates = f.late = 0
            if f.task is not None:
                f.task.cancel()
                try:
                    await f.task
                except BaseException:  # noqa: BLE001 - cancelled or failed: either way we leave it
                    pass
                f.task = None
            await self._drop(f.sub)
        return None

    async def _behind(self, js) -> bool:
        """True if the stream holds reports for us that our consumer does not deliver."""
        try:
            return int((await js.stream_info(self.stream)).state.last_seq) > self.last_seq
        except NotFoundError:
            return True
        except (nats.errors.Error, asyncio.TimeoutError):
            return False

    @staticmethod
    async def _drop(sub) -> None:
        try:
            await sub.unsubscribe()
        except (nats.errors.Error, asyncio.TimeoutError):
            pass
        return None

    def _append(self, msgs) -> bool:
        """Journal and publish the next records of `msgs`; False if they broke exec_seq order."""
        recs = self._records(msgs)
        if not len(recs):
            return True
        expect = np.arange(self.last_seq + 1, self.last_seq + 1 + len(recs))
        if not np.array_equal(recs["exec"]["exec_seq"], expect):
            # cannot happen while stream seq == exec_seq; keep only the in-order run
            ok = recs["exec"]["exec_seq"] == expect
            n = int(np.argmin(ok)) if not ok.all() else len(recs)
            log.error("exec stream out of order after exec_seq %d; keeping %d", self.last_seq, n)
            if n:
                self.pub.append(np.ascontiguousarray(recs[:n]))
            return False
        self.pub.append(np.ascontiguousarray(recs))
        self.pub.pump()
        return True

    def statistics(self) -> dict:
        dup = self.duplicates + sum(f.duplicates for f in self._feeds)
        late = self.late + sum(f.late for f in self._feeds)
        return {"received": self.received, "duplicates": dup, "restarts": self.restarts,
                "last_seq": self.last_seq, "backlog": self.pub.backlog, "withheld": self.withheld,
                "accounts": self.accounts, "probes": self.probes, "late": late}
