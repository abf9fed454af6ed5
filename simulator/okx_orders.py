"""OKX v5 order entry, orders and account on the synthetic okx app, as OKX documents them
(2026-12; venues/okx/PROTOCOL.md "Trading" names the doc sections).

  POST /api/v5/trade/order          instId, tdMode (cash: SPOT; cross|isolated: SWAP), clOrdId,
                                    side, ordType market|limit|post_only|fok|ioc, sz, px, tgtCcy,
                                    reduceOnly (SWAP: 51169 no position, 51170 same direction)
  POST /api/v5/trade/cancel-order   instId, ordId | clOrdId
  POST /api/v5/trade/amend-order    instId, ordId | clOrdId, newSz, newPx, reqId, cxlOnFail
  GET  /api/v5/trade/order          instId, ordId | clOrdId   (51603 "Order does not exist")
  GET  /api/v5/trade/orders-pending [instType, instId, after, limit]   newest first
  GET  /api/v5/account/balance      details: ccy, availBal, frozenBal, cashBal, eq
  GET  /api/v5/account/positions    net-mode SWAP positions: pos (contracts), avgPx, upl, markPx
  GET  /_sim/orders                 every order received (the binance-spot app's shape): {"orders": [...],
                                    "received": {clOrdId: n}, "accepted": {clOrdId: n}, "rejected": n,
                                    "requests": {"METHOD path": n}, "handler_us": {n, p50, p99}} (handler_us:
                                    time inside place-order, REST and WS alike, the newest 100k)
  WS   /ws/v5/private               login, orders / account / positions, order entry (okx_private.py)

Private REST: OK-ACCESS-KEY / -PASSPHRASE / -TIMESTAMP (ISO 8601 ms, within 30 s) / -SIGN
= base64(HMAC-SHA256(secret, timestamp + METHOD + path?query + body)); failures answer
HTTP 401 with 50103/50104/50106/50107 (header empty), 50111 (key), 50105 (passphrase), 50112
(timestamp unreadable), 50102 (expired), 50113 (sign). `expTime` (header; WS: a request
field): a place or amend arriving after it is not processed (code 50102, our choice: the
doc names no code). Parameter errors answer {"code": "51000"|"51001", "data": []} (HTTP 400);
business rejects {"code": "1", "msg": "All operations failed", "data": [{"sCode", "sMsg"}]}:
51008 insufficient balance, 51016 duplicated clOrdId (pending orders only: OKX lets a
clOrdId be reused once its order is done), 51121 lot size, 51137 / 51138 price limit
(buy above 1.5 x mid / sell below 0.5 x mid), 51400 cancel of a done or unknown order,
51503 amend of one.
Swaps (`<BASE>-<QUOTE>-SWAP`, linear, ctValCcy = base) trade on the spot instrument's book
(one book per instrument on this venue): sz is contracts of ctVal base each, and a
lot of a swap is one lot of the book (specs_of).
Account (okx_account.py): spot balances and net swap positions, upl from the book's mid.
Not modelled: a post-only order amended to a crossing price (it trades like any amend),
quote-sized spot market orders (tgtCcy quote_ccy: refused 51000), fees (zero).
Faults (okx with orders): drop_response, delay_response (REST and WS order entry),
disconnect_userstream, duplicate_report (the next `orders` push twice), reorder_report
(the next `orders` push after the one that follows it), server_shutdown
(notice 64008, then close), delay_subscribe (hold the next login answer).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import orjson
from aiohttp import web

from .binance import now_ms
from .book import ASK, BID
from .control import reply
from .instruments import Instrument, fmt, parse
from .matching import ExecEvent, MatchingEngine, Order
from .okx_account import Account, InsufficientFunds, dec
from .orders_api import _percentiles_us

DEFAULT_PASSPHRASE = "meltica-sim-passphrase"
_CID = re.compile(r"^[A-Za-z0-9]{1,32}$")
WINDOW_MS = 30_000         # OK-ACCESS-TIMESTAMP / login timestamp tolerance
ORD_TYPES = {"market", "limit", "post_only", "fok", "ioc"}
TIF = {"limit": "GTC", "post_only": "GTC", "ioc": "IOC", "fok": "FOK", "market": "IOC"}


class Reject(Exception):
    """A request OKX refuses: `top` errors are the reply's code, else the operation's sCode."""

    def __init__(self, code: str, msg: str, status: int = 200, top: bool = False):
        super().__init__(msg)
        self.code, self.msg, self.status, self.top = code, msg, status, top

    def body(self, item: dict | None = None) -> dict:
        if self.top:
            return {"code": self.code, "msg": self.msg, "data": []}
        return {"code": "1", "msg": "All operations failed",
                "data": [{**(item or {}), "sCode": self.code, "sMsg": self.msg}]}


def param(name: str) -> Reject:
    return Reject("51000", f"Parameter {name} error", 400, top=True)


@dataclass
class Spec:
    """One OKX instrument on a simulator instrument: `step` base mantissas per `sz` unit."""

    inst_id: str
    inst: Instrument
    kind: str            # "SPOT" | "SWAP"
    sz_dec: int          # decimals of sz strings
    step: int            # base mantissa per sz mantissa (spot 1)
    ct_val: str = ""

    def base(self, sz: str) -> int:
        return parse(sz, self.sz_dec) * self.step

    def sz(self, base_qty: int) -> str:
        return fmt(base_qty // self.step, self.sz_dec)


def specs_of(instruments: list[Instrument]) -> dict[str, Spec]:
    """Spot and swap specs. A swap's lot (lotSz contracts x ctVal) is one base mantissa of the
    shared book, so every fill the book makes is a whole number of lots: ctVal is 10^e base
    mantissas and lotSz 10^-e contracts, e = min(2, qty decimals) (BTC: ctVal 0.001, lotSz
    0.01; OKX's own BTC-USDT-SWAP has ctVal 0.01: the shape is OKX's, the sizes ours)."""
    out = {}
    for i in instruments:
        out[i.canonical] = Spec(i.canonical, i, "SPOT", i.qty_decimals, 1)
        e = min(2, i.qty_decimals)
        out[f"{i.canonical}-SWAP"] = Spec(f"{i.canonical}-SWAP", i, "SWAP", e, 1, fmt(10 ** e, i.qty_decimals))
    return out


@dataclass
class Meta:
    """What OKX says about an order beyond the matching engine's Order."""

    spec: Spec
    ord_type: str
    cancel_source: str = ""
    req_id: str = ""
    amend_result: str = ""
    reduce_only: bool = False


