"""Binance spot order entry over the WebSocket API: `order.place`, `order.cancel`, `order.status`.

  WS /ws-api/v3  order.place   symbol, side, type, timeInForce, quantity, price, newClientOrderId,
                               newOrderRespType + apiKey, timestamp, signature[, recvWindow]
                 order.cancel  symbol + orderId | origClientOrderId [, newClientOrderId]
                 order.status  symbol + orderId | origClientOrderId
  GET /_sim/ws_orders          {"requests": {method: n}, "dropped": n, "delayed": n,
                                "handler_us": {n, p50, p99}} (time inside order.place)

The same checks and the same matching engine as REST (orders_api.py: `_validate`, `_lookup`,
`_cancel`, and its `received` / `accepted` / `rejected` counts, so GET /_sim/orders counts an
order whichever way it came); the answers are REST's order objects inside the WebSocket API
envelope {"id", "status", "result" | "error", "rateLimits"} (userstream.py). Signed as every
WebSocket API request: HMAC-SHA256 over the params sorted by name (web-socket-api.md "SIGNED
request example (HMAC)"). Parameter values may come as JSON strings or numbers; they are
checked as their text (booleans "true"/"false"), as REST reads its query string.

Request weight (REQUEST_WEIGHT), as documented: order.place and order.cancel 1, and 0 when they
succeed (since 2026-04-02, CHANGELOG 2026-03-27); order.status 4. rateLimits of an order.place
answer, as the docs show them: ORDERS per 10 s and per day (the
account's orders placed in this interval, counted not enforced: rate limits are not modelled),
then REQUEST_WEIGHT. The order-path faults of REST apply here too, to the next order.place or
order.cancel: `drop_response` carries the request out, then drops the TCP connection without
an answer (`hang`: keeps it open, never answers); `delay_response` answers `seconds` late.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from aiohttp import web

from .binance import now_ms
from .control import reply
from .hub import Client
from .orders_api import _ID_PARAMS, _NEW_PARAMS, OrdersApi, Reject, _percentiles_us
from .userstream import Refused, _text

_ENVELOPE = {"apiKey", "returnRateLimits"}
PLACE_PARAMS = _NEW_PARAMS | _ENVELOPE
CANCEL_PARAMS = _ID_PARAMS | _ENVELOPE
STATUS_PARAMS = (_ID_PARAMS - {"newClientOrderId"}) | _ENVELOPE
ORDERS_PER_10S, ORDERS_PER_DAY = 100, 200_000   # spot's documented ORDERS limits (exchangeInfo)
WEIGHT = {"order.place": 1, "order.cancel": 1, "order.status": 4}
CHARGED = 2   # what UserStreams counted for the request before handing it over


class WsOrders:
    """The order methods of the WebSocket API, registered into the OrdersApi's UserStreams."""

    def __init__(self, api: OrdersApi):
        self.api = api
        self.streams = api.userstream
        self.requests: dict[str, int] = {}
        self.dropped = self.delayed = 0
        self.handler_ns: collections.deque = collections.deque(maxlen=100_000)
        self._placed: dict[tuple[str, int], int] = {}   # (interval, its start) -> orders placed
        self.streams.register("order.place", self._place)
        self.streams.register("order.cancel", self._cancel)
        self.streams.register("order.status", self._status)
        api.venue.app.router.add_get("/_sim/ws_orders", self._sim_stats)

    # -- methods -----------------------------------------------------------------------
    def _place(self, client: Client, rid: Any, params: dict[str, Any]) -> None:
        t0 = time.perf_counter_ns()
        api = self.api
        try:
            p = self._signed("order.place", params, PLACE_PARAMS)
        except Refused as ref:
            self._weigh(client, "order.place", False)
            self.streams.answer(client, rid, ref, params)
            return
        cid = p.get("newClientOrderId", "")
        api.received[cid] = api.received.get(cid, 0) + 1
        try:
            order, resp_type = api._validate(p)
        except Reject as rej:
            api.rejected += 1
            self._weigh(client, "order.place", False)
            self.streams.answer(client, rid, Refused(rej.code, rej.msg, rej.status), params)
            return
        api.accepted[order.client_order_id] = api.accepted.get(order.client_order_id, 0) + 1
        api.engine.submit(order)
        self._weigh(client, "order.place", True)
        body = api._order_response(order, resp_type)
        self.handler_ns.append(time.perf_counter_ns() - t0)
        self._respond(client, rid, body, params, self._order_limits())

    def _cancel(self, client: Client, rid: Any, params: dict[str, Any]) -> None:
        try:
            p = self._signed("order.cancel", params, CANCEL_PARAMS)
            order = self.api._lookup(p, -2011, "Unknown order sent.")
            if not order.is_open:
                raise Reject(-2011, "Unknown order sent.")
        except (Refused, Reject) as err:
            self._weigh(client, "order.cancel", False)
            self.streams.answer(client, rid, _refused(err), params)
            return
        self._weigh(client, "order.cancel", True)
        self._respond(client, rid, self.api._cancel(order, p.get("newClientOrderId")), params, ())

    def _status(self, client: Client, rid: Any, params: dict[str, Any]) -> None:
        self._weigh(client, "order.status", True)
        try:
            p = self._signed("order.status", params, STATUS_PARAMS)
            order = self.api._lookup(p, -2013, "Order does not exist.")
        except (Refused, Reject) as err:
            self.streams.answer(client, rid, _refused(err), params)
            return
        self.streams.answer(client, rid, self.api._order_json(order), params)

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _weigh(client: Client, method: str, ok: bool) -> None:
        """Charge the documented weight instead of the flat one counted on arrival."""
        charged = WEIGHT[method] if not ok or method == "order.status" else 0
        client.state["weight"] += charged - CHARGED

    def _signed(self, method: str, params: dict[str, Any], allowed: set[str]) -> dict[str, str]:
        """Authenticate; return the params as text (as REST reads them); raise Refused."""
        self.api.venue.rest_requests += 1
        self.streams._check_signed(params, allowed)
        self.requests[method] = self.requests.get(method, 0) + 1
        key = f"WS {method}"
        self.api.requests[key] = self.api.requests.get(key, 0) + 1
        return {k: _text(v) for k, v in params.items() if k not in _ENVELOPE and v is not None}

    def _order_limits(self) -> tuple[dict[str, Any], ...]:
        """Count one placed order into ORDERS 10 SECOND and 1 DAY (intervals start at round times)."""
        now = now_ms()
        out = []
        for interval, num, span, limit in (("SECOND", 10, 10_000, ORDERS_PER_10S),
                                           ("DAY", 1, 86_400_000, ORDERS_PER_DAY)):
            key = (interval, now - now % span)
            if key not in self._placed:
                self._placed = {k: v for k, v in self._placed.items() if k[0] != interval}
            self._placed[key] = self._placed.get(key, 0) + 1
            out.append({"rateLimitType": "ORDERS", "interval": interval, "intervalNum": num,
                        "limit": limit, "count": self._placed[key]})
        return tuple(out)

    def _respond(self, client: Client, rid: Any, body: dict[str, Any], params: dict[str, Any],
                 limits: tuple[dict[str, Any], ...]) -> None:
        """Answer a carried-out order request, unless an order-path fault says otherwise."""
        faults = self.api.venue.faults
        dropped = faults.take("drop_response")
        if dropped is not None:
            self.dropped += 1
            if not dropped.params.get("hang"):
                self.streams.hub.close(client, abrupt=True)
            return
        delayed = faults.take("delay_response")
        if delayed is not None:
            self.delayed += 1
            asyncio.get_running_loop().call_later(delayed.params["seconds"], self.streams.answer,
                                                  client, rid, body, params, limits)
            return
        self.streams.answer(client, rid, body, params, limits)

    async def _sim_stats(self, _request: web.Request) -> web.Response:
        return reply({"requests": self.requests, "dropped": self.dropped, "delayed": self.delayed,
                      "handler_us": _percentiles_us(self.handler_ns)})


def _refused(err: Refused | Reject) -> Refused:
    return err if isinstance(err, Refused) else Refused(err.code, err.msg, err.status)
