"""Binance USD-M order entry over the WebSocket API: `order.place`, `order.modify`,
`order.cancel`, `order.status`, on the binance-usdm app.

  WS /ws-fapi/v1   (wss://ws-fapi.binance.com/ws-fapi/v1)
     -> {"id", "method": "order.place", "params": {<POST /fapi/v1/order params>, "apiKey",
         "timestamp", "signature"[, "recvWindow"]}}
     <- {"id", "status": 200, "result": {<the REST reply>}, "rateLimits": [...]}
     <- {"id", "status": 400, "error": {"code", "msg"}, "rateLimits": [...]}
  GET /_sim/ws_orders   {"requests": {method: n}, "dropped": n, "delayed": n}

The same checks, matching engine and counts as REST (futures_api.py `place`, `modify`,
`cancel`, `status`: GET /_sim/orders counts an order whichever way it came); the connection,
the envelope and the signature (HMAC-SHA256 of the params sorted by name) are the spot
WebSocket API's (userstream.py `UserStreams`: Binance signs both alike), only the path and the
methods differ. Parameter values may come as JSON strings or numbers: checked as their text.
The order-path faults apply to the next order.place / order.modify / order.cancel:
`drop_response` carries it out and drops the connection unanswered (`hang`: keeps it open,
never answers); `delay_response` answers `seconds` late. Not modelled: session.logon (Ed25519),
the account and user-data-stream methods, ORDERS rate limits (only REQUEST_WEIGHT is shown).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .binance import now_ms
from .control import reply
from .futures_api import _ID_PARAMS, _MODIFY_PARAMS, _NEW_PARAMS, FuturesApi
from .hub import Client
from .orders_api import Reject
from .userstream import Refused, UserStreams, _text

WS_FAPI_PATH = "/ws-fapi/v1"
_ENVELOPE = {"apiKey", "returnRateLimits"}


class FuturesWsApi:
    """The order methods of the USD-M WebSocket API, over a FuturesApi."""

    def __init__(self, api: FuturesApi, *, lifetime_s: float = 24 * 3600.0, ping_interval_s: float = 180.0):
        self.api = api
        self.server = UserStreams(api.api_key, api.secret, api.venue.faults, now_ms, lifetime_s=lifetime_s,
                                  ping_interval_s=ping_interval_s)
        self.requests: dict[str, int] = {}
        self.dropped = self.delayed = 0
        for method, allowed, run in (("order.place", _NEW_PARAMS, api.place),
                                     ("order.modify", _MODIFY_PARAMS, api.modify),
                                     ("order.cancel", _ID_PARAMS, api.cancel),
                                     ("order.status", _ID_PARAMS, api.status)):
            self.server.register(method, self._handler(method, allowed | _ENVELOPE, run))
        app = api.venue.app
        app.router.add_get(WS_FAPI_PATH, self.server.serve)
        app.router.add_get("/_sim/ws_orders", self._sim_stats)
        app.on_shutdown.append(self.server.hub.shutdown)

    def _handler(self, method: str, allowed: set[str], run):
        def handle(client: Client, rid: Any, params: dict[str, Any]) -> None:
            try:
                self.api.venue.rest_requests += 1
                self.server._check_signed(params, allowed)
                self.requests[method] = self.requests.get(method, 0) + 1
                key = f"WS {method}"
                self.api.requests[key] = self.api.requests.get(key, 0) + 1
                body = run({k: _text(v) for k, v in params.items() if k not in _ENVELOPE and v is not None})
            except Refused as ref:
                self.server.answer(client, rid, ref, params)
                return
            except Reject as rej:
                self.server.answer(client, rid, Refused(rej.code, rej.msg, rej.status), params)
                return
            if method == "order.status":
                self.server.answer(client, rid, body, params)
            else:
                self._respond(client, rid, body, params)
        return handle

    def _respond(self, client: Client, rid: Any, body: dict[str, Any], params: dict[str, Any]) -> None:
        """Answer a carried-out order request, unless an order-path fault says otherwise."""
        faults = self.api.venue.faults
        dropped = faults.take("drop_response")
        if dropped is not None:
            self.dropped += 1
            if not dropped.params.get("hang"):
                self.server.hub.close(client, abrupt=True)
            return
        delayed = faults.take("delay_response")
        if delayed is not None:
            self.delayed += 1
            asyncio.get_running_loop().call_later(delayed.params["seconds"], self.server.answer,
                                                  client, rid, body, params)
            return
        self.server.answer(client, rid, body, params)

    async def _sim_stats(self, _request: web.Request) -> web.Response:
        return reply({"requests": self.requests, "dropped": self.dropped, "delayed": self.delayed})
