"""Binance spot user data over the WebSocket API, as Binance serves it since 2026-02-20.

  WS   /ws-api/v3                        the WebSocket API (wss://ws-api.binance.com:443/ws-api/v3)
       userDataStream.subscribe.signature  {apiKey, timestamp, signature[, recvWindow]}
                                         -> {"subscriptionId": n}; HMAC-SHA256 signature over
                                            the other params sorted by name, `k=v` joined by `&`
       userDataStream.unsubscribe         [subscriptionId] -> {} (all of this connection's without)
       session.subscriptions              -> [{"subscriptionId": n}, ...]
       ping, time                         -> {}, {"serverTime": ms}
  POST/PUT/DELETE /api/v3/userDataStream  HTTP 410 Gone (nginx's HTML page), as Binance
                                          answers the retired listenKey endpoints

Responses: {"id", "status", "result" | "error": {"code", "msg"}, "rateLimits"} (rateLimits
left out when the request says returnRateLimits=false). Events, one per text frame, wrapped as
{"subscriptionId": n, "event": {...}}: every ExecEvent of the matching engine becomes one
`executionReport` on every subscription of the account (one account per API key), and each
change of balances one `outboundAccountPosition` (orders_api.py, accounts.py);
`userDataStream.unsubscribe` sends `eventStreamTerminated` on the subscription it ends.
Connection events: `serverShutdown` ({"event": {"e": "serverShutdown", "E": ms}}, no
subscriptionId) before the venue closes a connection (fault `server_shutdown`). The server
pings every `ping_interval_s` (20 s) and closes a connection that sends no pong for
`pong_timeout_s` (60 s); it closes every connection `lifetime_s` after it opened (24 h).

Errors, as documented: -1102 missing parameter, -2015 wrong API key (401), -1022 bad signature, -1021 stale timestamp, -1131 recvWindow > 60000, -2035 the account
already has a subscription on this connection, -2042 subscription ids exhausted (65,535 per
connection). Not documented, chosen here: a frame that is not a JSON object gets -1102 with
id null, a method the simulator does not model gets -1020 (UNSUPPORTED_OPERATION).
Order entry: `order.place`, `order.cancel`, `order.status` are registered by ws_orders.py
(`UserStreams.register`), over the checks REST uses (orders_api.py); no session.logon
(Ed25519 only).

A quoted event, for the shape (Binance's user-data-stream.md, "Order Update"):
{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC",
"c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000",
"p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW",
"r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0",
"N":null,"T":1499405658657,"t":-1,"I":8641984,"w":true,"m":false,"M":false,
"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,
"V":"NONE"}}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
from typing import Any, Callable

import orjson
from aiohttp import WSMsgType, web

from .book import BID
from .faults import FaultBox
from .hub import Client, Hub
from .instruments import fmt, format_decimal
from .matching import ExecEvent, Order

log = logging.getLogger("venue.userstream")
ZERO8 = "0.00000000"
WS_API_PATH = "/ws-api/v3"
LIFETIME_S = 24 * 3600.0
PING_INTERVAL_S = 20.0
PONG_TIMEOUT_S = 60.0
MAX_SUBSCRIPTION_IDS = 65_535
# What nginx in front of api.binance.com answers on the retired listenKey endpoints (seen 2026-06).
GONE_HTML = (b"<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n"
             b"<center><h1>410 Gone</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
_SIGNED_PARAMS = {"apiKey", "timestamp", "signature", "recvWindow", "returnRateLimits"}


def px8(order: Order, mantissa: int) -> str:
    """Format a price of the order's instrument with Binance spot's 8 decimals."""
    return fmt(mantissa, order.inst.price_decimals, 8)


def qty8(order: Order, mantissa: int) -> str:
    """Format a quantity of the order's instrument with 8 decimals."""
    return fmt(mantissa, order.inst.qty_decimals, 8)


