"""The control socket: a ZeroMQ ROUTER for order entry and set_trading_mode.

Default endpoint `ipc://<run_dir>/execution.ctl`. A client may use DEALER (frames:
[payload]) or REQ (frames: ["", payload]); the reply mirrors the envelope. Payloads
are orjson objects; every request gets exactly one reply, at once:

    request                                                      reply ("type": "result")
    {"cmd": "hello", "request_id": 1, "consumer": "c1"}          ok, consumer_id, trading_enabled,
                                                                 last_exec_seq
    {"cmd": "new_order", "request_id": 2, "consumer": "c1",      status "accepted" | "duplicate"
     "client_order_id": "o-1", "symbol": "BTC-USDT",              (+ "order") | "rejected" (+ "code",
     "side": "buy", "type": "limit", "tif": "GTC",                "reason")
     "qty": "0.01", "price": "30000.5"}   (market: no price/tif; optional "ref_price")
    {"cmd": "cancel", "request_id": 3, "consumer": "c1", "client_order_id": "o-1"}
                                                                 status "accepted" | "rejected"
    {"cmd": "query", "request_id": 4, "consumer": "c1", "client_order_id": "o-1"}
                                                                 status "ok" + "order" | "rejected"
    {"cmd": "set_trading_mode", "request_id": 5, "consumer": "c1", "enabled": false}
                                                                 ok, consumer, enabled
    {"cmd": "status", "request_id": 6}                           ok, open_orders, last_exec_seq, ...

Every reply: {"type": "result", "request_id": <echoed>, "ok": <bool>, ...}; `ok` is false
exactly when the request was rejected or malformed.
"""

from __future__ import annotations

import os

import orjson
import zmq

from events import BadInput

from .engine import Engine
from .model import CancelOrder, QueryOrder, SetTradingMode, SubmitOrder


def default_endpoint(run_dir) -> str:
    return f"ipc://{run_dir}/execution.ctl"


class ControlServer:
    """Answers control requests on a ROUTER socket; call `do_work()` from the main loop."""

    def __init__(self, engine: Engine, endpoint: str, *, context: zmq.Context | None = None, telemetry=None,
                 dlq=None):
        self.engine = engine
        self.endpoint = endpoint
        self.tel = telemetry
        self.dlq = dlq
        self.sock = (context or zmq.Context.instance()).socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.sock.bind(endpoint)

    def do_work(self, max_n: int = 64) -> int:
        """Answer up to `max_n` waiting requests; return how many."""
        n = 0
        while n < max_n:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            if len(frames) < 2:
                continue
            envelope, payload = frames[:-1], frames[-1]
            self.sock.send_multipart([*envelope, orjson.dumps(self.handle(payload))])
        return n

    def handle(self, payload: bytes) -> dict:
        """One request's reply (never raises)."""
        try:
            msg = orjson.loads(payload)
            if not isinstance(msg, dict):
                raise ValueError("a request is a JSON object")
        except (orjson.JSONDecodeError, ValueError) as e:
            return {"type": "result", "request_id": None, "ok": False, "status": "rejected",
                    "code": "bad_request", "reason": f"malformed request: {e}"}
        rid = msg.get("request_id")
        cmd = msg.get("cmd")
        try:
            body = self._dispatch(cmd, msg, rid)
        except (KeyError, TypeError) as e:
            body = {"status": "rejected", "code": "bad_request", "reason": f"{cmd}: missing or bad field {e}"}
        except BadInput as e:
            body = {"status": "rejected", "code": "validation", "reason": str(e)}
        except Exception as e:  # a bug: answer, record, keep serving
            if self.dlq is not None:
                self.dlq.put("control_request_failed", priority="high", raw=payload, error=f"{type(e).__name__}: {e}")
            body = {"status": "error", "code": "internal", "reason": f"{type(e).__name__}: {e}"}
        ok = body.get("status") not in ("rejected", "error")
        if self.tel is not None:
            self.tel.inc("exec.control.requests", cmd=str(cmd), ok=str(ok).lower())
        return {"type": "result", "request_id": rid, "ok": ok, **body}

    def _dispatch(self, cmd, m: dict, rid) -> dict:
        e = self.engine
        if cmd == "new_order":
            return e.submit(SubmitOrder(m["consumer"], m["client_order_id"], m.get("symbol"), m.get("side"),
                                        m.get("type"), m.get("tif"), m.get("qty"), m.get("price"),
                                        m.get("ref_price"), rid or 0))
        if cmd == "cancel":
            return e.cancel(CancelOrder(m["consumer"], m["client_order_id"], rid or 0))
        if cmd == "query":
            return e.query(QueryOrder(m["consumer"], m["client_order_id"], rid or 0))
        if cmd == "set_trading_mode":
            if not isinstance(m.get("enabled"), bool):
                return {"status": "rejected", "code": "bad_request",
                        "reason": f"enabled must be true or false: enabled={m.get('enabled')!r}"}
            return e.set_trading_mode(SetTradingMode(m["consumer"], m["enabled"], rid or 0))
        if cmd == "hello":
            return e.hello(m["consumer"])
        if cmd == "status":
            return {"open_orders": len(e.open), "last_exec_seq": e.publisher.last_seq,
                    "published_seq": e.publisher.published_seq, "stream_up": e.stream_up}
        return {"status": "rejected", "code": "bad_request", "reason": f"unknown cmd {cmd!r}"}

    def close(self) -> None:
        self.sock.close(0)
        if self.endpoint.startswith("ipc://"):  # others test for the file to see if we are there
            try:
                os.unlink(self.endpoint[len("ipc://"):])
            except FileNotFoundError:
                pass
