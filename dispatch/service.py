"""Control commands applied to the core: consumers, their rings, subscriptions, liveness.

`ControlService.handle(envelope, frame, now)` answers every request with an ack at once
and a result when the outcome is known (set-trading-mode waits for the execution
forward, bounded by its timeout); both also go on the consumer's ring as critical
records. Commands are idempotent: repeating one changes nothing and returns the same
outcome. A consumer whose process died (pid given at register) or that stayed silent
for `silence_ns` (no pid) is released: its subscriptions, its ring (unlinked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from events import EVENT
from events.records import MAX_MERGE_LEGS
from events.ids import IdSource
from shm import Namespace, RingError, RingReader, RingWriter, SegmentExists, procs

from .control import ControlServer, ExecutionLink
from .core import DispatchCore
from .protocol import (ControlError, ack, ack_record, kinds_of, parse, providers_of,
                       request_id_of, result, result_record, symbol_of)
from .routing import Subscriber


def ring_name(consumer: str) -> str:
    return f"consumer.{consumer}.md"


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

    def __init__(self, core: DispatchCore, ns: Namespace, server: ControlServer | None,
                 execution: ExecutionLink | None = None, *, trading_default: bool = False,
                 silence_ns: int = 30_000_000_000, ids: IdSource | None = None):
        self.core = core
        self.ns = ns
        self.server = server
        self.execution = execution
        self.trading_default = trading_default
        self.silence_ns = silence_ns
        self.ids = ids or core.ids
        self.consumers: dict[str, Registration] = {}
        self.tel = core.tel

    # -- requests --------------------------------------------------------------------

    def handle(self, envelope, frame: bytes, now_ns: int) -> None:
        try:
            msg = parse(frame)
        except ControlError as e:
            rid = request_id_of(frame)
            self._reply(envelope, None, ack(rid, None), result(rid, None, self.core.version, e))
            self.tel.inc("control.rejected", code=e.code)
            return
        cmd, rid, name = msg["cmd"], msg["request_id"], msg.get("consumer")
        reg = self.consumers.get(name)
        if reg is not None:
            reg.last_seen_ns = now_ns
        self._send(envelope, reg, ack(rid, cmd))
        self.tel.inc("control.requests", cmd=cmd)
        try:
            if cmd == "set_trading_mode":
                self._set_trading_mode(envelope, msg, now_ns)
                return
            fields = getattr(self, "_" + cmd)(msg, now_ns)
            if reg is None and cmd == "register":  # its ring exists only now
                reg = self.consumers[name]
                self.core.deliver_critical(reg.sub, ack_record(rid, cmd))
            reg = self.consumers.get(name)
            self._send(envelope, reg, result(rid, cmd, self.core.version, **fields))
        except ControlError as e:
            self._send(envelope, self.consumers.get(name), result(rid, cmd, self.core.version, e))
            self.tel.inc("control.rejected", code=e.code)
        except Exception as e:  # a bug or a broken segment must not stop dispatch
            err = ControlError("internal", f"{cmd} failed: {type(e).__name__}: {e}")
            self._send(envelope, self.consumers.get(name), result(rid, cmd, self.core.version, err))
            self.tel.event("control.failed", cmd=cmd, consumer=name, error=str(err), trace_id=0,
                           decision_id=self.ids.next())

    def _reply(self, envelope, reg, *replies) -> None:
        for r in replies:
            self._send(envelope, reg, r)

    def _send(self, envelope, reg: Registration | None, reply: dict, message: str = "") -> None:
        if self.server is not None and envelope is not None:
            self.server.send(envelope, reply)
        if reg is not None:
            if reply["type"] == "ack":
                rec = ack_record(reply["request_id"], reply["cmd"])
            else:
                rec = result_record(reply, message or reply.get("message", ""))
            rec["trace_id"] = self.ids.next()
            self.core.deliver_critical(reg.sub, rec)

    def _registered(self, msg: dict) -> Registration:
        reg = self.consumers.get(msg["consumer"])
        if reg is None:
            raise ControlError("unknown_consumer", f"consumer {msg['consumer']!r} is not registered")
        return reg

    # -- commands --------------------------------------------------------------------

    def _register(self, msg: dict, now_ns: int) -> dict:
        name = msg["consumer"]
        pid = msg.get("pid", 0)
        if not isinstance(pid, int) or pid < 0:
            raise ControlError("malformed", f"pid must be a non-negative integer: pid={pid!r}")
        reg = self.consumers.get(name)
        if reg is not None:
            if reg.pid == pid or not self._alive(reg):
                if reg.pid != pid:  # the old process died: start afresh
                    self.release(name, "replaced")
                    reg = None
            else:
                raise ControlError("name_in_use",
                                   f"consumer {name!r} is registered by live pid {reg.pid}")
        if reg is None:
            reg = self._create(name, pid, now_ns)
        return {"consumer": name, "consumer_id": reg.sub.consumer_id,
                "rings": {"md": ring_name(name)}, "namespace": self.ns.run,
                "ring_capacity": reg.writer.capacity, "trading_enabled": reg.trading_enabled,
                "message": ring_name(name)}

    def _create(self, name: str, pid: int, now_ns: int) -> Registration:
        cap = self.core.config.consumer_ring_capacity
        try:
            writer = RingWriter.create(self.ns, ring_name(name), EVENT, cap, policy="lossless",
                                       reader_timeout_ns=None)
        except SegmentExists:
            self._remove_stale(ring_name(name))
            writer = RingWriter.create(self.ns, ring_name(name), EVENT, cap, policy="lossless",
                                       reader_timeout_ns=None)
        try:
            sub = self.core.add_consumer(name, writer)
        except OverflowError as e:
            writer.close()
            raise ControlError("capacity", str(e)) from None
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
            raise ControlError("name_in_use", f"ring {name} has a live writer")
        try:
            os.unlink(self.ns.path(name))
        except FileNotFoundError:
            pass

    def _subscribe(self, msg: dict, now_ns: int) -> dict:
        reg = self._registered(msg)
        sym, iid = self._instrument(msg)
        providers, kinds = providers_of(msg), kinds_of(msg)
        reg.sub.symbols[iid] = sym
        changed = self.core.subscribe(reg.sub, iid, providers, kinds)
        return {"changed": changed}

    def _unsubscribe(self, msg: dict, now_ns: int) -> dict:
        reg = self._registered(msg)
        sym, iid = symbol_of(msg)  # a symbol nobody knows is simply not subscribed
        if msg.get("merged"):
            providers = self._merge_providers(msg)
            changed = self.core.merged_unsubscribe(reg.sub, iid, providers)
        else:
            changed = self.core.unsubscribe(reg.sub, iid, providers_of(msg), kinds_of(msg))
        return {"changed": changed}

    def _merged_subscribe(self, msg: dict, now_ns: int) -> dict:
        reg = self._registered(msg)
        sym, iid = self._instrument(msg)
        providers = self._merge_providers(msg)
        reg.sub.symbols[iid] = sym
        try:
            changed = self.core.merged_subscribe(reg.sub, iid, providers)
        except OverflowError as e:
            raise ControlError("capacity", str(e)) from None
        return {"changed": changed}

    def _merge_providers(self, msg: dict) -> tuple[int, ...]:
        providers = providers_of(msg, required=True) or ()
        if len(providers) < 2:
            raise ControlError("bad_merge", f"a merged subscription needs at least two distinct "
                                            f"providers: providers={msg.get('providers')!r}")
        if len(providers) > MAX_MERGE_LEGS:
            raise ControlError("bad_merge", f"at most {MAX_MERGE_LEGS} providers per merged "
                                            f"subscription: providers={msg.get('providers')!r}")
        return providers

    def _instrument(self, msg: dict) -> tuple[str, int]:
        sym, iid = symbol_of(msg)
        if not self.core.knows(iid):
            raise ControlError("unknown_instrument",
                               f"unknown instrument {sym!r}: not configured and no provider "
                               f"has published it")
        return sym, iid

    def _list_subscriptions(self, msg: dict, now_ns: int) -> dict:
        if msg.get("consumer") is None:
            return {"consumers": {n: self.core.routing.listing(r.sub)
                                  for n, r in self.consumers.items()}}
        reg = self._registered(msg)
        return {**self.core.routing.listing(reg.sub), "trading_enabled": reg.trading_enabled}

    def _unregister(self, msg: dict, now_ns: int) -> dict:
        existed = msg["consumer"] in self.consumers
        if existed:
            self.release(msg["consumer"], "unregistered")
        return {"changed": existed}

    def _heartbeat(self, msg: dict, now_ns: int) -> dict:
        self._registered(msg)
        return {}

    def _set_trading_mode(self, envelope, msg: dict, now_ns: int) -> None:
        reg = self._registered(msg)
        enabled = msg.get("enabled")
        if not isinstance(enabled, bool):
            raise ControlError("malformed", f"enabled must be true or false: enabled={enabled!r}")
        reg.trading_enabled = enabled
        rid, name = msg["request_id"], reg.name
        self.tel.event("consumer.trading_mode", consumer=name, enabled=enabled, trace_id=0,
                       decision_id=self.ids.next())

        def done(outcome: dict) -> None:
            current = self.consumers.get(name)
            reply = result(rid, "set_trading_mode", self.core.version, trading_enabled=enabled,
                           forward=outcome)
            self._send(envelope, current, reply,
                       message=f"trading_enabled={'true' if enabled else 'false'}")

        if self.execution is None:
            done({"status": "absent"})
        else:
            self.execution.forward(name, enabled, now_ns, done)

    # -- liveness --------------------------------------------------------------------

    def _alive(self, reg: Registration) -> bool:
        if reg.pid:
            return procs.is_alive(reg.pid, reg.ticks)
        return True

    def reap(self, now_ns: int) -> list[str]:
        """Release consumers whose process died or that stayed silent too long."""
        gone = []
        for name, reg in list(self.consumers.items()):
            if reg.pid:
                dead = not procs.is_alive(reg.pid, reg.ticks)
            else:
                dead = now_ns - reg.last_seen_ns > self.silence_ns
            if dead:
                self.release(name, "dead" if reg.pid else "silent")
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
