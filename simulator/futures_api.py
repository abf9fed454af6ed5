"""Binance USD-M futures signed order API on the synthetic binance-usdm app.

  POST   /fapi/v1/order        symbol, side, type LIMIT|MARKET, timeInForce GTC|IOC|FOK|GTX
                               (LIMIT), quantity, price (LIMIT), reduceOnly, newClientOrderId,
                               newOrderRespType ACK (default) | RESULT, positionSide BOTH
  PUT    /fapi/v1/order        modify: symbol, orderId | origClientOrderId, side, quantity, price
                               [, modifyId (returned as sent), reduceOnly (a check: -5047)]
  DELETE /fapi/v1/order        symbol + orderId | origClientOrderId
  GET    /fapi/v1/order        symbol + orderId | origClientOrderId
  GET    /fapi/v1/openOrders   [symbol]
  GET    /fapi/v3/balance      [{"asset": "USDT", "balance", "crossWalletBalance", ...}]
  GET    /fapi/v3/positionRisk [{"symbol", "positionSide": "BOTH", "positionAmt", "entryPrice", ...}]
  listenKey and /private: futures_stream.py; the same order requests over the WebSocket API
  (/ws-fapi/v1): futures_ws.py
  GET    /_sim/orders          as on spot (orders_api.py): every order, received / accepted
                               per client order id, rejected, requests, handler_us

Signed exactly as spot (the same HMAC scheme; `OrdersApi._signed`), one-way position mode.
Refusals, with USD-M's codes: a GTX order that would take liquidity -5022 and a FOK order that
cannot fill at once -5021 (both "will not be recorded in the order history": a query finds
nothing), notional below MIN_NOTIONAL -4164, limit price above maxPrice -4016, a reduce-only
order that would not reduce the position -2022, a client order id already open -4116;
modify: nothing changed -5027, unknown order -2013. Other parameter and filter failures answer
with spot's codes (-1102, -1115..-1117, -1121, -1013, -1111). A modify that leaves quantity at
or below the executed quantity, or moves a GTX order across the book, cancels the order, as
Binance documents; every modified order goes to the back of its level ("modified orders will
be reordered in the match queue"; the shared matching engine alone would keep a quantity
decrease in place, as spot's keepPriority does). Not modelled: fees, margin and leverage
checks, hedge mode, priceMatch, conditional orders.
"""

from __future__ import annotations

import collections
import secrets
import time
from fractions import Fraction
from typing import Any

from aiohttp import web

from .binance import BinanceVenue, max_price, max_qty, now_ms
from .book import ASK, BID
from .control import reply
from .futures_stream import Account, FuturesStreams, WALLET_SCALE, _round, mid_of
from .instruments import format_decimal
from .matching import MatchingEngine, Order
from .orders_api import _CID, _COMMON, DEFAULT_KEY, DEFAULT_SECRET, OrdersApi, Reject, _amount, mandatory

_NEW_PARAMS = {"symbol", "side", "type", "timeInForce", "quantity", "price", "newClientOrderId",
               "newOrderRespType", "reduceOnly", "positionSide"} | _COMMON
_ID_PARAMS = {"symbol", "orderId", "origClientOrderId"} | _COMMON
_MODIFY_PARAMS = _ID_PARAMS | {"side", "quantity", "price", "priceMatch", "modifyId", "reduceOnly"}
NOT_RECORDED = " The order will not be recorded in the order history"


