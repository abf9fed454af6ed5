"""The link to execution: set-trading-mode forwarded without blocking the dispatch loop.

(The ROUTER consumers talk to is `channels.server.ControlRouter`.) The link forwards
with a deadline and reports "ok" (with execution's `trading_enabled`), "refused" (with
its code and reason), "timeout" or "absent" through a callback when the outcome is known.
"""

from __future__ import annotations

import os

import orjson
import zmq

from channels.names import ipc_path
from channels.server import control_socket


class ExecutionLink:
    """Forward set-trading-mode to execution's control endpoint without blocking dispatch."""

    def __init__(self, endpoint: str, timeout_ns: int = 500_000_000,
                 context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.timeout_ns = timeout_ns
        self._ctx = context or zmq.Context.instance()
        self.sock = None
        self._next_id = 0
        self._pending: dict[int, tuple] = {}  # id -> (deadline, done, unsent message)

    def _present(self) -> bool:
        path = ipc_path(self.endpoint)
        return os.path.exists(path) if path is not None else True

    @property
    def pending(self) -> bool:
        """A forward waits for its outcome (the loop must keep polling)."""
        return bool(self._pending)

    def forward(self, consumer: str, key: str, enabled: bool, now_ns: int, done) -> None:
        """Send; call `done(outcome: dict)` once the outcome is known (maybe at once)."""
        if not self._present():
            done({"status": "absent", "endpoint": self.endpoint})
            return
        if self.sock is None:
            self.sock = control_socket(self._ctx, zmq.DEALER)
            self.sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing towards nobody
            self.sock.connect(self.endpoint)
        self._next_id += 1
        rid = self._next_id
        msg = orjson.dumps({"cmd": "set_trading_mode", "request_id": rid, "consumer": consumer, "key": key,
                            "enabled": bool(enabled)})
        try:
            self.sock.send(msg, zmq.NOBLOCK)
            msg = None
        except zmq.Again:  # IMMEDIATE: no completed connection yet; retried on the next poll
            pass
        self._pending[rid] = (now_ns + self.timeout_ns, done, msg)

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
                entry = self._pending.pop(reply.get("request_id"), None)
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                continue
            if entry is None:
                continue
            if reply.get("ok") is True and isinstance(reply.get("trading_enabled"), bool):
                entry[1]({"status": "ok", "trading_enabled": reply["trading_enabled"]})
            else:
                entry[1]({"status": "refused", "code": reply.get("code"), "reason": reply.get("reason")})
            resolved += 1
        for rid, (deadline, done, unsent) in list(self._pending.items()):
            if unsent is not None:
                try:
                    self.sock.send(unsent, zmq.NOBLOCK)
                    self._pending[rid] = (deadline, done, None)
                except zmq.Again:
                    pass
            if now_ns >= deadline:
                del self._pending[rid]
                done({"status": "timeout", "sent": unsent is None, "endpoint": self.endpoint,
                      "timeout_ms": self.timeout_ns // 1_000_000})
                resolved += 1
        return resolved

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
