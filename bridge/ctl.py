"""Order entry and control of remote consumers: the local endpoints, carried by NATS request/reply.

A consumer on another host talks to the same two endpoints as a local one, with the
unchanged SDK: execution's (`hello`, orders) and dispatch's (register, subscribe,
unsubscribe, trading switch, ...). Both are "targets" of the two halves below.

Consumer host (`CtlExpose`): binds the run's endpoint of each target
(`channels.names`), so the SDK connects as if the servers were local. Each request
frame (a `channels.messages` request, unchanged) goes out on
`<prefix>.<target>.<consumer>` with a reply subject of this bridge's own inbox
(`<inbox>.<n>`, one number per request), and every answer that comes back there goes
to the SDK's socket, in order: execution answers once, dispatch twice (an ack at once,
then the result, maybe later: set_trading_mode waits for execution). A request is done
at its "result"; one without it after `timeout_s` is forgotten (counted `unanswered`):
the SDK's own timeout applies, as with a local server that is down.

Execution or dispatch host (`CtlServe`): answers `<prefix>.<target>.*` (a queue group
per target) by sending each request to the local endpoint from one DEALER per
consumer, and every frame the server sends back, matched by request_id, to the
request's reply subject (NATS lets the server's user answer up to twice:
`bridge.config`).

Dispatch's other channel, the consumer's ring: dispatch writes market data, and the
same acks and results, on `consumer.<name>.md` on its host. When a remote consumer's
`register` succeeds, `CtlServe` reads that ring from then on (`md.MdOut.add`, before
it passes the result on) and sends it as raw batches on `meltica.ring.consumer.<name>.md`;
`CtlExpose` subscribes to it before it sends the consumer's first request, and creates
the local ring (the capacity dispatch answered) before it hands the register result to
the SDK, which attaches to it as it would locally. When dispatch closes the ring
(unregister, a silent consumer released, dispatch gone), a 0-record batch closes the
local one too (`md`), so the SDK there registers again, as it does after a local
dispatch restart. A restarted `CtlServe` does not know which rings it carried: it says
"gone" on the subject of every consumer ring of its run, so each remote SDK registers
again (dispatch answers with the registration it has) and its ring follows from then.
A restarted `CtlExpose` makes the local ring anew: the SDK sees its writer replaced
and registers again. The ring's losses are counted as for any ring over core NATS.

Identity: across hosts a consumer is its NATS user. The server's permissions
(`bridge.config`) let user <name> publish only on `<prefix>.<target>.<name>` and read
only its own inbox and ring subject, so the subject names the consumer; `CtlServe`
refuses a request whose `consumer` field differs from the subject ("unauthorized"; a
request without one, such as an operator's listing of every consumer, too) and puts
in it the local key of the subject's consumer (`channels.identity`: it speaks for a
name the NATS server authenticated). A remote process's pid means nothing to dispatch
(another host's pid space): `register` reaches dispatch with pid 0, so the
registration lives by the SDK's heartbeats (dispatch's silence timeout), and a
restarted remote consumer finds its registration as it left it while that lasts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time

import orjson
import zmq
import zmq.asyncio

from channels.identity import consumer_key
from channels.messages import reply
from channels.names import consumer_ring, dispatch_endpoint, execution_endpoint, ipc_path
from channels.server import control_socket

from .md import PREFIX as MD_PREFIX
from .md import MdIn, MdOut

log = logging.getLogger("bridge.ctl")

PREFIX = "meltica.ctl"
TARGETS = {"execution": execution_endpoint, "dispatch": dispatch_endpoint}


def ctl_subject(consumer: str, target: str = "execution", prefix: str = PREFIX) -> str:
    return f"{prefix}.{target}.{consumer}"


def _fields(payload: bytes) -> tuple[dict | None, object, object]:
    """(the JSON object, its request_id, its cmd), or Nones if it is not an object."""
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(msg, dict):
        return None, None, None
    return msg, msg.get("request_id"), msg.get("cmd")


def _check_targets(targets) -> tuple[str, ...]:
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"targets are {', '.join(TARGETS)}: targets={list(targets)!r}")
    return tuple(dict.fromkeys(targets))


class CtlServe:
    """Execution or dispatch host: NATS requests of remote consumers -> the local endpoints."""

    def __init__(self, ctx, *, prefix: str = PREFIX, targets=("execution",), endpoints: dict | None = None,
                 md_prefix: str = MD_PREFIX):
        self.ctx, self.prefix = ctx, prefix
        self.targets = _check_targets(targets)
        self.endpoints = {t: (endpoints or {}).get(t) or TARGETS[t](ctx.run_dir) for t in self.targets}
        self.zctx = zmq.asyncio.Context()
        self.forwarded = 0
        self.refused = 0
        self.replied = 0
        self.unanswered = 0
        self.forget_s = 60.0
        self.rings = MdOut(ctx.namespace, [], prefix=md_prefix, announce_gone=True)
        self._dealers: dict[tuple[str, str], zmq.asyncio.Socket] = {}
        self._waiting: dict[tuple[str, str], dict[int, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._nc = None

    def _dealer(self, target: str, name: str) -> zmq.asyncio.Socket:
        key = (target, name)
        sock = self._dealers.get(key)
        if sock is None:
            sock = control_socket(self.zctx, zmq.DEALER)
            sock.connect(self.endpoints[target])
            self._dealers[key] = sock
            self._waiting[key] = {}
            task = asyncio.get_running_loop().create_task(self._replies(target, name, sock))
            self._tasks.add(task)
        return sock

    async def _replies(self, target: str, name: str, sock) -> None:
        waiting = self._waiting[(target, name)]
        while True:
            raw = await sock.recv()
            msg, rid, cmd = _fields(raw)
            inbox = waiting.get(rid, (None,))[0] if isinstance(rid, int) else None
            if inbox is None:
                log.warning("%s answer for %s with no request waiting: %.80r", target, name, raw)
                continue
            if msg.get("type") == "result":
                del waiting[rid]
                if target == "dispatch" and cmd == "register" and msg.get("ok"):
                    self.rings.add(consumer_ring(name))  # before the SDK can ask for anything else
            await self._nc.publish(inbox, raw)
            self.replied += 1

    async def _on_request(self, m) -> None:
        _, target, name = m.subject.rsplit(".", 2)
        msg, rid, cmd = _fields(m.data)
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
        if cmd == "register":
            msg["pid"] = 0  # another host's pid: dispatch keeps the registration by its heartbeats
        sock = self._dealer(target, name)
        self._waiting[(target, name)][rid] = (m.reply, time.monotonic())
        await sock.send(orjson.dumps(msg))
        self.forwarded += 1

    async def _answer(self, m, body: dict) -> None:
        await self._nc.publish(m.reply, orjson.dumps(body))

    def _expire(self, now: float) -> None:
        """Forget requests whose server never answered (it died with them): their requester gave up."""
        for waiting in self._waiting.values():
            for rid in [r for r, (_, t) in waiting.items() if now - t > self.forget_s]:
                del waiting[rid]
                self.unanswered += 1

    async def _forward_rings(self, stop: asyncio.Event) -> None:
        """Remote consumers' rings -> NATS (what `register` added), until stopped."""
        swept = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - swept > 1.0:
                swept = time.monotonic()
                self._expire(swept)
            batches = self.rings.pump(time.monotonic())
            for subj, parts in batches:
                await self._nc.publish(subj, b"".join(parts))
            if not batches:
                await asyncio.sleep(0.0005 if self.rings.rings else 0.05)

    async def run(self, nc, stop: asyncio.Event) -> None:
        self._nc = nc
        subs = [await nc.subscribe(f"{self.prefix}.{t}.*", queue=f"ctl-{t}", cb=self._on_request)
                for t in self.targets]
        if "dispatch" in self.targets:  # what a killed predecessor carried, its receivers must drop
            for ring in self.ctx.namespace.names():
                if ring.startswith("consumer.") and ring.endswith(".md"):
                    self.rings.announce(ring)
        rings = asyncio.get_running_loop().create_task(self._forward_rings(stop))
        log.info("serving %s -> %s", ", ".join(f"{self.prefix}.{t}.*" for t in self.targets),
                 ", ".join(self.endpoints.values()))
        stopped = asyncio.get_running_loop().create_task(stop.wait())
        try:
            await asyncio.wait({stopped, rings}, return_when=asyncio.FIRST_COMPLETED)
            if rings.done():
                rings.result()  # raises what stopped it: this process must not live on half-working
        finally:
            stopped.cancel()
            for s in subs:
                await s.unsubscribe()
            rings.cancel()
            for t in self._tasks:
                t.cancel()
            for s in self._dealers.values():
                s.close(0)
            self.zctx.term()
            self.rings.close()

    def statistics(self) -> dict:
        return {"forwarded": self.forwarded, "refused": self.refused, "replied": self.replied,
                "unanswered": self.unanswered, "rings": self.rings.statistics()}


