"""The server end of a control channel: a ROUTER that never drops a reply silently.

Both servers (dispatch, execution) bind one `ControlRouter`. ZeroMQ's ROUTER drops a
message to a peer whose pipe is full (high-water mark) without a word; this one sets
ZMQ_ROUTER_MANDATORY, so a full pipe is EAGAIN, and keeps the reply in the peer's own
outbox, sent in order as the peer reads. A peer with `PEER_BUSY` replies waiting is
not served until it reads: its new requests are answered "busy" (code `busy`, nothing
done; the SDK sends them again, which is safe: orders are idempotent by
client_order_id), and past `PEER_MAX` waiting replies its requests are dropped
unanswered, counted: a peer that reads nothing cannot be told anything. A reply to a
peer that has disconnected (EHOSTUNREACH) is counted as `unroutable`. Every socket
sets ZMQ_MAXMSGSIZE (`messages.MAX_MSG_BYTES`): a larger frame costs its sender the
connection before it is read.

`admit` is what both servers ask of a request before they carry it out: its consumer's
key, and its consumer's request budget.

`Rejects` is what both servers do with input that is not a request: a counter by code
(a bounded set), and a dead-letter record with the first `RAW_KEEP` bytes of the frame,
at most `dlq_per_s` a second (the rest are counted as suppressed).
"""

from __future__ import annotations

import collections
import errno
import os

import zmq

from .messages import MAX_MSG_BYTES, ProtocolError
from .names import ipc_path

RAW_KEEP = 512
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: enum flags cost ~1 us a call
DLQ_CODES = frozenset({"malformed", "unknown_command", "too_large", "unauthorized", "internal"})


def control_socket(ctx: zmq.Context, kind: int) -> zmq.Socket:
    """A control socket of either end: no linger, frames bounded by MAX_MSG_BYTES."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)
    return sock


class ControlRouter:
    """A bound ROUTER with per-peer outboxes. One thread (the server's loop) uses it."""

    PEER_BUSY = 1000
    PEER_MAX = 100_000  # ~15 MB of replies at most per peer

    def __init__(self, endpoint: str, context: zmq.Context | None = None, *, telemetry=None,
                 prefix: str = "control"):
        self.endpoint = endpoint
        self.tel = telemetry
        self.prefix = prefix
        self.sock = control_socket(context or zmq.Context.instance(), zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        path = ipc_path(endpoint)
        if path and os.path.exists(path):
            os.unlink(path)  # a stale socket file of a dead server (we hold the run's lock)
        self.sock.bind(endpoint)
        self.outbox: dict[bytes, collections.deque] = {}
        self.counts = {"queued": 0, "busy": 0, "dropped": 0, "unroutable": 0}

    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n
        if self.tel is not None:
            self.tel.inc(f"{self.prefix}.replies", n, outcome=what)

    def waiting(self) -> bool:
        """True when a request may be waiting (cheaper than a failing receive)."""
        return bool(self.sock.getsockopt(_EVENTS) & _POLLIN)

    def receive(self, max_n: int = 64) -> list[tuple[list[bytes], bytes]]:
        """Send what waits in outboxes, then take up to `max_n` requests as (envelope, frame)."""
        if self.outbox:
            self.flush()
        out = []
        for _ in range(max_n):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            if len(frames) >= 2:
                out.append((frames[:-1], frames[-1]))
        return out

    def admit(self, envelope: list[bytes]) -> str | None:
        """None if the peer's request may be served; "busy" (answer busy) or "drop" (too far behind)."""
        box = self.outbox.get(envelope[0])
        if box is None or len(box) < self.PEER_BUSY:
            return None
        if len(box) >= self.PEER_MAX:
            self._count("dropped")
            return "drop"
        self._count("busy")
        return "busy"

    def send(self, envelope: list[bytes], payload: bytes) -> None:
        """Send now, or after the peer's earlier replies; never dropped silently."""
        peer = envelope[0]
        box = self.outbox.get(peer)
        if box is not None:
            box.append((envelope, payload))
            return
        try:
            self.sock.send_multipart([*envelope, payload], zmq.NOBLOCK)
        except zmq.Again:
            self.outbox[peer] = collections.deque([(envelope, payload)])
            self._count("queued")
        except zmq.ZMQError as e:
            if e.errno != errno.EHOSTUNREACH:
                raise
            self._count("unroutable")

    def flush(self) -> int:
        """Send queued replies as far as peers read; return how many went."""
        sent = 0
        for peer, box in list(self.outbox.items()):
            while box:
                envelope, payload = box[0]
                try:
                    self.sock.send_multipart([*envelope, payload], zmq.NOBLOCK)
                except zmq.Again:
                    break
                except zmq.ZMQError as e:
                    if e.errno != errno.EHOSTUNREACH:
                        raise
                    self._count("unroutable", len(box))
                    box.clear()
                    break
                box.popleft()
                sent += 1
            if not box:
                del self.outbox[peer]
        return sent

    @property
    def backlog(self) -> int:
        """Replies waiting for their peers to read."""
        return sum(len(b) for b in self.outbox.values())

    def close(self) -> None:
        self.sock.close(0)
        path = ipc_path(self.endpoint)
        if path and os.path.exists(path):
            os.unlink(path)


def admit(req, keys, requests, now_ns: int) -> None:
    """The request speaks for its consumer: `keys` (channels.identity.Keys, or None: no
    keys here) prove it, `requests` (channels.limits.RateLimit) allows it; else ProtocolError."""
    if keys is not None:
        why = keys.check(req.consumer, req.key)
        if why is not None:
            raise ProtocolError("unauthorized", why)
    if not requests.allow(req.consumer, now_ns):
        raise ProtocolError("rate_limited", f"consumer {req.consumer!r} is over its budget of "
                                            f"{requests.burst:.0f} requests: retry later")


class Rejects:
    """Count and dead-letter bad control input, the dead letters bounded in rate and size."""

    def __init__(self, telemetry=None, dlq=None, *, prefix: str = "control", dlq_per_s: int = 50):
        self.tel = telemetry
        self.dlq = dlq
        self.prefix = prefix
        self.dlq_per_s = dlq_per_s
        self._second = -1
        self._in_second = 0
        self.suppressed = 0

    def __call__(self, err: ProtocolError, frame: bytes | None, now_ns: int, **fields) -> None:
        if self.tel is not None:
            self.tel.inc(f"{self.prefix}.rejected", code=err.code)
        if self.dlq is None or err.code not in DLQ_CODES:
            return
        second = now_ns // 1_000_000_000
        if second != self._second:
            self._second, self._in_second = second, 0
        if self._in_second >= self.dlq_per_s:
            self.suppressed += 1
            if self.tel is not None:
                self.tel.inc(f"{self.prefix}.dlq_suppressed")
            return
        self._in_second += 1
        raw = None if frame is None else bytes(frame[:RAW_KEEP])
        self.dlq.put("control_rejected", raw=raw, code=err.code, error=str(err)[:RAW_KEEP],
                     frame_bytes=None if frame is None else len(frame), **fields)
