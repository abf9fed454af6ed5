"""The OKX private WebSocket (/ws/v5/private) of the okx app, as OKX documents it (2026-12).

  -> "ping"                          <- "pong"
  -> {"op": "login", "args": [{"apiKey", "passphrase", "timestamp": "<unix s>", "sign"}]}
       sign = base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify"))
     <- {"event": "login", "code": "0", "msg": "", "connId"}; errors {"event": "error", "code", "msg",
        "connId"}: 60005 key, 60024 passphrase, 60004 timestamp unreadable, 60006 expired (30 s),
        60007 sign, 60009 login failure (args missing), 60031 a second login on the connection
  -> {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"|"SPOT"|"SWAP"[, "instId"]},
                                  {"channel": "account"}, {"channel": "positions", "instType": ..}]}
     <- {"event": "subscribe", "arg": {..}, "connId"} per arg; 60011 before login, 60018 unknown channel
  <- {"arg": {"channel": "orders", "instType", "uid"}, "data": [order]}     every order change
  <- {"arg": {"channel": "account", "uid"}, "data": [{"details": [..], "uTime"}]}  balance changes
  <- {"arg": {"channel": "positions", "instType": "ANY", "uid"}, "data": [position]}  on subscribe
                                                                                 and on change
  -> {"id", "op": "order"|"cancel-order"|"amend-order", "args": [{..as REST..}][, "expTime"]}
     <- {"id", "op", "code", "msg", "data": [{.., "sCode", "sMsg"}], "inTime", "outTime"}
  <- {"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service
     upgrade. Please reconnect.", "connId"}   (fault `server_shutdown`), then the venue closes it

Unanswered subscriptions of a closed connection are dropped: pushes while no connection is
subscribed are lost, as on OKX (the client reconciles by REST on reconnect).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from .hub import Client, Hub
from .okx_orders import WINDOW_MS, Reject, Spec

UID = "614488474791936"
_OPS = {"order": "place", "cancel-order": "cancel", "amend-order": "amend"}


class PrivateWs:
    """The private connections of the account and what they subscribed."""

    def __init__(self, orders):
        self.orders = orders
        self.hub = Hub("okx/private")
        self.counts = {k: 0 for k in ("logins", "login_failures", "subscribes", "pushes", "pushes_unsubscribed",
                                      "ops", "server_shutdowns")}
        self.held = 0
        self._late: tuple | None = None      # an `orders` push held back by reorder_report

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws/v5/private", self._serve)
        app.on_shutdown.append(self.hub.shutdown)

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        return await self.hub.serve(request, False, self._on_text)

    def stats(self) -> dict[str, Any]:
        return {"held_logins": self.held, **self.counts, **self.hub.stats()}

    # -- requests ------------------------------------------------------------------------
    def _on_text(self, client: Client, text: str) -> None:
        if text == "ping":
            client.push(None, b"pong")
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            self._error(client, "60012", f"Invalid request: {text[:200]}")
            return
        op = msg["op"]
        if op == "login":
            delay = self.orders.venue.faults.take("delay_subscribe")
            if delay is not None:
                asyncio.ensure_future(self._held_login(client, msg, delay.params["seconds"]))
                return
            self._login(client, msg)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(client, op, msg)
        elif op in _OPS:
            self._op(client, op, msg)
        else:
            self._error(client, "60019", f"Invalid op: {op}", msg.get("id"))

    async def _held_login(self, client: Client, msg: dict, seconds: float) -> None:
        self.held += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self.held -= 1
        if not client.closed:
            self._login(client, msg)

    def _login(self, client: Client, msg: dict) -> None:
        o = self.orders
        args = msg.get("args")
        a = args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else None
        code, text = "", ""
        if client.state.get("uid"):
            code, text = "60031", "The WebSocket endpoint does not allow multiple or repeated logins."
        elif a is None or not all(a.get(k) for k in ("apiKey", "passphrase", "timestamp", "sign")):
            code, text = "60009", "Login failure"
        elif not hmac.compare_digest(str(a["apiKey"]), o.api_key):
            code, text = "60005", "Invalid apiKey"
        elif not hmac.compare_digest(str(a["passphrase"]), o.passphrase):
            code, text = "60024", "Wrong passphrase"
        else:
            ts = str(a["timestamp"])
            try:
                secs = float(ts)
            except ValueError:
                secs = None
            expected = base64.b64encode(hmac.new(o.secret, (ts + "GET" + "/users/self/verify").encode(),
                                                 hashlib.sha256).digest()).decode()
            if secs is None:
                code, text = "60004", "Invalid timestamp"
            elif abs(time.time() - secs) * 1000 > WINDOW_MS:
                code, text = "60006", "Timestamp request expired"
            elif not hmac.compare_digest(expected, str(a["sign"])):
                code, text = "60007", "Invalid sign"
        if code:
            self.counts["login_failures"] += 1
            self._error(client, code, text, msg.get("id"))
            return
        client.state["uid"] = UID
        client.state["subs"] = []
        self.counts["logins"] += 1
        client.push(None, orjson.dumps({"event": "login", "code": "0", "msg": "", "connId": client.conn_id}))

    def _subscribe(self, client: Client, op: str, msg: dict) -> None:
        args = msg.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            self._error(client, "60012", f"Invalid request: {orjson.dumps(msg).decode()[:200]}", msg.get("id"))
            return
        if not client.state.get("uid"):
            self._error(client, "60011", "Please log in", msg.get("id"))
            return
        for a in args:
            ch = a.get("channel")
            ok = (ch == "account") or (ch in ("orders", "positions") and a.get("instType") in
                                       ("ANY", "SPOT", "SWAP", "MARGIN", "FUTURES", "OPTION"))
            if not ok:
                self._error(client, "60018", f"Wrong URL or channel:{ch},instId:{a.get('instId')} doesn't exist. "
                            "Please use the correct URL, channel and parameters referring to API document.",
                            msg.get("id"))
                return
        for a in args:
            subs = client.state["subs"]
            if op == "subscribe":
                if a not in subs:
                    subs.append(dict(a))
                self.counts["subscribes"] += 1
            elif a in subs:
                subs.remove(a)
            ack = {"event": op, "arg": a, "connId": client.conn_id}
            if "id" in msg:
                ack = {"id": msg["id"], **ack}
            client.push(None, orjson.dumps(ack))
            if op == "subscribe" and a.get("channel") == "positions":
                data = self.orders.account.open_positions()
                client.push(None, orjson.dumps({"arg": {**a, "uid": UID}, "data": data}))

    def _op(self, client: Client, op: str, msg: dict) -> None:
        rid = msg.get("id")
        in_time = str(time.time_ns() // 1000)
        if not client.state.get("uid"):
            self._error(client, "60011", "Please log in", rid)
            return
        args = msg.get("args")
        self.counts["ops"] += 1
        a = args[0] if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict) else None
        if a is None:
            body = {"code": "60013", "msg": "Invalid args", "data": []}
        else:
            key = f"WS {op}"
            self.orders.requests[key] = self.orders.requests.get(key, 0) + 1
            try:
                data = getattr(self.orders, _OPS[op])(a, msg.get("expTime"))
                body = {"code": "0", "msg": "", "data": data}
            except Reject as rej:
                body = rej.body()
        body = {"id": rid, "op": op, **body, "inTime": in_time, "outTime": str(time.time_ns() // 1000)}
        faults = self.orders.venue.faults
        if faults.take("drop_response") is not None:      # carried out; the answer never comes
            self.hub.close(client, abrupt=True)
            return
        delayed = faults.take("delay_response")
        if delayed is not None:
            asyncio.get_running_loop().call_later(delayed.params["seconds"], client.push, None, orjson.dumps(body))
            return
        client.push(None, orjson.dumps(body))

    def _error(self, client: Client, code: str, text: str, rid=None) -> None:
        body = {"event": "error", "code": code, "msg": text, "connId": client.conn_id}
        if rid is not None:
            body = {"id": rid, **body}
        client.push(None, orjson.dumps(body))

    # -- pushes --------------------------------------------------------------------------
    def _subscribers(self, channel: str, inst_type: str = "", inst_id: str = ""):
        for client in tuple(self.hub.clients):
            for a in client.state.get("subs", ()):
                if a.get("channel") != channel:
                    continue
                if channel != "account" and a.get("instType") not in ("ANY", inst_type):
                    continue
                if a.get("instId") and a["instId"] != inst_id:
                    continue
                yield client, a
                break

    def _push(self, channel: str, frame_of, inst_type: str = "", inst_id: str = "", copies: int = 1) -> None:
        sent = False
        for client, a in self._subscribers(channel, inst_type, inst_id):
            frame = frame_of(a)
            for _ in range(copies):
                client.push(None, frame)
            sent = True
        self.counts["pushes"] += 1
        if not sent:
            self.counts["pushes_unsubscribed"] += 1
        self.hub.sent[channel] = self.hub.sent.get(channel, 0) + copies

    def push_order(self, spec: Spec, order: dict) -> None:
        faults = self.orders.venue.faults
        copies = 2 if faults.take("duplicate_report") else 1
        late, self._late = self._late, None
        if late is None and faults.take("reorder_report"):
            self._late = (spec, order, copies)
            asyncio.get_running_loop().call_later(1.0, self._send_late, self._late)
            return
        self._send_order(spec, order, copies)
        if late is not None:                 # the held one after the one that followed it
            self._send_order(*late)

    def _send_late(self, late: tuple) -> None:
        if self._late is late:
            self._late = None
            self._send_order(*late)

    def _send_order(self, spec: Spec, order: dict, copies: int) -> None:
        data = orjson.dumps([order])
        self._push("orders", lambda a: b'{"arg":%s,"data":%s}' % (
            orjson.dumps({"channel": "orders", "instType": spec.kind, "instId": spec.inst_id, "uid": UID}), data),
            spec.kind, spec.inst_id, copies)

    def push_account(self, ccys: list[str]) -> None:
        data = orjson.dumps([{"uTime": str(int(time.time() * 1000)), "totalEq": "",
                              "details": self.orders.account.details(set(ccys))}])
        self._push("account", lambda a: b'{"arg":{"channel":"account","uid":"%s"},"data":%s}' % (UID.encode(), data))

    def push_positions(self, inst_id: str) -> None:
        data = orjson.dumps([self.orders.account.position_json(inst_id)])
        self._push("positions", lambda a: b'{"arg":%s,"data":%s}' % (
            orjson.dumps({**a, "uid": UID}), data), "SWAP", inst_id)

    # -- faults --------------------------------------------------------------------------
    def apply_fault(self, spec: dict[str, Any]) -> bool:
        """Apply an immediate private-connection fault (normalized); False when `spec` is not one."""
        name = spec["fault"]
        if name == "disconnect_userstream":
            n = self.hub.close_all(spec["abrupt"])
        elif name == "server_shutdown":
            n = self.server_shutdown(spec["seconds"])
        else:
            return False
        faults = self.orders.venue.faults
        faults.count_injected(name)
        faults.count_applied(name, n)
        return True

    def server_shutdown(self, seconds: float) -> int:
        loop = asyncio.get_running_loop()
        clients = [c for c in self.hub.clients if not c.closed]
        for client in clients:
            client.push(None, orjson.dumps({"event": "notice", "code": "64008", "msg": "The connection will soon "
                                            "be closed for a service upgrade. Please reconnect.",
                                            "connId": client.conn_id}))
            loop.call_later(seconds, self.hub.close, client, False)
        self.counts["server_shutdowns"] += len(clients)
        return len(clients)