class _Waiting:
    __slots__ = ("target", "router", "ident", "name", "cmd", "since")

    def __init__(self, target, router, ident, name, cmd, since):
        self.target, self.router, self.ident, self.name, self.cmd, self.since = target, router, ident, name, cmd, since


class CtlExpose:
    """Consumer host: the run's endpoints of `targets`, answered through NATS."""

    def __init__(self, ctx, *, prefix: str = PREFIX, consumer: str | None = None, timeout_s: float = 5.0,
                 targets=("execution",), md_prefix: str = MD_PREFIX, ring_capacity: int = 16384):
        self.ctx, self.prefix, self.consumer, self.timeout_s = ctx, prefix, consumer, timeout_s
        self.targets = _check_targets(targets)
        self.endpoints = {t: TARGETS[t](ctx.run_dir) for t in self.targets}
        self.endpoint = self.endpoints.get("execution")
        self.zctx = zmq.asyncio.Context()
        self.forwarded = 0
        self.refused = 0
        self.unanswered = 0
        self.rings = MdIn(ctx.namespace, prefix=md_prefix, capacity=ring_capacity)
        self._waiting: dict[int, _Waiting] = {}
        self._numbers = itertools.count(1)
        self._inbox = ""
        self._nc = None

    async def _on_answer(self, m) -> None:
        n = m.subject.rsplit(".", 1)[-1]
        w = self._waiting.get(int(n)) if n.isdigit() else None
        if w is None:
            return  # the answer of a request given up on: the SDK gave up on it too
        if not m.data and m.headers and m.headers.get("Status") == "503":  # no ctl-serve subscribed
            del self._waiting[int(n)]
            self.unanswered += 1
            log.warning("%s request %s of %s: no responders on NATS", w.target, w.cmd, w.name)
            return  # as with a local server that is down: the SDK's own timeout applies
        msg, _, _ = _fields(m.data)
        if msg is not None and msg.get("type") == "result":
            del self._waiting[int(n)]
            if w.target == "dispatch" and w.cmd == "register" and msg.get("ok"):
                cap = msg.get("ring_capacity")
                self.rings.ensure(consumer_ring(w.name), cap if isinstance(cap, int) and cap > 0 else None)
        await w.router.send_multipart([w.ident, m.data])

    async def _request(self, target: str, router, ident: bytes, payload: bytes) -> None:
        msg, rid, cmd = _fields(payload)
        name = msg.get("consumer") if msg is not None else None
        if not isinstance(name, str) or not name or "." in name or "*" in name or ">" in name:
            await router.send_multipart([ident, orjson.dumps(reply(
                rid if isinstance(rid, int) else None, None, code="malformed", reason="no consumer name"))])
            return
        if self.consumer is not None and name != self.consumer:
            self.refused += 1
            await router.send_multipart([ident, orjson.dumps(reply(
                rid if isinstance(rid, int) else None, cmd if isinstance(cmd, str) else None,
                code="unauthorized", reason=f"this bridge speaks for consumer {self.consumer!r} only"))])
            return
        if target == "dispatch":
            await self.rings.follow(self._nc, consumer_ring(name))  # subscribed before dispatch can write
        n = next(self._numbers)
        self._waiting[n] = _Waiting(target, router, ident, name, cmd, time.monotonic())
        await self._nc.publish(ctl_subject(name, target, self.prefix), payload, reply=f"{self._inbox}.{n}")
        self.forwarded += 1

    async def _serve(self, target: str, router, stop: asyncio.Event) -> None:
        while not stop.is_set():
            frames = await router.recv_multipart()
            await self._request(target, router, frames[0], frames[-1])

    def _expire(self, now: float) -> None:
        late = [n for n, w in self._waiting.items() if now - w.since > self.timeout_s]
        for n in late:
            w = self._waiting.pop(n)
            self.unanswered += 1
            log.warning("%s request %s of %s unanswered after %ss", w.target, w.cmd, w.name, self.timeout_s)

    async def run(self, nc, stop: asyncio.Event) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        answers = await nc.subscribe(self._inbox + ".*", cb=self._on_answer)
        if self.consumer is not None and "dispatch" in self.targets:
            await self.rings.follow(nc, consumer_ring(self.consumer))
        routers = {}
        for target, endpoint in self.endpoints.items():
            router = control_socket(self.zctx, zmq.ROUTER)
            path = ipc_path(endpoint)
            if path and os.path.exists(path):
                os.unlink(path)  # left by a killed bridge; this process is the run's endpoint
            router.bind(endpoint)
            routers[target] = router
        await nc.flush()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._serve(t, r, stop)) for t, r in routers.items()]
        log.info("exposing %s through %s.<target>.<consumer>", ", ".join(self.endpoints.values()), self.prefix)
        try:
            while not stop.is_set():
                self.rings.heartbeat()
                self._expire(time.monotonic())
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise t.exception()
                try:
                    await asyncio.wait_for(stop.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await answers.unsubscribe()
            except Exception:  # the connection is closed already: nothing to unsubscribe
                pass
            await self.rings.close_all()
            for r in routers.values():
                r.close(0)
            self.zctx.term()

    def statistics(self) -> dict:
        return {"forwarded": self.forwarded, "refused": self.refused, "unanswered": self.unanswered,
                "rings": self.rings.statistics()}
