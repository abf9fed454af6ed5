"""Exec reports between hosts, nothing lost: journal -> JetStream -> journal + `exec` ring.

Execution host (`ExecOut`): reads the exec journal (`channels.journal`, the source of
truth) and publishes each report, its raw 768 bytes, on `<subject>.<consumer name>`
(the name of the report's consumer_id in execution's order store; `<subject>.=<id>` for
an id it does not name, counted `unnamed`) into the JetStream stream `<stream>`
(subjects `<subject>.>`), with `Nats-Msg-Id: <exec_seq>` and `Nats-Expected-Last-Sequence:
<exec_seq - 1>`. So stream sequence == exec_seq, always, whatever the subject: the server drops a re-published
report (duplicate id, or the sequence check when it is older than the duplicate window)
and refuses one that would skip or reorder (a publish lost in a failover while later
ones were in flight). On start, on any refusal and on an ack that does not come, it asks
the stream for its last sequence and goes on from the journal after it. Publishes are
pipelined (`window` in flight); the acks come back on one inbox subscription.

Consumer host (`ExecIn`): keeps a local journal and lossless `exec` ring exactly as
execution does (`execution.publisher.ExecPublisher`), so the consumer SDK there resumes
from its exec_seq unchanged. It reads the stream from its journal's last exec_seq + 1
with an ephemeral pull consumer (no server-side acks: the local journal is the cursor),
appends in exec_seq order and drops what it already has; on a stall or error it makes
a new consumer at its cursor (a NATS node that died took the old one with it).

Per consumer (`ExecIn(consumer=NAME)`, NATS user NAME): it reads only
`<subject>.NAME`, through a consumer named `exec-in-NAME` (the server lets user NAME
create, read and delete that one only, filtered on its own subject: `bridge.config`),
so the other consumers' reports never reach this host. The local journal stays
gap-free by exec_seq, as the SDK reads it by position: each exec_seq of another
consumer (the gap between two of NAME's reports, which the stream sequence proves is
not NAME's) is a placeholder record: kind EXEC_REPORT, consumer_id 0, status 0, only
`exec_seq` set, that the SDK never hands out (it keeps its own consumer_id's reports;
a `monitor_all` reader on such a host sees the placeholders for what they are).

Both run in one asyncio loop; journal reads and ring writes are non-blocking calls in it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import nats
import numpy as np
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from channels.journal import JournalError, JournalReader
from channels.names import journal_path
from events import EVENT, Kind
from events.errors import MelticaError
from events.kinds import SCHEMA_VERSION
from events.records import RECORD_BYTES
from core.run import RunContext

log = logging.getLogger("bridge.exec")

STREAM = "EXEC"
SUBJECT = "exec.reports"


async def connect(servers: list[str], name: str, **kw) -> nats.NATS:
    """A client that reconnects forever (a NATS node may die under us)."""
    return await nats.connect(servers=servers, name=name, max_reconnect_attempts=-1,
                              reconnect_time_wait=0.2, connect_timeout=2, **kw)


class StreamMismatch(MelticaError):
    """The stream exists with other subjects (made by an older bridge, or for something else)."""


async def ensure_stream(js, stream: str = STREAM, subject: str = SUBJECT, replicas: int = 1) -> None:
    """Create the stream of exec reports (`<subject>.>`) unless it exists (file storage, no limits);
    StreamMismatch if it exists without that subject: reports would go nowhere."""
    try:
        info = await js.stream_info(stream)
        subjects = list(info.config.subjects or [])
        if f"{subject}.>" not in subjects:
            raise StreamMismatch(f"stream {stream} has subjects {subjects}; exec reports go on {subject}.<consumer>: "
                                 f"delete the stream (it is a copy: the journal is the source of truth) "
                                 f"or use another --stream / --subject")
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"], num_replicas=replicas,
                                         duplicate_window=600.0))


def consumer_name(consumer: str) -> str:
    """The JetStream consumer through which consumer `consumer`'s bridge reads its reports."""
    return f"exec-in-{consumer}"