def quote8(order: Order, mantissa: int) -> str:
    """Format a price*qty amount with 8 decimals (truncating finer digits).

    Not memoized: cumulative quote amounts rarely repeat.
    """
    decimals = order.inst.price_decimals + order.inst.qty_decimals
    if decimals > 8:
        return format_decimal(mantissa // 10 ** (decimals - 8), 8, 8)
    return format_decimal(mantissa, decimals, 8)


def commission_asset(order: Order) -> str:
    """Return the asset Binance charges commission in (received asset)."""
    return order.inst.base if order.side == BID else order.inst.quote


def execution_report(ev: ExecEvent, event_id: int) -> dict[str, Any]:
    """Build the executionReport payload of one ExecEvent."""
    o = ev.order
    traded = ev.x == "TRADE"
    return {
        "e": "executionReport", "E": ev.ts_ms, "s": o.symbol,
        "c": ev.cancel_client_id if ev.x == "CANCELED" else o.client_order_id,
        "S": "BUY" if o.side == BID else "SELL", "o": o.type, "f": o.tif,
        "q": qty8(o, o.qty), "p": px8(o, o.price), "P": ZERO8, "F": ZERO8, "g": -1,
        "C": o.client_order_id if ev.x == "CANCELED" else "",
        "x": ev.x, "X": o.status, "r": "NONE", "i": o.order_id,
        "l": qty8(o, ev.last_qty), "z": qty8(o, o.executed), "L": px8(o, ev.last_price),
        "n": ZERO8 if traded else "0", "N": commission_asset(o) if traded else None,
        "T": ev.ts_ms, "t": ev.trade_id, "I": event_id,
        "w": (o.type == "LIMIT" and o.tif == "GTC") if ev.x == "NEW" else o.in_book, "m": ev.maker, "M": False, "O": o.created_ms,
        "Z": quote8(o, o.quote), "Y": quote8(o, ev.last_qty * ev.last_price), "Q": ZERO8,
        "W": o.created_ms, "V": "NONE",
    }


def signature_payload(params: dict[str, Any]) -> str:
    """The text Binance signs for a WebSocket API request: every param but `signature`,
    sorted by name, as `name=value` joined by `&` (values as sent, not URL-encoded)."""
    return "&".join(f"{k}={_text(params[k])}" for k in sorted(params) if k != "signature")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Refused(Exception):
    """A WebSocket API request the venue refuses: its status, Binance code and message."""

    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _mandatory(name: str) -> Refused:
    return Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


class UserStreams:
    """The WebSocket API connections of the account, their subscriptions and the retired REST."""

    def __init__(self, api_key: str, api_secret: bytes, faults: FaultBox, clock_ms: Callable[[], int], *,
                 lifetime_s: float = LIFETIME_S, ping_interval_s: float = PING_INTERVAL_S,
                 pong_timeout_s: float = PONG_TIMEOUT_S):
        self.api_key, self.secret = api_key, api_secret
        self.faults = faults
        self.clock_ms = clock_ms
        self.lifetime_s, self.ping_interval_s, self.pong_timeout_s = lifetime_s, ping_interval_s, pong_timeout_s
        self.hub = Hub("binance-spot/ws-api")
        self._event_ids = itertools.count(1)
        self.active = 0                 # live subscriptions of the account, over every connection
        self.counts = {k: 0 for k in ("reports", "reports_unsubscribed", "subscribes", "unsubscribes",
                                      "refused", "gaps", "lifetime_closes", "pong_timeouts",
                                      "server_shutdowns", "gone")}
        self.held = 0                   # subscribe requests held by `delay_subscribe`
        # method -> handler(client, id, params): answers through `answer` itself (ws_orders.py)
        self.methods: dict[str, Callable[[Client, Any, dict[str, Any]], None]] = {}

    def register(self, method: str, handler: Callable[[Client, Any, dict[str, Any]], None]) -> None:
        """Serve `method` with `handler` (called with the connection, the request id and its
        params; it answers with `answer`, now or later)."""
        self.methods[method] = handler

    def add_routes(self, app: web.Application) -> None:
        """Mount the WebSocket API and the retired listenKey endpoints."""

        async def gone(_request: web.Request) -> web.Response:
            self.counts["gone"] += 1
            return web.Response(body=GONE_HTML, status=410, content_type="text/html")

        app.router.add_get(WS_API_PATH, self.serve)
        app.router.add_post("/api/v3/userDataStream", gone)
        app.router.add_put("/api/v3/userDataStream", gone)
        app.router.add_delete("/api/v3/userDataStream", gone)
        app.on_shutdown.append(self.hub.shutdown)

    # -- one connection ----------------------------------------------------------------
    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        """Run one WebSocket API connection: writer, pings, lifetime, requests."""
        ws = web.WebSocketResponse(autoping=False, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        hub = self.hub
        client = Client(hub, ws, request, False)
        loop = asyncio.get_running_loop()
        client.state.update(subs=set(), next_sub=0, weight=0, pong=loop.time())
        hub.clients.add(client)
        hub.connections_total += 1
        tasks = [asyncio.create_task(client.run_writer()), asyncio.create_task(self._ping(client))]
        lifetime = loop.call_later(self.lifetime_s, self._expire, client)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_text(client, msg.data.decode("utf-8", "replace"))
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    client.state["pong"] = loop.time()
        except ConnectionResetError:
            pass
        finally:
            lifetime.cancel()
            client.closed = True
            hub.clients.discard(client)
            self._drop_subs(client, client.state["subs"])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return ws

    async def _ping(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        while not client.closed:
            await asyncio.sleep(self.ping_interval_s)
            if client.closed:
                return
            if loop.time() - client.state["pong"] > self.pong_timeout_s:
                self.counts["pong_timeouts"] += 1
                self.hub.close(client, abrupt=False)
                return
            try:
                await client.ws.ping(str(self.clock_ms()).encode())
            except (ConnectionError, RuntimeError):
                return

    def _expire(self, client: Client) -> None:
        if not client.closed:
            self.counts["lifetime_closes"] += 1
            self.hub.close(client, abrupt=False)

    def _drop_subs(self, client: Client, subs: set[int]) -> None:
        for _ in range(len(subs)):
            self.active -= 1
            if self.active == 0:
                self.counts["gaps"] += 1
        client.state["subs"] = client.state["subs"] - subs

    # -- requests ----------------------------------------------------------------------
    def _on_text(self, client: Client, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            self._answer(client, None, Refused(-1102, "Mandatory parameter 'method' was not sent, "
                                                      "was empty/null, or malformed."), {})
            return
        rid, method, params = msg.get("id"), msg["method"], msg.get("params") or {}
        method = method[3:] if method.startswith("v3/") else method
        if not isinstance(params, dict):
            self._answer(client, rid, Refused(-1102, "Mandatory parameter 'params' was not sent, "
                                                     "was empty/null, or malformed."), {})
            return
        client.state["weight"] += 1 if method in ("ping", "time") else 2
        handler = self.methods.get(method)
        if handler is not None:
            handler(client, rid, params)
            return
        if method == "userDataStream.subscribe.signature":
            delay = self.faults.take("delay_subscribe")
            if delay is not None:
                asyncio.ensure_future(self._held_subscribe(client, rid, params, delay.params["seconds"]))
                return
            self._subscribe(client, rid, params)
            return
        try:
            result = self._call(client, method, params)
        except Refused as ref:
            result = ref
        self._answer(client, rid, result, params)

    def _call(self, client: Client, method: str, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.clock_ms()}
        if method == "session.subscriptions":
            return [{"subscriptionId": s} for s in sorted(client.state["subs"])]
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            subs = client.state["subs"]
            ended = set(subs) if wanted is None else {s for s in subs if s == wanted}
            for sid in sorted(ended):
                self.counts["unsubscribes"] += 1
                client.push(None, orjson.dumps({"subscriptionId": sid, "event": {
                    "e": "eventStreamTerminated", "E": self.clock_ms()}}))
            self._drop_subs(client, ended)
            return {}
        raise Refused(-1020, "This operation is not supported.")

    async def _held_subscribe(self, client: Client, rid: Any, params: dict[str, Any], seconds: float) -> None:
        self.held += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self.held -= 1
        if not client.closed:
            self._subscribe(client, rid, params)

    def _subscribe(self, client: Client, rid: Any, params: dict[str, Any]) -> None:
        try:
            self._check_signed(params)
            if client.state["subs"]:
                raise Refused(-2035, "User Data Stream subscription already active.")
            if client.state["next_sub"] >= MAX_SUBSCRIPTION_IDS:
                raise Refused(-2042, "Maximum subscription ID reached for this connection.")
        except Refused as ref:
            self.counts["refused"] += 1
            self._answer(client, rid, ref, params)
            return
        sid = client.state["next_sub"]
        client.state["next_sub"] = sid + 1
        client.state["subs"] = client.state["subs"] | {sid}
        self.active += 1
        self.counts["subscribes"] += 1
        self._answer(client, rid, {"subscriptionId": sid}, params)

    def _check_signed(self, p: dict[str, Any], allowed: set[str] = _SIGNED_PARAMS) -> None:
        """Authenticate a request signed with the account's HMAC key (USER_STREAM; TRADE and
        USER_DATA with their own `allowed` params); raise Refused."""
        for name in ("apiKey", "timestamp", "signature"):
            if p.get(name) in (None, ""):
                raise _mandatory(name)
        if not hmac.compare_digest(str(p["apiKey"]), self.api_key):
            raise Refused(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        unknown = set(p) - allowed
        if unknown:
            raise Refused(-1104, f"Not all sent parameters were read; read '{len(p) - len(unknown)}' "
                                 f"parameter(s) but was sent '{len(p)}'.")
        expected = hmac.new(self.secret, signature_payload(p).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(p["signature"]).lower()):
            raise Refused(-1022, "Signature for this request is not valid.")
        try:
            ts, window = int(p["timestamp"]), float(p.get("recvWindow", 5000))
        except (TypeError, ValueError):
            raise Refused(-1100, "Illegal characters found in parameter 'timestamp'; "
                                 "legal range is '^[0-9]{1,20}$'.") from None
        if window > 60000:
            raise Refused(-1131, "recvWindow must be less than 60000")
        if ts > 10**14:                   # microseconds
            ts //= 1000
        now = self.clock_ms()
        if ts > now + 1000 or now - ts > window:
            raise Refused(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _answer(self, client: Client, rid: Any, result: Any, params: dict[str, Any],
                limits: tuple[dict[str, Any], ...] = ()) -> None:
        body: dict[str, Any] = {"id": rid}
        if isinstance(result, Refused):
            body.update(status=result.status, error={"code": result.code, "msg": result.msg})
        else:
            body.update(status=200, result=result)
        if params.get("returnRateLimits", True) not in (False, "false"):
            body["rateLimits"] = [*limits, {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                            "intervalNum": 1, "limit": 6000, "count": client.state["weight"]}]
        client.push(None, orjson.dumps(body))

    answer = _answer   # for registered methods: `limits` goes before REQUEST_WEIGHT, as the docs show

    # -- events and faults -------------------------------------------------------------
    def on_event(self, ev: ExecEvent) -> None:
        """Send one executionReport to every subscription of the account."""
        raw = orjson.dumps(execution_report(ev, next(self._event_ids)))
        copies = 2 if self.faults.take("duplicate_report") else 1
        self.counts["reports"] += 1
        if not self.active:
            self.counts["reports_unsubscribed"] += 1
            return
        for client in tuple(self.hub.clients):
            for sid in sorted(client.state["subs"]):
                frame = b'{"subscriptionId":%d,"event":%s}' % (sid, raw)
                for _ in range(copies):
                    client.push(None, frame)
        self.hub.sent["executionReport"] = self.hub.sent.get("executionReport", 0) + copies

    def on_account(self, event: dict[str, Any]) -> None:
        """Send one account event (`outboundAccountPosition`) to every subscription of the account."""
        raw = orjson.dumps(event)
        self.counts["account_updates"] = self.counts.get("account_updates", 0) + 1
        if not self.active:
            return
        for client in tuple(self.hub.clients):
            for sid in sorted(client.state["subs"]):
                client.push(None, b'{"subscriptionId":%d,"event":%s}' % (sid, raw))
        name = event["e"]
        self.hub.sent[name] = self.hub.sent.get(name, 0) + 1

    def apply_fault(self, spec: dict[str, Any]) -> bool:
        """Apply an immediate user-stream fault (normalized); False when `spec` is not one."""
        name = spec["fault"]
        if name == "disconnect_userstream":
            n = self.hub.close_all(spec["abrupt"])
        elif name == "server_shutdown":
            n = self.server_shutdown(spec["seconds"])
        else:
            return False
        self.faults.count_injected(name)
        self.faults.count_applied(name, n)
        return True

    def server_shutdown(self, seconds: float) -> int:
        """Send `serverShutdown` on every open connection and close them `seconds` later."""
        frame = orjson.dumps({"event": {"e": "serverShutdown", "E": self.clock_ms()}})
        loop = asyncio.get_running_loop()
        clients = [c for c in self.hub.clients if not c.closed]
        for client in clients:
            client.push(None, frame)
            loop.call_later(seconds, self.hub.close, client, False)
        self.counts["server_shutdowns"] += len(clients)
        return len(clients)

    def stats(self) -> dict[str, Any]:
        """Return connection, subscription and report counters."""
        return {"subscriptions": self.active, "held_subscribes": self.held, **self.counts, **self.hub.stats()}
