"""Control sockets: the ZeroMQ ROUTER consumers talk to, and the link to execution.

Both are polled from the dispatch loop and never block it: the ROUTER is read with
NOBLOCK, and the execution link forwards set-trading-mode with a deadline, reporting
"ok", "refused", "timeout" or "absent" through a callback when the outcome is known.
"""

from __future__ import annotations

import os

import orjson
import zmq


def ipc_path(endpoint: str) -> str | None:
    return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None


def check_local(endpoint: str) -> None:
    """Refuse endpoints that would listen beyond this host (loopback and ipc only)."""
    if endpoint.startswith("ipc://") or endpoint.startswith("inproc://"):
        return
    if endpoint.startswith("tcp://127.0.0.1:") or endpoint.startswith("tcp://[::1]:") \
            or endpoint.startswith("tcp://localhost:"):
        return
    raise ValueError(f"control must bind to loopback or ipc (pass --allow-remote to override): "
                     f"endpoint={endpoint!r}")


_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: enum flags cost ~1 us


class ControlServer:
    """The ROUTER socket. Requests: [identity, (b"",) frame]; replies mirror the envelope."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self._ctx = context or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        path = ipc_path(endpoint)
        if path and os.path.exists(path):
            os.unlink(path)  # a stale socket file of a dead dispatch
        self.sock.bind(endpoint)

    def waiting(self) -> bool:
        """True when a request may be waiting (cheaper than a failing receive)."""
        return bool(self.sock.getsockopt(_EVENTS) & _POLLIN)

    def receive(self, max_n: int = 64) -> list[tuple[list[bytes], bytes]]:
        """Up to `max_n` waiting requests as (envelope, frame); never blocks."""
        out = []
        for _ in range(max_n):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) < 2:
                continue
            envelope, frame = frames[:-1], frames[-1]
            out.append((envelope, frame))
        return out

    def send(self, envelope: list[bytes], reply: dict) -> None:
        try:
            self.sock.send_multipart([*envelope, orjson.dumps(reply)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the peer went away: replies to the gone are dropped (ROUTER semantics)

    def close(self) -> None:
        self.sock.close(0)
        path = ipc_path(self.endpoint)
        if path and os.path.exists(path):
            os.unlink(path)


class ExecutionLink:
    """Forward set-trading-mode to execution's control endpoint without blocking dispatch."""

    def __init__(self, endpoint: str, timeout_ns: int = 500_000_000,
                 context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.timeout_ns = timeout_ns
        self._ctx = context or zmq.Context.instance()
        self.sock = None
        self._next_id = 0
        self._pending: dict[int, tuple] = {}  # id -> (deadline, done, acked, unsent message)

    def _present(self) -> bool:
        path = ipc_path(self.endpoint)
        return os.path.exists(path) if path is not None else True

    @property
    def pending(self) -> bool:
        """A forward waits for its outcome (the loop must keep polling)."""
        return bool(self._pending)

    def forward(self, consumer: str, enabled: bool, now_ns: int, done) -> None:
        """Send; call `done(outcome: dict)` once the outcome is known (maybe at once)."""
        if not self._present():
            done({"status": "absent", "endpoint": self.endpoint})
            return
        if self.sock is None:
            self.sock = self._ctx.socket(zmq.DEALER)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing towards nobody
            self.sock.connect(self.endpoint)
        self._next_id += 1
        rid = self._next_id
        msg = {"cmd": "set_trading_mode", "request_id": rid, "consumer": consumer,
               "enabled": bool(enabled)}
        try:
            self.sock.send(orjson.dumps(msg), zmq.NOBLOCK)
        except zmq.Again:
            # IMMEDIATE: no completed connection yet; one retry happens on the next poll
            self._pending[rid] = (now_ns + self.timeout_ns, done, False, msg)
            return
        self._pending[rid] = (now_ns + self.timeout_ns, done, False, None)

    def poll(self, now_ns: int) -> int:
        """Take replies, resend unsent forwards, expire late ones; return outcomes resolved."""
        if not self._pending:
            return 0
        resolved = 0
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                reply = orjson.loads(frame)
                rid = reply.get("request_id")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            entry = self._pending.get(rid)
            if entry is None:
                continue
            if reply.get("type") == "ack":
                self._pending[rid] = (entry[0], entry[1], True, entry[3])
                continue
            del self._pending[rid]
            ok = bool(reply.get("ok", True))
            entry[1]({"status": "ok" if ok else "refused", "reply": reply})
            resolved += 1
        for rid, (deadline, done, acked, unsent) in list(self._pending.items()):
            if unsent is not None:
                try:
                    self.sock.send(orjson.dumps(unsent), zmq.NOBLOCK)
                    self._pending[rid] = (deadline, done, acked, None)
                except zmq.Again:
                    pass
            if now_ns >= deadline:
                del self._pending[rid]
                done({"status": "timeout", "acked": acked, "endpoint": self.endpoint,
                      "timeout_ms": self.timeout_ns // 1_000_000})
                resolved += 1
        return resolved

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
