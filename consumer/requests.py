"""The request channel of the order client: one DEALER socket to execution, every request in flight.

`consumer.orders.OrderClient` is the API (see there for what the answers mean); this
module moves the requests: each gets a request id (unique for the client's life) and
waits in an outbox until it may leave: while fewer than `WINDOW` requests are in flight
(sent, unanswered) and ZeroMQ takes it, which it does only while connected
(ZMQ_IMMEDIATE). Answers are matched by request id. An answer "busy" (execution did
not do it: this peer's earlier answers were not read yet) puts the request back at
the head of the outbox; it leaves again as answers are read (safe: execution did
nothing with it, and orders are idempotent by client_order_id anyway).

A blocking request (`request`) pumps the socket until its own answer comes, keeping
others' answers for `poll`; a non-blocking one (`enqueue`) is answered by `poll`, by
execution or here: "unknown" if it was sent and `timeout_s` passed since without its
answer, "suppressed" if it waited `timeout_s` unsent while execution answered nothing
(no connection, or execution stalled): it never left, and never will. The window
keeps every sent request close to its answer, so a burst of 10,000 ends in 10,000
answers given by execution, none of them "unknown" while execution keeps up.
"""

from __future__ import annotations

import collections
import time

import orjson
import zmq

from channels.server import control_socket
from events import PeerGone


class Pending:
    """One request awaiting its answer."""

    __slots__ = ("cmd", "client_order_id", "queued_at", "sent_at", "blocking", "payload")

    def __init__(self, cmd: str, client_order_id: str | None, queued_at: float, blocking: bool, payload: bytes):
        self.cmd = cmd
        self.client_order_id = client_order_id
        self.queued_at = queued_at
        self.sent_at = 0.0  # 0: not (or no longer) sent
        self.blocking = blocking
        self.payload = payload

    @property
    def sent(self) -> bool:
        return self.sent_at > 0.0


