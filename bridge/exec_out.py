"""Exec reports between hosts, the execution host's side: the exec journal -> JetStream.

Execution host: `ExecOut` reads the exec journal (`channels.journal`, the source of
truth) and publishes each record, its raw 768 bytes, into the JetStream stream `<stream>`
(subjects `<subject>.>`): an exec report on `<subject>.<consumer name>` (the name of the
report's consumer_id in execution's order store; `<subject>.=<id>` for an id it does not
name, counted `unnamed`), an ACCOUNT record (every consumer's: balances, positions) on
`<subject>.=account` (`ACCOUNT_TOKEN`: `=` is no character of a consumer name,
channels.messages.NAME_RE, and `account` is no id, so it is no consumer's subject); each
with `Nats-Msg-Id: <exec_seq>` and `Nats-Expected-Last-Sequence:
<exec_seq - 1>`. So stream sequence == exec_seq, always, whatever the subject: the server drops a re-published
report (duplicate id, or the sequence check when it is older than the duplicate window)
and refuses one that would skip or reorder (a publish lost in a failover while later
ones were in flight). On start, on any refusal and on an ack that does not come, it asks
the stream for its last sequence and goes on from the journal after it. Publishes are
pipelined (`window` in flight); the acks come back on one inbox subscription.

What both sides agree on (stream, subjects, connecting) is in `bridge.execs`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import orjson

from channels.journal import JournalError, JournalReader
from channels.names import journal_path
from core.run import RunContext
from events import Kind
from events.records import RECORD_BYTES

from .execs import ACCOUNT_TOKEN, STREAM, SUBJECT, connect, ensure_stream, retry

log = logging.getLogger("bridge.exec")


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
                account = (recs["kind"] == Kind.ACCOUNT).tolist()
                for i in range(len(recs)):
                    seq = self._next + i
                    self._inflight[seq] = now
                    subj = f"{self.subject}.{ACCOUNT_TOKEN if account[i] else self.names.token(cids[i])}"
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