class FuturesApi(OrdersApi):
    """Signed USD-M order endpoints, the matching engine, the account and the user stream."""

    extra_faults = frozenset({"reorder_report"})   # beyond spot's order-path faults (futures_stream.py)

    def __init__(self, venue: BinanceVenue, api_key: str = DEFAULT_KEY, api_secret: str = DEFAULT_SECRET,
                 lifetime_s: float = 24 * 3600.0, ping_interval_s: float = 180.0, **_ignored: float):
        self.venue = venue
        self.api_key = api_key
        self.secret = api_secret.encode()
        books = {f.inst.canonical: f.driver.book for f in venue.feeds.values()}
        self.account = Account(lambda inst: mid_of(books[inst.canonical], inst))
        self.userstream = FuturesStreams(venue.faults, now_ms, self.account, lifetime_s=lifetime_s,
                                         ping_interval_s=ping_interval_s)
        self.userstream.describe = self._describe
        drivers = {f.inst.canonical: f.driver for f in venue.feeds.values()}
        self.engine = MatchingEngine(drivers, self.userstream.on_event, self._publish, now_ms)
        self.gtx: set[int] = set()             # order ids placed as GTX (the engine rests them as GTC)
        self.reduce_only: set[int] = set()
        self.received: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.rejected = 0
        self.requests: dict[str, int] = {}
        self.handler_ns: collections.deque = collections.deque(maxlen=100_000)
        self._hung: set = set()
        venue.orders, venue.userstream = self, self.userstream
        r = venue.app.router
        r.add_post("/fapi/v1/order", self._new_order)
        r.add_put("/fapi/v1/order", self._modify)
        r.add_delete("/fapi/v1/order", self._cancel_order)
        r.add_get("/fapi/v1/order", self._query_order)
        r.add_get("/fapi/v1/openOrders", self._open_orders)
        r.add_get("/fapi/v3/balance", self._balance)
        r.add_get("/fapi/v3/positionRisk", self._position_risk)
        for method in ("POST", "PUT", "DELETE"):
            r.add_route(method, "/fapi/v1/listenKey", self._listen_key)
        r.add_get("/_sim/orders", self._sim_orders)
        venue.app.on_shutdown.append(self._release_hung)
        self.userstream.add_routes(venue.app)

    # -- endpoints ----------------------------------------------------------
    async def _new_order(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter_ns()
        try:
            body = self.place(await self._signed(request, _NEW_PARAMS))
        except Reject as rej:
            return rej.response()
        self.handler_ns.append(time.perf_counter_ns() - t0)
        return await self._respond(request, body)

    async def _modify(self, request: web.Request) -> web.StreamResponse:
        try:
            body = self.modify(await self._signed(request, _MODIFY_PARAMS))
        except Reject as rej:
            return rej.response()
        return await self._respond(request, body)

    async def _cancel_order(self, request: web.Request) -> web.StreamResponse:
        try:
            body = self.cancel(await self._signed(request, _ID_PARAMS))
        except Reject as rej:
            return rej.response()
        return await self._respond(request, body)

    async def _query_order(self, request: web.Request) -> web.Response:
        try:
            return reply(self.status(await self._signed(request, _ID_PARAMS)))
        except Reject as rej:
            return rej.response()

    # -- the order requests, whichever way they came (REST here, WebSocket API: futures_ws.py) --
    def place(self, params: dict[str, str]) -> dict[str, Any]:
        """Validate and carry out a new order (authenticated `params`); its reply body; raise Reject."""
        cid = params.get("newClientOrderId", "")
        self.received[cid] = self.received.get(cid, 0) + 1
        try:
            order, resp_type, gtx, reduce_only = self._validate(params)
        except Reject:
            self.rejected += 1
            raise
        self.accepted[order.client_order_id] = self.accepted.get(order.client_order_id, 0) + 1
        if gtx:
            self.gtx.add(order.order_id)
        if reduce_only:
            self.reduce_only.add(order.order_id)
        self.engine.submit(order)
        body = self._order_json(order) if resp_type == "RESULT" else self._ack_json(order)
        del body["time"]                       # as documented: the reply of POST has updateTime only
        body["cumQty"] = body["executedQty"]
        return body

    def modify(self, p: dict[str, str]) -> dict[str, Any]:
        """Carry out a modify (see the module docstring); the order's reply body; raise Reject."""
        order = self._lookup(p, -2013, "Order does not exist.")
        for name in ("side", "quantity", "price"):
            if not p.get(name):
                raise mandatory(name)
        if not order.is_open:
            raise Reject(-2013, "Order does not exist.")
        if order.type != "LIMIT":
            raise Reject(-1116, "Invalid orderType.")   # only LIMIT orders can be modified
        if p["side"] != ("BUY" if order.side == BID else "SELL"):
            raise Reject(-4050, "Side does not match the order's side.")
        inst = order.inst
        qty = _amount(p["quantity"], "quantity", inst.qty_decimals, "LOT_SIZE")
        price = _amount(p["price"], "price", inst.price_decimals, "PRICE_FILTER")
        if qty == 0 or qty > max_qty(inst) or qty % inst.lot:
            raise Reject(-1013, "Filter failure: LOT_SIZE")
        if price == 0 or price % inst.tick:
            raise Reject(-1013, "Filter failure: PRICE_FILTER")
        if price > max_price(inst):
            raise Reject(-4016, f"Limit price can't be higher than {format_decimal(max_price(inst), inst.price_decimals)}.")
        if p.get("reduceOnly") == "true" and order.order_id not in self.reduce_only:
            raise Reject(-5047, "The original order is not a reduce-only order")
        if qty == order.qty and price == order.price:
            raise Reject(-5027, "No need to modify the order.")
        if qty <= order.executed or (order.order_id in self.gtx and self._crosses(order, price)):
            self.engine.cancel(order, "")          # as Binance documents for these two cases
        else:
            kept = price == order.price and qty <= order.qty
            self.userstream.modify_id = p.get("modifyId", "")
            try:
                self.engine.amend(order, qty, price)
            finally:
                self.userstream.modify_id = ""
            if kept and order.in_book:             # USD-M re-queues every modified order
                book = self.engine.drivers[order.inst.canonical].book
                book.remove_order(order.side, order.price, order)
                book.add_order(order.side, order.price, order)
        body = self._order_json(order)
        if p.get("modifyId"):
            body["modifyId"] = int(p["modifyId"]) if p["modifyId"].isdigit() else p["modifyId"]   # as sent
        return body

    def cancel(self, p: dict[str, str]) -> dict[str, Any]:
        order = self._lookup(p, -2011, "Unknown order sent.")
        if not order.is_open:
            raise Reject(-2011, "Unknown order sent.")
        self.engine.cancel(order, "")
        return self._order_json(order)

    def status(self, p: dict[str, str]) -> dict[str, Any]:
        return self._order_json(self._lookup(p, -2013, "Order does not exist."))

    async def _balance(self, request: web.Request) -> web.Response:
        try:
            await self._signed(request, _COMMON)
        except Reject as rej:
            return rej.response()
        wallet, pnl = self.account.wallet_text(), self.account.unrealized_total()
        up = format_decimal(_round(pnl, WALLET_SCALE), WALLET_SCALE, WALLET_SCALE)
        return reply([{"accountAlias": "SgsR", "asset": "USDT", "balance": wallet, "crossWalletBalance": wallet,
                       "crossUnPnl": up, "availableBalance": wallet, "maxWithdrawAmount": wallet,
                       "marginAvailable": True, "updateTime": now_ms()}])

    async def _position_risk(self, request: web.Request) -> web.Response:
        try:
            await self._signed(request, {"symbol"} | _COMMON)
        except Reject as rej:
            return rej.response()
        out = []
        for sym, pos in self.account.positions.items():
            if not pos.size:
                continue
            f = self.account.position_fields(pos)
            out.append({"symbol": sym, "positionSide": "BOTH", "positionAmt": f["pa"], "entryPrice": f["ep"],
                        "breakEvenPrice": f["ep"], "markPrice": "0", "unRealizedProfit": f["up"],
                        "liquidationPrice": "0", "isolatedMargin": "0", "notional": "0", "marginAsset": "USDT",
                        "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
                        "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 0,
                        "bidNotional": "0", "askNotional": "0", "updateTime": now_ms()})
        return reply(out)

    async def _listen_key(self, request: web.Request) -> web.Response:
        self.venue.rest_requests += 1
        denied = self._key_reject(request)
        if denied is not None:
            return denied.response()
        self.requests[f"{request.method} {request.path}"] = self.requests.get(f"{request.method} {request.path}", 0) + 1
        us = self.userstream
        if request.method == "POST":
            return reply({"listenKey": us.create_key()})
        if request.method == "PUT":
            if not us.keepalive():
                return Reject(-1125, "This listenKey does not exist.").response()
            return reply({"listenKey": us.key})
        us.delete_key()
        return reply({})

    # -- helpers ------------------------------------------------------------
    def expire_listen_key(self) -> int:
        """Let the account's listen key run out now (tests: `sim.call(api.expire_listen_key)`)."""
        return self.userstream.expire_key()

    def _crosses(self, order: Order, price: int) -> bool:
        book = self.engine.drivers[order.inst.canonical].book
        best = book.best(ASK if order.side == BID else BID)
        return best is not None and (price >= best if order.side == BID else price <= best)

    def _validate(self, p: dict[str, str]) -> tuple[Order, str, bool, bool]:
        for name in ("symbol", "side", "type"):
            if not p.get(name):
                raise mandatory(name)
        feed = self.venue.feeds.get(p["symbol"])
        if feed is None:
            raise Reject(-1121, "Invalid symbol.")
        inst = feed.inst
        if p["side"] not in ("BUY", "SELL"):
            raise Reject(-1117, "Invalid side.")
        if p.get("positionSide", "BOTH") != "BOTH":
            raise Reject(-4061, "Order's position side does not match user's setting.")
        otype = p["type"]
        if otype not in ("LIMIT", "MARKET"):
            raise Reject(-1116, "Invalid orderType.")
        tif = "GTC"
        if otype == "LIMIT":
            for name in ("timeInForce", "quantity", "price"):
                if not p.get(name):
                    raise mandatory(name)
            tif = p["timeInForce"]
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise Reject(-1115, "Invalid timeInForce.")
        elif not p.get("quantity"):
            raise mandatory("quantity")
        reduce_only = p.get("reduceOnly", "false")
        if reduce_only not in ("true", "false"):
            raise Reject(-1100, "Illegal characters found in parameter 'reduceOnly'; legal range is 'true, false'.")
        qty = _amount(p["quantity"], "quantity", inst.qty_decimals, "LOT_SIZE")
        if qty == 0 or qty < inst.min_qty or qty > max_qty(inst) or qty % inst.lot:
            raise Reject(-1013, "Filter failure: LOT_SIZE")
        price = 0
        if otype == "LIMIT":
            price = _amount(p["price"], "price", inst.price_decimals, "PRICE_FILTER")
            if price == 0 or price % inst.tick:
                raise Reject(-1013, "Filter failure: PRICE_FILTER")
            if price > max_price(inst):
                raise Reject(-4016, f"Limit price can't be higher than "
                                    f"{format_decimal(max_price(inst), inst.price_decimals)}.")
        side = BID if p["side"] == "BUY" else ASK
        maker = ASK if side == BID else BID
        book = feed.driver.book
        ref = price or book.best(maker) or 0
        if reduce_only == "false" and ref and ref * qty < inst.min_notional * 10 ** (inst.price_decimals + inst.qty_decimals):
            raise Reject(-4164, f"Order's notional must be no smaller than {inst.min_notional} "
                                "(unless you choose reduce only).")
        if reduce_only == "true":
            pos = self.account.positions.get(p["symbol"])
            size = pos.size if pos is not None else 0
            if not size or (size > 0) == (side == BID) or qty > abs(size):
                raise Reject(-2022, "ReduceOnly Order is rejected.")
        cid = p.get("newClientOrderId") or secrets.token_hex(11)
        if not _CID.match(cid):
            raise Reject(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        resp_type = p.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise Reject(-1100, "Illegal characters found in parameter 'newOrderRespType'; "
                                "legal range is 'ACK, RESULT'.")
        if self.engine.open_with_client_id(inst.binance_symbol, cid) is not None:
            raise Reject(-4116, "ClientOrderId is duplicated.")
        if tif == "GTX" and (best := book.best(maker)) is not None and (price >= best if side == BID else price <= best):
            raise Reject(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                "rejected." + NOT_RECORDED)
        if tif == "FOK" and feed.driver.available(maker, price) < qty:
            raise Reject(-5021, "Due to the order could not be filled immediately, the FOK order has been "
                                "rejected." + NOT_RECORDED)
        order = Order(self.engine.new_order_id(), cid, inst, side, otype, "GTC" if tif == "GTX" else tif, qty, price,
                      now_ms())
        return order, resp_type, tif == "GTX", reduce_only == "true"

    def _describe(self, o: Order) -> tuple[str, bool, str]:
        """(time in force as placed, reduce-only, average price) of an order, for its reports."""
        return ("GTX" if o.order_id in self.gtx else o.tif), o.order_id in self.reduce_only, self._avg(o)

    @staticmethod
    def _avg(o: Order) -> str:
        """The average fill price, rounded half-even at price decimals + 3 ("0" before a fill)."""
        if not o.executed:
            return "0"
        d = o.inst.price_decimals + 3
        return format_decimal(_round(Fraction(o.quote, o.executed * 10**o.inst.price_decimals), d), d, d)

    def _ack_json(self, o: Order) -> dict[str, Any]:
        """The ACK reply: the order as accepted (NEW, nothing executed)."""
        body = self._order_json(o)
        zero_q = format_decimal(0, o.inst.qty_decimals, o.inst.qty_decimals)
        body.update(status="NEW", executedQty=zero_q, avgPrice="0",
                    cumQuote=format_decimal(0, o.inst.price_decimals + o.inst.qty_decimals,
                                            o.inst.price_decimals + o.inst.qty_decimals))
        return body

    def _order_json(self, o: Order) -> dict[str, Any]:
        pd, qd = o.inst.price_decimals, o.inst.qty_decimals
        tif, reduce_only, avg = self._describe(o)
        return {"orderId": o.order_id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_order_id,
                "price": format_decimal(o.price, pd, pd), "avgPrice": avg, "origQty": format_decimal(o.qty, qd, qd),
                "executedQty": format_decimal(o.executed, qd, qd),
                "cumQuote": format_decimal(o.quote, pd + qd, pd + qd), "timeInForce": tif, "type": o.type,
                "reduceOnly": reduce_only, "closePosition": False, "side": "BUY" if o.side == BID else "SELL",
                "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                "origType": o.type, "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
                "time": o.created_ms, "updateTime": o.updated_ms}