class Requests:
    """The DEALER socket to execution and every request in flight on it. One thread uses it."""

    LATE_MEMORY = 1024  # requests reported "unknown" whose late answer is still recognised
    WINDOW = 64         # requests in flight at most (sent, not answered): ~0.3 s of execution's work

    def __init__(self, ctx: zmq.Context, endpoint: str, name: str, key: str, timeout_s: float):
        self.endpoint = endpoint
        self.name = name
        self.key = key
        self.timeout_s = timeout_s
        self.sock = control_socket(ctx, zmq.DEALER)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(endpoint)
        self._rid = 0
        self._outbox: collections.deque[int] = collections.deque()
        self._pending: dict[int, Pending] = {}
        self._in_flight = 0
        self._progress = time.monotonic()  # the last time execution took or answered a request
        self._blocking_replies: dict[int, dict] = {}
        self._answers: list[dict] = []
        self._expired: collections.OrderedDict[int, Pending] = collections.OrderedDict()
        self.counts = {"sent": 0, "answered": 0, "unknown": 0, "unsent": 0, "late": 0, "stray": 0, "busy": 0}

    # -- both paths ---------------------------------------------------------------------

    def enqueue(self, cmd: str, client_order_id: str | None, fields: dict, *, blocking: bool) -> int:
        """Queue one request, hand what may leave to ZeroMQ, and return its request id."""
        self._rid += 1
        rid = self._rid
        payload = orjson.dumps({"cmd": cmd, "request_id": rid, "consumer": self.name, "key": self.key, **fields})
        self._pending[rid] = Pending(cmd, client_order_id, time.monotonic(), blocking, payload)
        self._outbox.append(rid)
        self._flush()
        return rid

    def _flush(self) -> None:
        outbox, pending = self._outbox, self._pending
        while outbox and self._in_flight < self.WINDOW:
            p = pending.get(outbox[0])
            if p is not None:
                try:
                    self.sock.send(p.payload, zmq.NOBLOCK)
                except zmq.Again:  # no connection to execution: keep it here
                    return
                p.sent_at = self._progress = time.monotonic()
                self._in_flight += 1
                self.counts["sent"] += 1
            outbox.popleft()

    def _receive(self) -> None:
        while True:
            try:
                raw = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = orjson.loads(raw)
            except orjson.JSONDecodeError:
                reply = None
            rid = reply.get("request_id") if isinstance(reply, dict) else None
            p = self._pending.get(rid) if isinstance(rid, int) else None
            if p is not None and p.sent:
                self._progress = time.monotonic()
                self._in_flight -= 1
                if reply.get("code") == "busy":  # not done: send it again, first
                    self.counts["busy"] += 1
                    p.sent_at = 0.0
                    self._outbox.appendleft(rid)
                    continue
                del self._pending[rid]
                self.counts["answered"] += 1
                if p.blocking:
                    self._blocking_replies[rid] = reply
                else:
                    self._answers.append(_answer(rid, p, reply, late=False))
            elif isinstance(rid, int) and rid in self._expired:
                self.counts["late"] += 1
                self._answers.append(_answer(rid, self._expired.pop(rid), reply, late=True))
            else:  # the late answer of a blocking request that raised PeerGone, or garbage
                self.counts["stray"] += 1

    def _pump(self) -> None:
        self._flush()
        self._receive()
        self._flush()

    def _wait(self, seconds: float) -> None:
        """Sleep in the socket until an answer may be read, or a queued request sent."""
        may_send = self._outbox and self._in_flight < self.WINDOW
        self.sock.poll(max(1, int(seconds * 1000)), zmq.POLLIN | (zmq.POLLOUT if may_send else 0))

    def _due(self, p: Pending) -> float:
        """When `p` expires unanswered (for an unsent one, if execution stays silent till then)."""
        if p.sent:
            return p.sent_at + self.timeout_s
        return max(p.queued_at, self._progress) + self.timeout_s

    def answer_locally(self, cmd: str, client_order_id: str | None, reply: dict) -> int:
        """Give a request that is not sent a request id, and its answer to the next `poll`."""
        self._rid += 1
        self._answers.append(_answer(self._rid, Pending(cmd, client_order_id, 0.0, False, b""), reply, late=False))
        return self._rid

    # -- the blocking path --------------------------------------------------------------

    def request(self, cmd: str, client_order_id: str | None, fields: dict) -> dict:
        """Send one request after those queued before it; return its reply, or PeerGone after timeout_s."""
        rid = self.enqueue(cmd, client_order_id, fields, blocking=True)
        p = self._pending[rid]
        while True:
            self._pump()
            reply = self._blocking_replies.pop(rid, None)
            if reply is not None:
                return reply
            left = self._due(p) - time.monotonic()
            if left <= 0:
                del self._pending[rid]  # an answer after this is stray; unsent, it is never sent
                if p.sent:
                    self._in_flight -= 1
                how = "" if p.sent else " (not sent: no connection)"
                raise PeerGone(f"execution did not answer {cmd} (request_id {rid}) within {self.timeout_s}s "
                               f"at {self.endpoint}{how}")
            self._wait(left)

    # -- the non-blocking path ----------------------------------------------------------

    def pending_ids(self) -> frozenset:
        return frozenset(p.client_order_id for p in self._pending.values()
                         if not p.blocking and p.client_order_id is not None)

    def unsent(self) -> int:
        return sum(1 for p in self._pending.values() if not p.sent)

    def flush(self, timeout_s: float) -> int:
        """Hand queued requests to ZeroMQ, waiting up to `timeout_s`; return how many are left."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._pump()
            left = deadline - time.monotonic()
            if not self.unsent() or left <= 0:
                return self.unsent()
            self._wait(left)

    def pending_count(self) -> int:
        return sum(not p.blocking for p in self._pending.values())

    def poll(self, timeout_s: float) -> list[dict]:
        """Answers received so far (and those of requests that timed out); wait up to `timeout_s` for one."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._pump()
            now = time.monotonic()
            self._expire(now)
            if self._answers or now >= deadline:
                break
            first = min((self._due(p) for p in self._pending.values() if not p.blocking), default=deadline)
            self._wait(max(0.0, min(deadline, first) - now))
        out, self._answers = self._answers, []
        return out

    def _expire(self, now: float) -> None:
        expired = [rid for rid, p in self._pending.items() if not p.blocking and self._due(p) <= now]
        for rid in expired:
            p = self._pending.pop(rid)
            if p.sent:
                self._in_flight -= 1
                self.counts["unknown"] += 1
                self._expired[rid] = p
                if len(self._expired) > self.LATE_MEMORY:
                    self._expired.popitem(last=False)
                self._answers.append(_answer(rid, p, {
                    "ok": False, "status": "unknown", "code": "no_answer",
                    "reason": f"execution did not answer {p.cmd} (request_id {rid}) within {self.timeout_s}s "
                              f"at {self.endpoint}: it may have acted on it; query it, or send it again"},
                    late=False))
            else:
                self.counts["unsent"] += 1
                self._answers.append(_answer(rid, p, {
                    "ok": False, "status": "suppressed", "code": "execution_unreachable",
                    "reason": f"no connection to execution at {self.endpoint} (or no answer from it) within "
                              f"{self.timeout_s}s: {p.cmd} not sent, and will not be"}, late=False))
        if expired and self._outbox:
            self._outbox = collections.deque(r for r in self._outbox if r in self._pending)

    def close(self) -> None:
        self.sock.close(0)


def _answer(rid: int, p: Pending, reply: dict, *, late: bool) -> dict:
    """What `poll_replies` hands out: the reply, always with a `status` (hello has none of its own)."""
    return {"type": "result", "status": "ok" if reply.get("ok") else "rejected", **reply, "request_id": rid,
            "cmd": p.cmd, "client_order_id": p.client_order_id, "late": late}
