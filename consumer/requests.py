"""The request channel of the order client: one DEALER socket to execution, every request in flight.

`consumer.orders.OrderClient` is the API (see there for what the answers mean); this
module moves the requests: each gets a request id (unique for the client's life), waits
in an outbox until ZeroMQ takes it (only while connected: ZMQ_IMMEDIATE), and is matched
to its answer by that id. A blocking request (`request`) pumps the socket until its own
answer comes, keeping others' answers for `poll`; a non-blocking one (`enqueue`) is
answered by `poll`, by execution or, after `timeout_s`, here ("unknown" if it was sent,
"suppressed" if it never left).
"""

from __future__ import annotations

import collections
import time

import orjson
import zmq

from events import PeerGone


class Pending:
    """One request awaiting its answer."""

    __slots__ = ("cmd", "client_order_id", "deadline", "blocking", "sent")

    def __init__(self, cmd: str, client_order_id: str | None, deadline: float, blocking: bool):
        self.cmd = cmd
        self.client_order_id = client_order_id
        self.deadline = deadline
        self.blocking = blocking
        self.sent = False


class Requests:
    """The DEALER socket to execution and every request in flight on it. One thread uses it.

    Requests queue in `_outbox` (in order) until ZeroMQ takes them, which it does only
    while connected (ZMQ_IMMEDIATE); answers are matched to `_pending` by request id.
    """

    LATE_MEMORY = 1024  # requests reported "unknown" whose late answer is still recognised

    def __init__(self, ctx: zmq.Context, endpoint: str, name: str, timeout_s: float):
        self.endpoint = endpoint
        self.name = name
        self.timeout_s = timeout_s
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(endpoint)
        self._rid = 0
        self._outbox: collections.deque[tuple[int, bytes]] = collections.deque()
        self._pending: dict[int, Pending] = {}
        self._blocking_replies: dict[int, dict] = {}
        self._answers: list[dict] = []
        self._expired: collections.OrderedDict[int, Pending] = collections.OrderedDict()
        self.counts = {"sent": 0, "answered": 0, "unknown": 0, "unsent": 0, "late": 0, "stray": 0}

    # -- both paths ---------------------------------------------------------------------

    def enqueue(self, cmd: str, client_order_id: str | None, fields: dict, *, blocking: bool) -> int:
        """Queue one request, hand what ZeroMQ takes to it, and return its request id."""
        self._rid += 1
        rid = self._rid
        payload = orjson.dumps({"cmd": cmd, "request_id": rid, "consumer": self.name, **fields})
        self._pending[rid] = Pending(cmd, client_order_id, time.monotonic() + self.timeout_s, blocking)
        self._outbox.append((rid, payload))
        self._flush()
        return rid

    def _flush(self) -> None:
        outbox = self._outbox
        while outbox:
            rid, payload = outbox[0]
            p = self._pending.get(rid)
            if p is not None:
                try:
                    self.sock.send(payload, zmq.NOBLOCK)
                except zmq.Again:  # no connection to execution (or its queue is full): keep it here
                    return
                p.sent = True
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
            p = self._pending.pop(rid, None) if isinstance(rid, int) else None
            if p is not None:
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

    def _wait(self, seconds: float) -> None:
        """Sleep in the socket until an answer may be read, or a queued request sent."""
        events = zmq.POLLIN | (zmq.POLLOUT if self._outbox else 0)
        self.sock.poll(max(1, int(seconds * 1000)), events)

    def answer_locally(self, cmd: str, client_order_id: str | None, reply: dict) -> int:
        """Give a request that is not sent a request id, and its answer to the next `poll`."""
        self._rid += 1
        self._answers.append(_answer(self._rid, Pending(cmd, client_order_id, 0.0, False), reply, late=False))
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
            left = p.deadline - time.monotonic()
            if left <= 0:
                del self._pending[rid]  # an answer after this is stray; unsent, it is never sent
                how = "" if p.sent else " (not sent: no connection)"
                raise PeerGone(f"execution did not answer {cmd} (request_id {rid}) within {self.timeout_s}s "
                               f"at {self.endpoint}{how}")
            self._wait(left)

    # -- the non-blocking path ----------------------------------------------------------

    def pending_ids(self) -> frozenset:
        return frozenset(p.client_order_id for p in self._pending.values()
                         if not p.blocking and p.client_order_id is not None)

    def unsent(self) -> int:
        return sum(rid in self._pending for rid, _ in self._outbox)

    def flush(self, timeout_s: float) -> int:
        """Hand queued requests to ZeroMQ, waiting up to `timeout_s` for a connection; return how many are left."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._flush()
            left = deadline - time.monotonic()
            if not self.unsent() or left <= 0:
                return self.unsent()
            self.sock.poll(max(1, int(left * 1000)), zmq.POLLOUT)

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
            first = min((p.deadline for p in self._pending.values()), default=deadline)
            self._wait(min(deadline, first) - now)
        out, self._answers = self._answers, []
        return out

    def _expire(self, now: float) -> None:
        expired = [rid for rid, p in self._pending.items() if p.deadline <= now and not p.blocking]
        for rid in expired:
            p = self._pending.pop(rid)
            if p.sent:
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
                    "reason": f"no connection to execution at {self.endpoint} (or its queue full) within "
                              f"{self.timeout_s}s: {p.cmd} not sent, and will not be"}, late=False))
        if expired and self._outbox:
            self._outbox = collections.deque(e for e in self._outbox if e[0] in self._pending)

    def close(self) -> None:
        self.sock.close(0)


def _answer(rid: int, p: Pending, reply: dict, *, late: bool) -> dict:
    """What `poll_replies` hands out: the reply, always with a `status` (hello has none of its own)."""
    return {"type": "result", "status": "ok" if reply.get("ok") else "rejected", **reply, "request_id": rid,
            "cmd": p.cmd, "client_order_id": p.client_order_id, "late": late}
