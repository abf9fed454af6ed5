"""Binance spot user-data stream: listen keys and executionReport events.

  POST   /api/v3/userDataStream              -> {"listenKey": "..."} (X-MBX-APIKEY only;
                                                the account's live key is returned again)
  PUT    /api/v3/userDataStream?listenKey=    -> {}   keepalive
  DELETE /api/v3/userDataStream?listenKey=    -> {}   closes the key and its sockets
  WS     /ws/<listenKey>                      bare events, as Binance sends them

Every ExecEvent of the matching engine becomes one executionReport, sent to
every socket of every live listen key of the account (one account per API key).
A quoted event, for the shape: {"e":"executionReport","E":1499405658658,
"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC",
"q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"",
"x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000",
"L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"I":8641984,"w":true,
"m":false,"M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000",
"Q":"0.00000000","W":1499405658657,"V":"NONE"}
Listen keys do not expire (no 60-minute timeout in the simulator).
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any, Callable

import orjson
from aiohttp import web

from .book import BID
from .control import reply
from .faults import FaultBox
from .hub import Client, Hub
from .instruments import fmt, format_decimal
from .matching import ExecEvent, Order

ZERO8 = "0.00000000"


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


class UserStreams:
    """Listen keys of the account and the sockets attached to them."""

    def __init__(self, api_key: str, faults: FaultBox, clock_ms: Callable[[], int]):
        self.api_key = api_key
        self.faults = faults
        self.clock_ms = clock_ms
        self.hub = Hub("binance-spot/user")
        self.keys: dict[str, int] = {}        # listenKey -> last keepalive ms
        self._event_ids = itertools.count(1)
        self.reports = 0

    def owns(self, path: str) -> bool:
        """Tell whether a /ws/<path> is one of our listen keys."""
        return path in self.keys

    def add_routes(self, app: web.Application, auth: Callable[[web.Request], web.Response | None]) -> None:
        """Mount the userDataStream REST endpoints (API key required)."""

        async def create(request: web.Request) -> web.Response:
            if (denied := auth(request)) is not None:
                return denied
            key = next(iter(self.keys), None) or secrets.token_urlsafe(45)[:60]
            self.keys[key] = self.clock_ms()
            return reply({"listenKey": key})

        async def keepalive(request: web.Request) -> web.Response:
            if (denied := auth(request)) is not None:
                return denied
            key = await _listen_key(request)
            if key not in self.keys:
                return reply({"code": -1125, "msg": "This listenKey does not exist."}, 400)
            self.keys[key] = self.clock_ms()
            return reply({})

        async def close(request: web.Request) -> web.Response:
            if (denied := auth(request)) is not None:
                return denied
            key = await _listen_key(request)
            if self.keys.pop(key, None) is None:
                return reply({"code": -1125, "msg": "This listenKey does not exist."}, 400)
            for client in list(self.hub.subs.get(key, ())):
                self.hub.close(client, abrupt=False)
            return reply({})

        app.router.add_post("/api/v3/userDataStream", create)
        app.router.add_put("/api/v3/userDataStream", keepalive)
        app.router.add_delete("/api/v3/userDataStream", close)
        app.on_shutdown.append(self.hub.shutdown)

    async def serve(self, request: web.Request, key: str) -> web.WebSocketResponse:
        """Run one user-data socket; client messages are ignored."""
        return await self.hub.serve(request, False, _ignore, lambda c: self.hub.subscribe(c, key))

    def on_event(self, ev: ExecEvent) -> None:
        """Send one executionReport to every live listen key's sockets."""
        frame = orjson.dumps(execution_report(ev, next(self._event_ids)))
        copies = 2 if self.faults.take("duplicate_report") else 1
        for key in self.keys:
            for _ in range(copies):
                self.hub.publish(key, None, frame, "executionReport")
        self.reports += 1

    def stats(self) -> dict[str, Any]:
        """Return listen keys, sockets and report counters."""
        return {"listen_keys": len(self.keys), "reports": self.reports, **self.hub.stats()}


async def _listen_key(request: web.Request) -> str:
    if "listenKey" in request.query:
        return request.query["listenKey"]
    form = await request.post()
    return str(form.get("listenKey", ""))


def _ignore(_client: Client, _text: str) -> None:
    return None
