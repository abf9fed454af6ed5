"""Control commands applied to the core: consumers, their rings, subscriptions, liveness.

`ControlService.handle(envelope, frame, now)` parses a frame into a typed request
(`channels.messages`), answers it with an ack at once and a result when the outcome is
known (set-trading-mode waits for the execution forward, bounded by its timeout); both
also go on the consumer's ring as critical records (a heartbeat's only on the socket:
it changes nothing the strategy reads). Commands are idempotent: repeating one changes
nothing and returns the same outcome. Bad input is answered with its code, counted and
dead-lettered (`channels.server.Rejects`); nothing a peer sends raises out of `handle`.

Who may speak for a consumer: the holder of its key (`channels.identity`), within a
budget of requests and registrations per consumer (`channels.limits`). A registration
is live while it talks (any request; the SDK heartbeats every few seconds) and its pid,
if it gave one, lives: a dead pid releases it at once, `silence_ns` without a request
releases it too, pid or not, so a slot cannot be held by a registration that never
talks again. Released: its subscriptions, its ring (unlinked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from channels import messages as M
from channels.identity import Keys
from channels.limits import RateLimit
from channels.names import consumer_ring
from channels.server import ControlRouter, Rejects, admit
from events import EVENT
from events.ids import IdSource
from events.records import MAX_MERGE_LEGS
from shm import Namespace, RingError, RingReader, RingWriter, SegmentExists, procs

from .control import ExecutionLink
from .core import DispatchCore
from .protocol import ack_record, kinds_of, providers_of, result_record, symbol_of
from .routing import Subscriber


@dataclass
class Registration:
    name: str
    sub: Subscriber
    writer: RingWriter
    pid: int
    ticks: int
    last_seen_ns: int
    trading_enabled: bool


class ControlService:
    """Carries out control commands. Dispatch thread only."""

    def __init__(self, core: DispatchCore, ns: Namespace, server: ControlRouter | None,
                 execution: ExecutionLink | None = None, *, keys: Keys | None = None, dlq=None,
                 trading_default: bool = False, silence_ns: int = 30_000_000_000,
                 ids: IdSource | None = None, requests: RateLimit | None = None,
                 registrations: RateLimit | None = None):
        self.core = core
        self.ns = ns
        self.server = server
        self.execution = execution
        self.keys = keys
        self.trading_default = trading_default
        self.silence_ns = silence_ns
        self.ids = ids or core.ids
        self.consumers: dict[str, Registration] = {}
        self.tel = core.tel
        self.rejects = Rejects(self.tel, dlq, prefix="control")
        self.requests = requests or RateLimit(rate_per_s=500, burst=2000)
        self.registrations = registrations or RateLimit(rate_per_s=1, burst=20)

    # -- requests --------------------------------------------------------------------

    def handle(self, envelope, frame: bytes, now_ns: int) -> None:
        """Answer one request frame; never raises for anything a peer can send."""
        if self.server is not None and envelope is not None:
            verdict = self.server.admit(envelope)
            if verdict == "drop":
                return
            if verdict == "busy":
                rid = M.request_id_of(frame)
                self._reply(envelope, None, M.ack(rid, None), M.reply(
                    rid, None, code="busy", reason="answers to earlier requests are not read yet: read, then retry"))
                return
        try:
            req = M.parse(frame, M.DISPATCH_COMMANDS)
        except M.ProtocolError as e:
            self._refuse(envelope, frame, None, e, now_ns)
            return
        self.tel.inc("control.requests", cmd=req.CMD)
        if req.consumer is not None:
            try:
                self._admit(req, now_ns)
            except M.ProtocolError as e:
                self._refuse(envelope, frame, req, e, now_ns)
                return
        cmd, rid, name = req.CMD, req.request_id, req.consumer
        reg = self.consumers.get(name)
        if reg is not None:
            reg.last_seen_ns = now_ns
        ring = cmd != "heartbeat"
        self._send(envelope, reg if ring else None, M.ack(rid, cmd))
        try:
            if cmd == "set_trading_mode":
                self._set_trading_mode(envelope, req, now_ns)
                return
            fields = getattr(self, "_" + cmd)(req, now_ns)
            if reg is None and cmd == "register":  # its ring exists only now
                reg = self.consumers[name]
                self.core.deliver_critical(reg.sub, ack_record(rid, cmd))
            reg = self.consumers.get(name)
            self._send(envelope, reg if ring else None, M.reply(rid, cmd, routing_version=self.core.version, **fields))
        except M.ProtocolError as e:
            self._send(envelope, self.consumers.get(name),
                       M.error_reply(rid, cmd, e, routing_version=self.core.version))
            self.rejects(e, None, now_ns)
        except Exception as e:  # a bug or a broken segment must not stop dispatch
            err = M.ProtocolError("internal", f"{cmd} failed: {type(e).__name__}: {e}")
            self._send(envelope, self.consumers.get(name),
                       M.error_reply(rid, cmd, err, routing_version=self.core.version))
            self.rejects(err, frame, now_ns)
            self.tel.event("control.failed", cmd=cmd, consumer=name, error=str(err), trace_id=0,
                           decision_id=self.ids.next())

    def _admit(self, req: M.Request, now_ns: int) -> None:
        """The request speaks for its consumer (channels.server.admit); registrations have a budget too."""
        admit(req, self.keys, self.requests, now_ns)
        if req.CMD == "register" and not self.registrations.allow(req.consumer, now_ns):
            raise M.ProtocolError("rate_limited", f"consumer {req.consumer!r} registers too often: retry later")

    def _refuse(self, envelope, frame: bytes, req: M.Request | None, err: M.ProtocolError, now_ns: int) -> None:
        """Answer a request that is not carried out (ack and result), count it, dead-letter it."""
        rid = req.request_id if req is not None else M.request_id_of(frame)
        cmd = req.CMD if req is not None else None
        self._reply(envelope, None, M.ack(rid, cmd), M.error_reply(rid, cmd, err, routing_version=self.core.version))
        self.rejects(err, frame, now_ns)

    def _reply(self, envelope, reg, *replies) -> None:
        for r in replies:
            self._send(envelope, reg, r)

    def _send(self, envelope, reg: Registration | None, reply: dict) -> None:
        if self.server is not None and envelope is not None:
            self.server.send(envelope, M.encode(reply))
        if reg is not None:
            if reply["type"] == "ack":
                rec = ack_record(reply["request_id"], reply["cmd"])
            else:
                rec = result_record(reply)
            rec["trace_id"] = self.ids.next()
            self.core.deliver_critical(reg.sub, rec)

    def _registered(self, req: M.Request) -> Registration:
        reg = self.consumers.get(req.consumer)
        if reg is None:
            raise M.ProtocolError("unknown_consumer", f"consumer {req.consumer!r} is not registered")
        return reg

    # -- commands --------------------------------------------------------------------

    def _register(self, req: M.Register, now_ns: int) -> dict:
        name, pid = req.consumer, req.pid
        reg = self.consumers.get(name)
        if reg is not None and reg.pid != pid:
            if self._live(reg, now_ns):
                raise M.ProtocolError("name_in_use", f"consumer {name!r} is registered by live pid {reg.pid}")
            self.release(name, "replaced")  # the old process died or fell silent: start afresh
            reg = None
        if reg is None:
            if len(self.consumers) >= self.core.config.max_consumers:
                self.reap(now_ns)  # a slot held by the dead or the silent is free now
            reg = self._create(name, pid, now_ns)
        reg.last_seen_ns = now_ns
        return {"consumer": name, "consumer_id": reg.sub.consumer_id,
                "rings": {"md": consumer_ring(name)}, "namespace": self.ns.run,
                "ring_capacity": reg.writer.capacity, "trading_enabled": reg.trading_enabled}

    def _create(self, name: str, pid: int, now_ns: int) -> Registration:
        cap = self.core.config.consumer_ring_capacity
        ring = consumer_ring(name)
        try:
            writer = RingWriter.create(self.ns, ring, EVENT, cap, policy="lossless", reader_timeout_ns=None)
        except SegmentExists:
            self._remove_stale(ring)
            writer = RingWriter.create(self.ns, ring, EVENT, cap, policy="lossless", reader_timeout_ns=None)
        try:
            sub = self.core.add_consumer(name, writer)
        except OverflowError as e:
            writer.close()
            raise M.ProtocolError("capacity", str(e)) from None
        ticks = procs.start_ticks(pid) if pid else 0
        reg = Registration(name, sub, writer, pid, ticks, now_ns, self.trading_default)
        self.consumers[name] = reg
        self.tel.event("consumer.registered", consumer=name, consumer_id=sub.consumer_id, pid=pid,
                       trace_id=0, decision_id=self.ids.next())
        return reg

    def _remove_stale(self, name: str) -> None:
        """A ring of this name is left from a dead dispatch: remove it, or refuse."""
        try:
            r = RingReader.attach(self.ns, name, EVENT)
        except RingError:  # another layout (an older schema): nobody can use it
            state = "unusable"
        else:
            try:
                state = r.writer_state()
            finally:
                r.close()
        if state == "alive":
            raise M.ProtocolError("name_in_use", f"ring {name} has a live writer")
        try:
            os.unlink(self.ns.path(name))
        except FileNotFoundError:
            pass

    def _subscribe(self, req: M.Subscribe, now_ns: int) -> dict:
        reg = self._registered(req)
        sym, iid = self._instrument(req.symbol)
        providers, kinds = providers_of(req.providers), kinds_of(req.kinds)
        reg.sub.symbols[iid] = sym
        return {"changed": self.core.subscribe(reg.sub, iid, providers, kinds)}

    def _unsubscribe(self, req: M.Unsubscribe, now_ns: int) -> dict:
        reg = self._registered(req)
        sym, iid = symbol_of(req.symbol)  # a symbol nobody knows is simply not subscribed
        if req.merged:
            changed = self.core.merged_unsubscribe(reg.sub, iid, self._merge_providers(req.providers))
        else:
            changed = self.core.unsubscribe(reg.sub, iid, providers_of(req.providers), kinds_of(req.kinds))
        return {"changed": changed}

    def _merged_subscribe(self, req: M.MergedSubscribe, now_ns: int) -> dict:
        reg = self._registered(req)
        sym, iid = self._instrument(req.symbol)
        providers = self._merge_providers(req.providers)
        reg.sub.symbols[iid] = sym
        try:
            changed = self.core.merged_subscribe(reg.sub, iid, providers)
        except OverflowError as e:
            raise M.ProtocolError("capacity", str(e)) from None
        return {"changed": changed}

    @staticmethod
    def _merge_providers(slugs) -> tuple[int, ...]:
        providers = providers_of(slugs) or ()
        if len(providers) < 2:
            raise M.ProtocolError("bad_merge", f"a merged subscription needs at least two distinct "
                                               f"providers: providers={list(slugs or ())!r}")
        if len(providers) > MAX_MERGE_LEGS:
            raise M.ProtocolError("bad_merge", f"at most {MAX_MERGE_LEGS} providers per merged "
                                               f"subscription: providers={list(slugs)!r}")
        return providers

    def _instrument(self, symbol: str) -> tuple[str, int]:
        sym, iid = symbol_of(symbol)
        if not self.core.knows(iid):
            raise M.ProtocolError("unknown_instrument", f"unknown instrument {sym!r}: not configured and no "
                                                        f"provider has published it")
        return sym, iid

    def _list_subscriptions(self, req: M.ListSubscriptions, now_ns: int) -> dict:
        if req.consumer is None:
            return {"consumers": {n: self.core.routing.listing(r.sub) for n, r in self.consumers.items()}}
        reg = self._registered(req)
        return {**self.core.routing.listing(reg.sub), "trading_enabled": reg.trading_enabled}

    def _unregister(self, req: M.Unregister, now_ns: int) -> dict:
        existed = req.consumer in self.consumers
        if existed:
            self.release(req.consumer, "unregistered")
        return {"changed": existed}

    def _heartbeat(self, req: M.Heartbeat, now_ns: int) -> dict:
        self._registered(req)
        return {}

    def _set_trading_mode(self, envelope, req: M.SetTradingMode, now_ns: int) -> None:
        """Execution owns the switch: forward, then answer with the state it answered."""
        self._registered(req)
        rid, name, wanted = req.request_id, req.consumer, req.enabled

        def done(outcome: dict) -> None:
            current = self.consumers.get(name)
            status = outcome["status"]
            if status == "refused":
                code = outcome.get("code") if outcome.get("code") in M.CODES else "internal"
                reply = M.reply(rid, "set_trading_mode", code=code, reason=f"execution refused: "
                                f"{outcome.get('reason')}", routing_version=self.core.version, forward=outcome)
            else:  # absent or silent execution: the consumer's local switch follows the request
                state = outcome["trading_enabled"] if status == "ok" else wanted
                if current is not None:
                    current.trading_enabled = state
                reply = M.reply(rid, "set_trading_mode", routing_version=self.core.version,
                                trading_enabled=state, forward=outcome)
                self.tel.event("consumer.trading_mode", consumer=name, enabled=state, forward=status,
                               trace_id=0, decision_id=self.ids.next())
            self._send(envelope, current, reply)

        if self.execution is None:
            done({"status": "absent"})
        else:
            self.execution.forward(name, req.key, wanted, now_ns, done)

    # -- liveness --------------------------------------------------------------------

    def _live(self, reg: Registration, now_ns: int) -> bool:
        if reg.pid and not procs.is_alive(reg.pid, reg.ticks):
            return False
        return now_ns - reg.last_seen_ns <= self.silence_ns

    def reap(self, now_ns: int) -> list[str]:
        """Release consumers whose process died or that stayed silent too long."""
        gone = []
        for name, reg in list(self.consumers.items()):
            if not self._live(reg, now_ns):
                dead = reg.pid and not procs.is_alive(reg.pid, reg.ticks)
                self.release(name, "dead" if dead else "silent")
                gone.append(name)
        return gone

    def release(self, name: str, reason: str) -> None:
        reg = self.consumers.pop(name)
        self.core.remove_consumer(reg.sub)
        reg.writer.close()  # unlinks consumer.<name>.md
        self.tel.event("consumer.released", consumer=name, reason=reason, pid=reg.pid,
                       trace_id=0, decision_id=self.ids.next())

    def close(self) -> None:
        for name in list(self.consumers):
            self.release(name, "shutdown")