class OkxOrders:
    """The order API, matching engine, account and private WebSocket of the okx app."""

    def __init__(self, venue, api_key: str, api_secret: str, passphrase: str = DEFAULT_PASSPHRASE):
        from .okx_private import PrivateWs
        self.venue = venue
        self.api_key, self.secret, self.passphrase = api_key, api_secret.encode(), passphrase
        self.specs = specs_of(venue.instruments)
        drivers = {f.inst.canonical: f.driver for f in venue.feeds.values()}
        self.engine = MatchingEngine(drivers, self._on_exec, self._publish, now_ms)
        self.meta: dict[int, Meta] = {}
        self.by_cid: dict[tuple[str, str], Order] = {}
        self.received: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.rejected = 0
        self.requests: dict[str, int] = {}
        self.handler_ns: collections.deque = collections.deque(maxlen=100_000)   # place-order, REST and WS
        self._hung: set[asyncio.Future] = set()
        self.private = PrivateWs(self)
        self.account = Account(self)
        venue.orders = self
        app = venue.app
        app.router.add_post("/api/v5/trade/order", self._rest(self.place))
        app.router.add_post("/api/v5/trade/cancel-order", self._rest(self.cancel))
        app.router.add_post("/api/v5/trade/amend-order", self._rest(self.amend))
        app.router.add_get("/api/v5/trade/order", self._rest(self.get_order))
        app.router.add_get("/api/v5/trade/orders-pending", self._rest(self.pending))
        app.router.add_get("/api/v5/account/balance", self._rest(
            lambda a, exp: [{"totalEq": "", "uTime": str(now_ms()), "details": self.account.details()}]))
        app.router.add_get("/api/v5/account/positions", self._rest(
            lambda a, exp: self.account.open_positions(a.get("instId"))))
        app.router.add_get("/_sim/orders", self._sim_orders)
        app.on_shutdown.append(self._release_hung)
        self.private.add_routes(app)

    # -- hooks from the venue -------------------------------------------------------
    def on_market_trades(self, trades: list) -> None:
        """Fill resting user orders that the synthetic market traded with."""
        self.engine.apply_trades(trades)

    def swap_instruments(self, inst_id: str | None) -> list[dict]:
        """GET /api/v5/public/instruments?instType=SWAP entries (linear USDT swaps)."""
        out = []
        for s in self.specs.values():
            if s.kind != "SWAP" or (inst_id and s.inst_id != inst_id):
                continue
            i = s.inst
            out.append({"instType": "SWAP", "instId": s.inst_id, "uly": i.canonical, "instFamily": i.canonical,
                        "baseCcy": "", "quoteCcy": "", "settleCcy": i.quote, "ctVal": s.ct_val, "ctMult": "1",
                        "ctValCcy": i.base, "ctType": "linear", "listTime": "1606468572000", "expTime": "",
                        "lever": "100", "tickSz": i.tick_str(), "lotSz": fmt(1, s.sz_dec),
                        "minSz": fmt(1, s.sz_dec), "state": "live", "maxLmtSz": "100000000",
                        "maxMktSz": "1000000", "ruleType": "normal", "alias": ""})
        return out

    def stats(self) -> dict[str, Any]:
        return {"received": sum(self.received.values()), "accepted": sum(self.accepted.values()),
                "rejected": self.rejected, "open": len(self.engine.open_orders()),
                "user_trades": self.engine.trades, "private": self.private.stats()}

    def _publish(self, inst: Instrument, trades: list) -> None:
        self.venue.on_step(inst.canonical, trades, user=True)

    # -- auth -----------------------------------------------------------------------
    def authenticate(self, request: web.Request, body: str) -> None:
        """Check the OK-ACCESS-* headers of a private request; raise Reject (HTTP 401)."""
        h = request.headers
        for name, code in (("OK-ACCESS-KEY", "50103"), ("OK-ACCESS-PASSPHRASE", "50104"),
                           ("OK-ACCESS-SIGN", "50106"), ("OK-ACCESS-TIMESTAMP", "50107")):
            if not h.get(name):
                raise Reject(code, f'Request header "{name}" cannot be empty.', 401, True)
        if not hmac.compare_digest(h["OK-ACCESS-KEY"], self.api_key):
            raise Reject("50111", "Invalid OK-ACCESS-KEY.", 401, True)
        if not hmac.compare_digest(h["OK-ACCESS-PASSPHRASE"], self.passphrase):
            raise Reject("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401, True)
        ts = h["OK-ACCESS-TIMESTAMP"]
        try:
            t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
            ms = int((t - datetime(1970, 1, 1)).total_seconds() * 1000)
        except ValueError:
            raise Reject("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401, True) from None
        if abs(now_ms() - ms) > WINDOW_MS:
            raise Reject("50102", "Timestamp request expired.", 401, True)
        path = request.rel_url.raw_path + (f"?{request.rel_url.raw_query_string}"
                                           if request.rel_url.raw_query_string else "")
        expected = base64.b64encode(hmac.new(self.secret, (ts + request.method + path + body).encode(),
                                             hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, h["OK-ACCESS-SIGN"]):
            raise Reject("50113", "Invalid Sign.", 401, True)

    def _rest(self, op):
        async def handler(request: web.Request) -> web.StreamResponse:
            self.venue.rest_requests += 1
            body = (await request.read()).decode("utf-8", "replace")
            try:
                self.authenticate(request, body)
                if request.method == "POST":
                    try:
                        args = orjson.loads(body) if body else {}
                    except orjson.JSONDecodeError:
                        raise Reject("50002", "JSON syntax error", 400, True) from None
                    if not isinstance(args, dict):
                        raise Reject("50002", "JSON syntax error", 400, True)
                    exp = request.headers.get("expTime")
                else:
                    args, exp = dict(request.query), None
                key = f"{request.method} {request.path}"
                self.requests[key] = self.requests.get(key, 0) + 1
                data = op(args, exp)
            except Reject as rej:
                return reply(rej.body(), rej.status)
            return await self.respond(request, {"code": "0", "msg": "", "data": data}, request.method == "POST")
        return handler

    async def respond(self, request: web.Request, body: dict, order_path: bool) -> web.StreamResponse:
        """Answer, unless an order-path fault says otherwise (the work is done either way)."""
        faults = self.venue.faults
        dropped = faults.take("drop_response") if order_path else None
        if dropped is not None:
            if dropped.params.get("hang"):
                hung = asyncio.get_running_loop().create_future()
                self._hung.add(hung)
                try:
                    await hung
                finally:
                    self._hung.discard(hung)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        delayed = faults.take("delay_response") if order_path else None
        if delayed is not None:
            await asyncio.sleep(delayed.params["seconds"])
        return reply(body)

    async def _release_hung(self, _app: web.Application) -> None:
        for fut in list(self._hung):
            fut.cancel()

    async def _sim_orders(self, _request: web.Request) -> web.Response:
        return reply({"orders": [self.order_json(o) for o in self.engine.orders.values()],
                      "received": self.received, "accepted": self.accepted, "rejected": self.rejected,
                      "requests": self.requests, "handler_us": _percentiles_us(self.handler_ns)})

    # -- operations (REST and WS alike): args -> data, or Reject ----------------------
    def _spec(self, args: dict) -> Spec:
        inst_id = args.get("instId")
        if not inst_id:
            raise Reject("50014", "Parameter instId can not be empty.", 400, True)
        spec = self.specs.get(inst_id)
        if spec is None:
            raise Reject("51001", "Instrument ID does not exist.", 400, True)
        return spec

    @staticmethod
    def _expired(exp) -> None:
        if exp not in (None, ""):
            try:
                late = now_ms() > int(exp)
            except (TypeError, ValueError):
                raise param("expTime") from None
            if late:
                raise Reject("50102", "Request timeout: expTime has passed; not processed", 400, True)

    def place(self, a: dict, exp=None) -> list:
        t0 = time.perf_counter_ns()
        try:
            return self._place(a, exp)
        finally:
            self.handler_ns.append(time.perf_counter_ns() - t0)

    def _place(self, a: dict, exp) -> list:
        cid = str(a.get("clOrdId") or "")
        self.received[cid] = self.received.get(cid, 0) + 1
        try:
            order, meta = self._new(a, exp)
        except Reject:
            self.rejected += 1
            raise
        self.accepted[cid] = self.accepted.get(cid, 0) + 1
        self.meta[order.order_id] = meta
        self.by_cid[meta.spec.inst_id, cid] = order
        if meta.ord_type == "post_only" and self._crosses(order):
            self.engine.orders[order.order_id] = order      # placed, then cancelled: it would take
            order.status, order.leaves, order.updated_ms = "CANCELED", 0, now_ms()
            meta.cancel_source = "31"
            self._push_order(order)
        else:
            self.engine.submit(order)
        return [{"clOrdId": cid, "ordId": str(order.order_id), "tag": "", "ts": str(now_ms()),
                 "sCode": "0", "sMsg": "Order placed", "subCode": ""}]

    def _new(self, a: dict, exp) -> tuple[Order, Meta]:
        spec = self._spec(a)
        self._expired(exp)
        inst = spec.inst
        td = a.get("tdMode")
        if td not in (("cash",) if spec.kind == "SPOT" else ("cross", "isolated")):
            raise param("tdMode")
        side = a.get("side")
        if side not in ("buy", "sell"):
            raise param("side")
        ord_type = a.get("ordType")
        if ord_type not in ORD_TYPES:
            raise param("ordType")
        cid = str(a.get("clOrdId") or "")
        if cid and not _CID.match(cid):
            raise param("clOrdId")
        if spec.kind == "SPOT" and ord_type == "market" and (a.get("tgtCcy") or ("quote_ccy" if side == "buy"
                                                                               else "base_ccy")) != "base_ccy":
            raise param("tgtCcy")       # quote-sized market orders are not modelled
        try:
            qty = spec.base(str(a.get("sz", "")))
        except ValueError:
            raise param("sz") from None
        if qty <= 0:
            raise param("sz")
        if qty % (inst.lot * spec.step if spec.kind == "SPOT" else spec.step):
            raise Reject("51121", "Order quantity must be a multiple of the lot size.")
        price = 0
        if ord_type != "market":
            try:
                price = parse(str(a.get("px", "")), inst.price_decimals)
            except ValueError:
                raise param("px") from None
            if price <= 0 or price % inst.tick:
                raise param("px")
        elif "px" in a and a["px"] not in ("", None):
            raise param("px")
        book = self.venue.feeds[inst.canonical].driver.book
        bid, ask = book.best(BID), book.best(ASK)
        mid = (bid + ask) // 2 if bid and ask else (bid or ask or inst.start_price)
        if side == "buy" and price and price * 2 > mid * 3:
            raise Reject("51137", f"The highest price limit for buy orders is {fmt(mid * 3 // 2, inst.price_decimals)}")
        if side == "sell" and price and price * 2 < mid:
            raise Reject("51138", f"The lowest price limit for sell orders is {fmt(mid // 2, inst.price_decimals)}")
        if cid and (spec.inst_id, cid) in self.by_cid and self.by_cid[spec.inst_id, cid].is_open:
            raise Reject("51016", "Duplicated clOrdId")
        s = BID if side == "buy" else ASK
        reduce_only = self._reduce_only(a, spec, s)
        if spec.kind == "SPOT":
            try:
                self.account.check_funds(inst, s, qty, price or (ask if s == BID else bid) or mid)
            except InsufficientFunds as e:
                raise Reject("51008", f"Order failed. Insufficient {e.ccy} balance in account.") from None
        order = Order(self.engine.new_order_id(), cid, inst, s, "MARKET" if ord_type == "market" else "LIMIT",
                      TIF[ord_type], qty, price, now_ms())
        return order, Meta(spec, ord_type, reduce_only=reduce_only)

    def _reduce_only(self, a: dict, spec: Spec, side: int) -> bool:
        """`reduceOnly` of a place request (boolean; net-mode swaps only here): refused when
        there is no position (51169) or the order goes its way (51170), as OKX does."""
        v = a.get("reduceOnly")
        if v in ("", None):       # absent, or empty as python-okx sends an unset one
            v = False
        elif v in ("true", "false"):
            v = v == "true"
        if not isinstance(v, bool) or v and spec.kind == "SPOT":
            raise param("reduceOnly")
        if not v:
            return False
        pos = self.account.positions.get(spec.inst_id)
        if pos is None or pos.qty == 0:
            raise Reject("51169", "Order failed because you don't have any positions in this direction for this "
                                  "contract to reduce or close.")
        if (pos.qty > 0) == (side == BID):
            raise Reject("51170", "Failed to place order. A reduce-only order can't be the same trade direction "
                                  "as your existing positions.")
        return True

    def _crosses(self, o: Order) -> bool:
        book = self.venue.feeds[o.inst.canonical].driver.book
        best = book.best(ASK if o.side == BID else BID)
        return best is not None and (o.price >= best if o.side == BID else o.price <= best)

    def _find(self, a: dict, spec: Spec) -> Order | None:
        if a.get("ordId"):
            try:
                o = self.engine.orders.get(int(a["ordId"]))
            except ValueError:
                raise param("ordId") from None
            return o if o is not None and self.meta[o.order_id].spec is spec else None
        if a.get("clOrdId"):
            return self.by_cid.get((spec.inst_id, str(a["clOrdId"])))
        raise Reject("51000", "Parameter ordId or clOrdId error", 400, True)

    def cancel(self, a: dict, exp=None) -> list:
        spec = self._spec(a)
        o = self._find(a, spec)
        if o is None or not o.is_open:
            raise Reject("51400", "Order cancellation failed as the order has been filled, canceled or does "
                                  "not exist.")
        self.meta[o.order_id].cancel_source = "1"
        self.engine.cancel(o, "")
        return [{"clOrdId": o.client_order_id, "ordId": str(o.order_id), "ts": str(now_ms()), "sCode": "0",
                 "sMsg": ""}]

    def amend(self, a: dict, exp=None) -> list:
        spec = self._spec(a)
        self._expired(exp)
        o = self._find(a, spec)
        if o is None or not o.is_open:
            raise Reject("51503", "Order modification failed as the order has been filled, canceled or does "
                                  "not exist.")
        qty, price = o.qty, o.price
        if a.get("newSz") not in (None, ""):
            try:
                qty = spec.base(str(a["newSz"]))
            except ValueError:
                raise param("newSz") from None
            if qty <= o.executed or qty % spec.step:
                raise param("newSz")
        if a.get("newPx") not in (None, ""):
            try:
                price = parse(str(a["newPx"]), o.inst.price_decimals)
            except ValueError:
                raise param("newPx") from None
            if price <= 0 or price % o.inst.tick or o.type != "LIMIT":
                raise param("newPx")
        if (qty, price) == (o.qty, o.price):
            raise Reject("51000", "Parameter newSz or newPx error", 400, True)
        req = str(a.get("reqId") or "")
        meta = self.meta[o.order_id]
        meta.req_id, meta.amend_result = req, "0"
        try:
            self.engine.amend(o, qty, price)
        finally:
            meta.req_id, meta.amend_result = "", ""
        return [{"clOrdId": o.client_order_id, "ordId": str(o.order_id), "reqId": req, "ts": str(now_ms()),
                 "sCode": "0", "sMsg": ""}]

    def get_order(self, a: dict, exp=None) -> list:
        spec = self._spec(a)
        o = self._find(a, spec)
        if o is None:
            raise Reject("51603", "Order does not exist", 200, True)
        return [self.order_json(o)]

    def pending(self, a: dict, exp=None) -> list:
        kind, inst_id = a.get("instType"), a.get("instId")
        try:
            after = int(a["after"]) if a.get("after") else None
            limit = min(100, int(a.get("limit") or 100))
        except ValueError:
            raise param("after") from None
        out = []
        for o in sorted(self.engine.open_orders(), key=lambda x: -x.order_id):
            m = self.meta[o.order_id]
            if (kind and m.spec.kind != kind) or (inst_id and m.spec.inst_id != inst_id) or \
                    (after is not None and o.order_id >= after):
                continue
            out.append(self.order_json(o))
            if len(out) == limit:
                break
        return out

    # -- reports ----------------------------------------------------------------------
    def _on_exec(self, ev: ExecEvent) -> None:
        o, m = ev.order, self.meta.get(ev.order.order_id)
        if m is None:
            return
        if ev.x == "TRADE":
            self.account.settle(o, ev.last_qty, ev.last_price)
        elif ev.x == "EXPIRED":
            m.cancel_source = {"IOC": "14", "FOK": "13"}.get(o.tif, "0") if o.type == "LIMIT" else "0"
        self._push_order(o, ev)

    def _push_order(self, o: Order, ev: ExecEvent | None = None) -> None:
        d = self.order_json(o, ev)
        self.private.push_order(self.meta[o.order_id].spec, d)

    def order_json(self, o: Order, ev: ExecEvent | None = None) -> dict:
        """An order as OKX states it (REST: last fill; a push: this event's fill)."""
        m = self.meta[o.order_id]
        spec, i = m.spec, o.inst
        state = {"NEW": "live", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
                 "CANCELED": "canceled", "EXPIRED": "canceled"}[o.status]
        fill = (ev.trade_id, ev.last_price, ev.last_qty) if ev is not None and ev.x == "TRADE" else \
            (o.fills[-1] if o.fills and ev is None else None)
        avg = dec(Fraction(o.quote, o.executed * 10 ** i.price_decimals), i.price_decimals + 4) \
            if o.executed else "0"
        return {"instType": spec.kind, "instId": spec.inst_id, "tgtCcy": "base_ccy" if o.type == "MARKET" and
                spec.kind == "SPOT" else "", "ccy": "", "ordId": str(o.order_id), "clOrdId": o.client_order_id,
                "tag": "", "px": fmt(o.price, i.price_decimals) if o.price else "", "sz": spec.sz(o.qty),
                "pnl": "0", "ordType": m.ord_type, "side": "buy" if o.side == BID else "sell",
                "posSide": "net" if spec.kind == "SWAP" else "", "tdMode": "cash" if spec.kind == "SPOT" else "cross",
                "accFillSz": spec.sz(o.executed), "fillPx": fmt(fill[1], i.price_decimals) if fill else "",
                "tradeId": str(fill[0]) if fill else "", "fillSz": spec.sz(fill[2]) if fill else "",
                "fillTime": str(o.updated_ms) if fill else "", "fillFee": "0" if fill else "",
                "fillFeeCcy": (i.base if o.side == BID and spec.kind == "SPOT" else i.quote) if fill else "",
                "execType": ("M" if ev.maker else "T") if fill and ev is not None else "",
                "avgPx": avg, "state": state, "lever": "" if spec.kind == "SPOT" else "10", "fee": "0",
                "feeCcy": i.quote, "rebate": "0", "rebateCcy": i.quote, "category": "normal",
                "cancelSource": m.cancel_source if state == "canceled" else "", "amendSource": "",
                "reqId": m.req_id, "amendResult": m.amend_result, "code": "0", "msg": "",
                "reduceOnly": "true" if m.reduce_only else "false", "source": "", "uTime": str(o.updated_ms),
                "cTime": str(o.created_ms)}

