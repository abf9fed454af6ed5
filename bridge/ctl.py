"""Order entry and control for remote consumers: the local endpoint, carried by NATS request/reply.

Consumer host (`CtlExpose`): binds the run's execution endpoint
(`channels.names.execution_endpoint`), so the consumer SDK there connects as if
execution were local. Each request frame (a `channels.messages` request, unchanged)
goes out as a NATS request on `<prefix>.execution.<consumer>`; the one reply comes back
to the SDK's socket. Without an answer (execution host down) nothing is sent back: the
SDK's own timeout applies, as with a local execution that is down.

Execution host (`CtlServe`): answers `<prefix>.execution.*` (a queue group) by sending
each request to the local execution endpoint from one DEALER per consumer and routing
each reply, by request_id, to the requester's inbox.

Identity: across hosts a consumer is its NATS user. The server's permissions
(`bridge.config`) let user <name> publish only on `<prefix>.execution.<name>` and read
only its own inbox, so the subject names the consumer; `CtlServe` refuses a request
whose `consumer` field differs from the subject ("unauthorized") and puts the local key
of the subject's consumer in it (`channels.identity`: it speaks for a name the NATS
server authenticated). Dispatch control (subscriptions) for remote consumers is not
carried yet.
"""

from __future__ import annotations

import asyncio
import logging
import os

import nats
import orjson
import zmq
import zmq.asyncio

from channels.identity import consumer_key
from channels.messages import reply
from channels.names import execution_endpoint, ipc_path
from channels.server import control_socket

log = logging.getLogger("bridge.ctl")

PREFIX = "meltica.ctl"


def ctl_subject(consumer: str, target: str = "execution", prefix: str = PREFIX) -> str:
    return f"{prefix}.{target}.{consumer}"


def _request_fields(payload: bytes) -> tuple[dict | None, object, object]:
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(msg, dict):
        return None, None, None
    return msg, msg.get("request_id"), msg.get("cmd")


class CtlServe:
    """Execution host: NATS requests of remote consumers -> the local execution endpoint."""

    def __init__(self, ctx, *, prefix: str = PREFIX, endpoint: str | None = None):
        self.ctx, self.prefix = ctx, prefix
        self.endpoint = endpoint or execution_endpoint(ctx.run_dir)
        self.zctx = zmq.asyncio.Context()
        self.forwarded = 0
        self.refused = 0
        self.replied = 0
        self._dealers: dict[str, zmq.asyncio.Socket] = {}
        self._waiting: dict[str, dict[int, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._nc = None

    def _dealer(self, name: str) -> zmq.asyncio.Socket:
        sock = self._dealers.get(name)
        if sock is None:
            sock = control_socket(self.zctx, zmq.DEALER)
            sock.connect(self.endpoint)
            self._dealers[name] = sock
            self._waiting[name] = {}
            task = asyncio.get_running_loop().create_task(self._replies(name, sock))
            self._tasks.add(task)
        return sock

    async def _replies(self, name: str, sock) -> None:
        waiting = self._waiting[name]
        while True:
            raw = await sock.recv()
            msg, rid, _ = _request_fields(raw)
            inbox = waiting.pop(rid, None) if isinstance(rid, int) else None
            if inbox is None:
                log.warning("reply for %s with no request waiting: %.80r", name, raw)
                continue
            await self._nc.publish(inbox, raw)
            self.replied += 1

    async def _on_request(self, m) -> None:
        name = m.subject.rsplit(".", 1)[-1]
        msg, rid, cmd = _request_fields(m.data)
        if not m.reply:
            return
        if msg is None or not isinstance(rid, int):
            await self._answer(m, reply(None, None, code="malformed", reason="a request is a JSON object with an int request_id"))
            return
        if msg.get("consumer") != name:
            self.refused += 1
            await self._answer(m, reply(rid, cmd if isinstance(cmd, str) else None, code="unauthorized",
                                        reason=f"consumer {str(msg.get('consumer'))[:48]!r} may not send on {m.subject}"))
            return
        msg["key"] = consumer_key(self.ctx.run_dir, name)
        sock = self._dealer(name)
        self._waiting[name][rid] = m.reply
        await sock.send(orjson.dumps(msg))
        self.forwarded += 1

    async def _answer(self, m, body: dict) -> None:
        await self._nc.publish(m.reply, orjson.dumps(body))

    async def run(self, nc, stop: asyncio.Event) -> None:
        self._nc = nc
        sub = await nc.subscribe(f"{self.prefix}.execution.*", queue="ctl-execution", cb=self._on_request)
        log.info("serving %s.execution.* -> %s", self.prefix, self.endpoint)
        try:
            await stop.wait()
        finally:
            await sub.unsubscribe()
            for t in self._tasks:
                t.cancel()
            for s in self._dealers.values():
                s.close(0)
            self.zctx.term()

    def statistics(self) -> dict:
        return {"forwarded": self.forwarded, "refused": self.refused, "replied": self.replied}


class CtlExpose:
    """Consumer host: the run's execution endpoint, answered through NATS."""

    def __init__(self, ctx, *, prefix: str = PREFIX, consumer: str | None = None, timeout_s: float = 5.0):
        self.ctx, self.prefix, self.consumer, self.timeout_s = ctx, prefix, consumer, timeout_s
        self.endpoint = execution_endpoint(ctx.run_dir)
        self.zctx = zmq.asyncio.Context()
        self.forwarded = 0
        self.refused = 0
        self.unanswered = 0
        self._tasks: set[asyncio.Task] = set()

    async def _forward(self, nc, router, ident: bytes, name: str, payload: bytes) -> None:
        try:
            resp = await nc.request(ctl_subject(name, prefix=self.prefix), payload, timeout=self.timeout_s)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError) as exc:
            self.unanswered += 1
            log.warning("request of %s unanswered: %s", name, type(exc).__name__)
            return
        await router.send_multipart([ident, resp.data])

    async def run(self, nc, stop: asyncio.Event) -> None:
        router = control_socket(self.zctx, zmq.ROUTER)
        path = ipc_path(self.endpoint)
        if path and os.path.exists(path):
            os.unlink(path)  # left by a killed bridge; this process is the run's execution endpoint
        router.bind(self.endpoint)
        log.info("exposing %s through %s.execution.<consumer>", self.endpoint, self.prefix)
        recv = None
        try:
            while not stop.is_set():
                recv = recv or asyncio.ensure_future(router.recv_multipart())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({recv, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if recv not in done:
                    continue
                frames, recv = recv.result(), None
                ident, payload = frames[0], frames[-1]
                msg, rid, cmd = _request_fields(payload)
                name = msg.get("consumer") if msg is not None else None
                if not isinstance(name, str) or not name or "." in name or "*" in name or ">" in name:
                    await router.send_multipart([ident, orjson.dumps(reply(
                        rid if isinstance(rid, int) else None, None, code="malformed", reason="no consumer name"))])
                    continue
                if self.consumer is not None and name != self.consumer:
                    self.refused += 1
                    await router.send_multipart([ident, orjson.dumps(reply(
                        rid if isinstance(rid, int) else None, cmd if isinstance(cmd, str) else None,
                        code="unauthorized", reason=f"this bridge speaks for consumer {self.consumer!r} only"))])
                    continue
                self.forwarded += 1
                task = asyncio.ensure_future(self._forward(nc, router, ident, name, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            if recv is not None:
                recv.cancel()
            for t in list(self._tasks):
                t.cancel()
            router.close(0)
            self.zctx.term()

    def statistics(self) -> dict:
        return {"forwarded": self.forwarded, "refused": self.refused, "unanswered": self.unanswered}