class ConsumerNames:
    """consumer_id -> name, from execution's order store (read only; ids are never reused)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / "exec" / "orders.sqlite"  # execution.process: ctx.path("exec", "orders.sqlite")
        self.names: dict[int, str] = {}
        self.unnamed = 0

    def _reload(self) -> None:
        if not self.path.exists():
            return
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
            try:
                self.names = dict(db.execute("SELECT id, name FROM consumers"))
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("reading consumer names from %s: %s", self.path, exc)

    def token(self, consumer_id: int) -> str:
        """The subject token of `consumer_id`'s reports: its name, or `=<id>` if the store has none."""
        name = self.names.get(consumer_id)
        if name is None:
            self._reload()  # execution commits a name before any report of it: a miss is a new name
            name = self.names.get(consumer_id)
            if name is None:
                self.unnamed += 1
                return f"={consumer_id}"
        return name


async def retry(what: str, fn, *, stop: asyncio.Event | None = None, timeout_s: float = 60.0):
    """`await fn()` until it succeeds (NATS errors while a cluster elects a leader)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return await fn()
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise
            log.warning("%s: %s; retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class ExecOut:
    """Execution host: the journal of run `ctx` into the stream."""

    def __init__(self, ctx: RunContext, servers: list[str], *, stream: str = STREAM, subject: str = SUBJECT,
                 replicas: int = 1, window: int = 1024, ack_timeout_s: float = 2.0, auth: dict | None = None):
        self.ctx, self.servers, self.auth = ctx, servers, auth or {}
        self.stream, self.subject, self.replicas = stream, subject, replicas
        self.window, self.ack_timeout_s = window, ack_timeout_s
        self.published = 0      # reports the server stored (acks)
        self.duplicates = 0     # acks that said "duplicate" (a re-publish dropped by the server)
        self.resyncs = 0        # times the cursor was re-read from the stream
        self.acked_seq = 0      # the stream's last exec_seq as we know it
        self._next = 1
        self._inflight: dict[int, float] = {}
        self._gen = 0
        self._wake = asyncio.Event()
        self.names = ConsumerNames(ctx.run_dir)

    async def last_stream_seq(self, js) -> int:
        info = await js.stream_info(self.stream)
        return int(info.state.last_seq)

    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self.servers, "bridge-exec-out", **self.auth)
        js = nc.jetstream()
        try:
            await retry("create stream", lambda: ensure_stream(js, self.stream, self.subject, self.replicas), stop=stop)
            journal = await self._open_journal(stop)
            if journal is None:
                return
            await self._resync(js, journal, stop)
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox + ".>", cb=self._on_ack)
            try:
                await self._loop(nc, js, journal, inbox, stop)
            finally:
                await sub.unsubscribe()
                journal.close()
        finally:
            await nc.drain() if nc.is_connected else await nc.close()

    async def _open_journal(self, stop: asyncio.Event) -> JournalReader | None:
        path = journal_path(self.ctx.run_dir)
        while not stop.is_set():
            try:
                return JournalReader(path)
            except (FileNotFoundError, JournalError):
                await asyncio.sleep(0.05)  # execution not started yet
        return None

    async def _resync(self, js, journal: JournalReader, stop: asyncio.Event) -> None:
        """Forget what is in flight; go on after the stream's last exec_seq."""
        self._gen += 1
        self._inflight.clear()
        last = await retry("stream info", lambda: self.last_stream_seq(js), stop=stop, timeout_s=3600)
        if last > journal.last_seq():
            raise JournalError(f"stream {self.stream} holds exec_seq {last}, the journal only "
                               f"{journal.last_seq()}: not this run's stream (delete it, or use another --stream)")
        self.acked_seq = last
        self._next = last + 1
        log.info("stream %s at exec_seq %d, journal at %d: publishing from %d", self.stream, last,
                 journal.last_seq(), self._next)

    def _on_ack_sync(self, gen: int, seq: int, data: bytes) -> None:
        if gen != self._gen or seq not in self._inflight:
            return
        del self._inflight[seq]
        ack = orjson.loads(data) if data else {}
        if "error" in ack or not data:
            self._failed = True
        else:
            self.published += 1
            if ack.get("duplicate"):
                self.duplicates += 1
            self.acked_seq = max(self.acked_seq, seq)
        self._wake.set()

    async def _on_ack(self, msg) -> None:
        _, gen, seq = msg.subject.rsplit(".", 2)
        self._on_ack_sync(int(gen), int(seq), msg.data)

    async def _loop(self, nc, js, journal: JournalReader, inbox: str, stop: asyncio.Event) -> None:
        self._failed = False
        while not stop.is_set():
            now = time.monotonic()
            if self._failed or (self._inflight and now - min(self._inflight.values()) > self.ack_timeout_s):
                self.resyncs += 1
                self._failed = False
                await self._resync(js, journal, stop)
                continue
            room = self.window - len(self._inflight)
            last = journal.last_seq()
            if room > 0 and last >= self._next and nc.is_connected:
                recs = journal.read(self._next, room)
                raw = recs.tobytes()
                cids = recs["consumer_id"].tolist()
                for i in range(len(recs)):
                    seq = self._next + i
                    self._inflight[seq] = now
                    subj = f"{self.subject}.{self.names.token(cids[i])}"
                    await nc.publish(subj, raw[i * RECORD_BYTES:(i + 1) * RECORD_BYTES],
                                     reply=f"{inbox}.{self._gen}.{seq}",
                                     headers={"Nats-Msg-Id": str(seq), "Nats-Expected-Last-Sequence": str(seq - 1)})
                self._next += len(recs)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.005 if not self._inflight else 0.05)
            except asyncio.TimeoutError:
                pass

    def statistics(self) -> dict:
        return {"published": self.published, "duplicates": self.duplicates, "resyncs": self.resyncs,
                "stream_seq": self.acked_seq, "inflight": len(self._inflight), "unnamed": self.names.unnamed}


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

    @property
    def last_seq(self) -> int:
        return self.pub.last_seq

    async def _subscribe(self, js):
        log.info("reading %s of stream %s from exec_seq %d", self.filter, self.stream, self.last_seq + 1)
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1,
                             ack_policy=AckPolicy.NONE, inactive_threshold=10.0, mem_storage=True,
                             num_replicas=1)
        if self.consumer is None:
            return await js.pull_subscribe(self.filter, durable=None, stream=self.stream, config=cfg)
        name = consumer_name(self.consumer)
        try:  # the one a killed bridge left: it starts elsewhere, and a consumer's start is fixed
            await js.delete_consumer(self.stream, name)
        except NotFoundError:
            pass
        cfg.name, cfg.filter_subject = name, self.filter
        await js.add_consumer(self.stream, cfg)
        return await js.pull_subscribe_bind(name, stream=self.stream)

    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self.servers, "bridge-exec-in", **self.auth)
        js = nc.jetstream()
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
            self.pub.pump()
        finally:
            if sub is not None:
                await self._drop(sub)
            await nc.close()
            self.pub.close()

    async def _behind(self, js) -> bool:
        """True if the stream holds reports for us that our consumer does not deliver."""
        try:
            if self.consumer is None:
                return int((await js.stream_info(self.stream)).state.last_seq) > self.last_seq
            info = await js.consumer_info(self.stream, consumer_name(self.consumer))
            return int(info.num_pending or 0) > 0
        except NotFoundError:
            return True  # our consumer is gone (its node died, or it was idle too long)
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
        """Journal and publish the next reports of `msgs`; False if they broke exec_seq order."""
        recs = np.frombuffer(b"".join(m.data for m in msgs), EVENT)
        if len(recs) * RECORD_BYTES != sum(len(m.data) for m in msgs):
            raise JournalError("a message on the exec stream is not whole EVENT records")
        self.received += len(recs)
        seqs = recs["exec"]["exec_seq"]
        keep = seqs > self.last_seq
        self.duplicates += int((~keep).sum())
        recs = recs[keep]
        if not len(recs):
            return True
        if self.consumer is not None:
            return self._append_filtered(recs)
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

    def _append_filtered(self, recs: np.ndarray) -> bool:
        """Our reports, the exec_seqs between them (other consumers') as placeholders."""
        seqs = recs["exec"]["exec_seq"].astype(np.int64)
        if len(seqs) > 1 and not (np.diff(seqs) > 0).all():
            log.error("exec stream out of order after exec_seq %d", self.last_seq)
            return False
        first = self.last_seq + 1
        out = np.zeros(int(seqs[-1]) - self.last_seq, EVENT)
        out["schema_version"] = SCHEMA_VERSION
        out["kind"] = Kind.EXEC_REPORT
        out["exec"]["exec_seq"] = np.arange(first, first + len(out))
        out[seqs - first] = recs
        self.withheld += len(out) - len(recs)
        self.pub.append(out)
        self.pub.pump()
        return True

    def statistics(self) -> dict:
        return {"received": self.received, "duplicates": self.duplicates, "restarts": self.restarts,
                "last_seq": self.last_seq, "backlog": self.pub.backlog, "withheld": self.withheld}
