"""The control socket: order entry and set_trading_mode on a ZeroMQ ROUTER.

Default endpoint `channels.names.execution_endpoint(run_dir)`.
A client may use DEALER (frames: [payload]) or REQ (frames: ["", payload]); the reply
mirrors the envelope. Requests are `channels.messages` (EXECUTION_COMMANDS: hello,
new_order, cancel, amend, query, set_trading_mode, status); every request gets exactly one
reply, at once, in the one reply shape ({"type": "result", "request_id", "cmd", "ok",
"code", "reason", ...typed fields}); order commands carry `status`:

    new_order   "accepted" | "duplicate" (+ "order") | "rejected" (+ code, reason)
    cancel      "accepted" | "rejected"
    amend       "accepted" (sent; the outcome comes as an exec report) | "rejected"
    query       "ok" + "order" | "rejected"
    any         "busy" (code busy: not done; this peer has not read its earlier replies)

`ok` is false exactly when the request was not carried out (rejected, malformed,
unauthorized, over budget, busy). A request that names a consumer carries the
consumer's key (`channels.identity`); replies are never dropped silently
(`channels.server.ControlRouter`).
"""

from __future__ import annotations

import time

import zmq

from channels import messages as M
from channels.identity import Keys
from channels.limits import RateLimit
from channels.server import ControlRouter, Rejects, admit

from .engine import Engine
from .model import AmendOrder, CancelOrder, QueryOrder, SetTradingMode, SubmitOrder


class ControlServer:
    """Answers control requests on a ROUTER socket; call `do_work()` from the main loop."""

    def __init__(self, engine: Engine, endpoint: str, *, keys: Keys | None = None,
                 context: zmq.Context | None = None, telemetry=None, dlq=None,
                 requests: RateLimit | None = None, clock=time.monotonic_ns):
        self.engine = engine
        self.endpoint = endpoint
        self.keys = keys
        self.tel = telemetry
        self.dlq = dlq
        self.clock = clock
        self.requests = requests or RateLimit(rate_per_s=5000, burst=20_000)
        self.router = ControlRouter(endpoint, context, telemetry=telemetry, prefix="exec.control")
        self.sock = self.router.sock
        self.rejects = Rejects(telemetry, dlq, prefix="exec.control")

    def do_work(self, max_n: int = 64) -> int:
        """Send replies peers were not ready for, answer up to `max_n` waiting requests; return how many."""
        router = self.router
        n = router.flush() if router.outbox else 0
        for envelope, payload in router.receive(max_n):
            n += 1
            verdict = router.admit(envelope)
            if verdict == "drop":
                continue
            if verdict == "busy":
                reply = M.reply(M.request_id_of(payload), None, code="busy", status="busy",
                                reason="answers to earlier requests are not read yet: read them, then retry")
            else:
                reply = self.handle(payload)
            router.send(envelope, M.encode(reply))
        return n

    def handle(self, payload: bytes) -> dict:
        """One request's reply (never raises)."""
        now = self.clock()
        try:
            req = M.parse(payload, M.EXECUTION_COMMANDS)
        except M.ProtocolError as e:
            self.rejects(e, payload, now)
            self._count("invalid", False)
            return M.error_reply(M.request_id_of(payload), None, e, status="rejected")
        cmd = req.CMD
        try:
            if req.consumer is not None:
                admit(req, self.keys, self.requests, now)
            body = self._dispatch(req)
        except M.ProtocolError as e:
            self.rejects(e, payload, now)
            body = {"status": "rejected", "code": e.code, "reason": str(e)}
        except Exception as e:  # a bug: answer, record, keep serving
            err = M.ProtocolError("internal", f"{type(e).__name__}: {e}")
            self.rejects(err, payload, now)
            if self.dlq is not None:
                self.dlq.put("control_request_failed", priority="high", raw=payload[:512], error=str(err))
            body = {"status": "error", "code": "internal", "reason": str(err)}
        code, reason = body.pop("code", None), body.pop("reason", "")
        self._count(cmd, code is None)
        return M.reply(req.request_id, cmd, code=code, reason=reason, **body)

    def _count(self, cmd: str, ok: bool) -> None:
        if self.tel is not None:
            self.tel.inc("exec.control.requests", cmd=cmd, ok="true" if ok else "false")

    def _dispatch(self, req: M.Request) -> dict:
        e = self.engine
        rid = req.request_id
        if isinstance(req, M.NewOrder):
            return e.submit(SubmitOrder(req.consumer, req.client_order_id, req.symbol, req.side, req.type,
                                        req.tif, req.qty, req.price, req.ref_price, rid, req.venue,
                                        req.reduce_only))
        if isinstance(req, M.Cancel):
            return e.cancel(CancelOrder(req.consumer, req.client_order_id, rid))
        if isinstance(req, M.Amend):
            return e.amend(AmendOrder(req.consumer, req.client_order_id, req.qty, req.price, rid))
        if isinstance(req, M.Query):
            return e.query(QueryOrder(req.consumer, req.client_order_id, rid))
        if isinstance(req, M.SetTradingMode):
            return e.set_trading_mode(SetTradingMode(req.consumer, req.enabled, rid))
        if isinstance(req, M.Hello):
            return e.hello(req.consumer)
        return {"open_orders": len(e.open), "last_exec_seq": e.publisher.last_seq,  # M.Status
                "published_seq": e.publisher.published_seq, "stream_up": e.stream_up,
                "venues": e.venue_status()}

    def close(self) -> None:
        self.router.close()  # removes the ipc file: others test for it to see if we are there
