"""Binance spot and USD-M futures market data, in the venues' own wire format.

Spot (`binance-spot`, REST under /api/v3):
  GET /api/v3/ping, /api/v3/time, /api/v3/exchangeInfo[?symbol=|?symbols=[..]],
  GET /api/v3/depth?symbol=&limit=  -> {"lastUpdateId", "bids", "asks"}
  WS  /stream?streams=a/b (combined: {"stream":..,"data":..}), /ws/<stream>[/<stream>..]
      and /ws (raw), with live {"method":"SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS"}.
  Streams: <sym>@depth@100ms and <sym>@depth (diffs, U == previous u + 1),
  <sym>@trade, <sym>@aggTrade, <sym>@bookTicker (with update id "u").
  Strings carry 8 decimals, as on Binance spot ("0.35130000").
  `serverShutdown` (fault `server_shutdown_streams`): {"e":"serverShutdown","E":..} to every
  market-data socket ({"stream":"!serverShutdown","data":..} on combined ones), which
  are closed `seconds` later (Binance spot, since 2026-05-08).
COIN-M (`binance-coinm`, REST under /dapi/v1, symbols "BTCUSD_PERP"): USD-M's shapes
  on one connection (not split), without "nq".
USD-M (`binance-usdm`, REST under /fapi/v1): the same, with depth carrying "E"/"T",
  diffs carrying "pu" (= previous u; U jumps), trade/aggTrade/bookTicker in the
  futures shapes (aggTrade with "nq", the quantity without RPI orders, and no "M"),
  and strings at the instrument's own precision ("7.6110"). Market streams are split
  by category as on Binance since 2026-04-23: /public/stream, /public/ws carry depth
  and bookTicker, /market/stream, /market/ws carry aggTrade and trade; a stream of
  the other category is accepted and silently never sent. The retired URLs
  (/stream, /ws without a category) answer as Binance's do now: as /public (books
  flow, trades never arrive). `stall` takes `category` ("public" | "market") here.

A diff message is published for every market step that changed the book
(whatever the rate, the stream keeps its @100ms name). A REST snapshot is
consistent with the diffs: spot lastUpdateId is the last published u; futures
lastUpdateId is the U of the next diff, so `U <= lastUpdateId <= u` holds.

A quoted spot diff, for the shape: {"e":"depthUpdate","E":1633998512068,
"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"]],"a":[]}
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from typing import Any, Callable

import orjson
from aiohttp import web

from .book import ASK, BID, rewind
from .control import reply
from .faults import ORDER_FAULTS, DiffRouter, FaultBox, FaultError, normalize
from .hub import Client, Hub
from .instruments import Instrument, fmt
from .market import BookDriver, Trade

SPOT, USDM, COINM = "binance-spot", "binance-usdm", "binance-coinm"
PREFIX = {SPOT: "/api/v3", USDM: "/fapi/v1", COINM: "/dapi/v1"}
_HISTORY = 4096          # diffs kept for stale snapshots
# USD-M stream categories (the channel after "@" -> the routed path that carries it)
CATEGORY = {"depth": "public", "depth@100ms": "public", "bookTicker": "public",
            "aggTrade": "market", "trade": "market", "markPrice": "market"}


def category_of(stream: str) -> str:
    """The USD-M category of a stream name ("btcusdt@aggTrade" -> "market")."""
    return CATEGORY.get(stream.partition("@")[2], "market")


def now_ms() -> int:
    """Return wall-clock milliseconds, the venues' timestamp unit."""
    return time.time_ns() // 1_000_000


def error(code: int, msg: str, status: int = 400) -> web.Response:
    """Return a Binance error body, e.g. {"code":-1121,"msg":"Invalid symbol."}."""
    return reply({"code": code, "msg": msg}, status)


def wrap_combined(stream: str, raw: bytes) -> bytes:
    """Wrap a raw payload as a combined-stream frame."""
    return b'{"stream":"' + stream.encode() + b'","data":' + raw + b"}"


class Feed:
    """Update ids, history and top of book of one symbol on one Binance venue."""

    def __init__(self, venue: str, inst: Instrument, driver: BookDriver | None, sym: str):
        self.inst = inst
        self.driver = driver
        self.sym = sym
        self.lower = sym.lower()
        self.ids = random.Random(f"meltica-sim/ids/{venue}/{inst.canonical}")
        self.last_u = self.ids.randrange(10**8, 10**9)
        self.history: deque[tuple[int, list]] = deque(maxlen=_HISTORY)  # (u before, changes)
        self.reserved = False        # futures: a snapshot promised the next U
        self.top: tuple | None = None
        self.agg_id = self.ids.randrange(10**6, 10**7)
        self.diffs = 0


class BinanceVenue:
    """One Binance market (spot or USD-M) served by one aiohttp app."""

    def __init__(self, name: str, instruments: list[Instrument],
                 drivers: dict[str, BookDriver] | None, replay: Any = None):
        if name not in PREFIX:
            raise ValueError(f"not a Binance venue: name={name!r}")
        self.name = name
        self.futures = name != SPOT
        self.split = name == USDM        # market streams routed by category (/public, /market)
        self.prefix = PREFIX[name]
        self.instruments = instruments
        self.replay = replay
        self.symbol_of = {i.canonical: symbol_of(name, i) for i in instruments}
        self.feeds = {self.symbol_of[i.canonical]: Feed(name, i, drivers[i.canonical] if drivers else None,
                                                        self.symbol_of[i.canonical])
                      for i in instruments}
        self._keys = {k: sym for sym in self.feeds for k in (sym, sym.replace("_", ""))}
        self._keys.update({i.canonical.replace("-", ""): self.symbol_of[i.canonical] for i in instruments})
        self.faults = FaultBox()
        self.router = DiffRouter(self.faults)
        self.hub = Hub(name, wrap_combined)
        self.userstream: Any = None      # set by the order API (spot only)
        self.orders: Any = None
        self.rest_requests = 0
        self._px: Callable[[Instrument, int], str]
        self._qty: Callable[[Instrument, int], str]
        if self.futures:   # the instrument's own precision: "7.6110"
            self._px = lambda i, m: fmt(m, i.price_decimals, i.price_decimals)
            self._qty = lambda i, m: fmt(m, i.qty_decimals, i.qty_decimals)
        else:              # spot pads to 8 decimals: "0.35130000"
            self._px = lambda i, m: fmt(m, i.price_decimals, 8)
            self._qty = lambda i, m: fmt(m, i.qty_decimals, 8)
        self.app = web.Application()
        self.app.on_shutdown.append(self.hub.shutdown)
        add = self.app.router
        add.add_get(self.prefix + "/ping", self._ping)
        add.add_get(self.prefix + "/time", self._time)
        add.add_get(self.prefix + "/exchangeInfo", self._exchange_info)
        add.add_get(self.prefix + "/depth", self._depth)
        add.add_get("/stream", self._ws_combined)
        add.add_get("/ws", self._ws_raw)
        add.add_get("/ws/{path:.+}", self._ws_raw)
        if self.split:        # the routed paths; the ones above are the retired URLs
            for cat in ("public", "market"):
                add.add_get(f"/{cat}/stream", routed(self._ws_combined, cat))
                add.add_get(f"/{cat}/ws", routed(self._ws_raw, cat))
                add.add_get(f"/{cat}/ws/{{path:.+}}", routed(self._ws_raw, cat))

    # -- faults and stats ---------------------------------------------------
    @property
    def supported_faults(self) -> set[str]:
        """Return the fault names this venue accepts."""
        names = {"gap", "duplicate", "reorder", "malformed", "stall", "disconnect"}
        if not self.futures:
            names.add("server_shutdown_streams")
        if self.replay is None:
            names.add("stale_snapshot")
        if self.orders is not None:
            names |= ORDER_FAULTS | getattr(self.orders, "extra_faults", frozenset())
        return names

    def resolve_key(self, name: str) -> str | None:
        """Map a user-given symbol to this venue's symbol."""
        return self._keys.get(name.upper().replace("-", ""))

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm or apply a fault; raise FaultError for a bad request."""
        spec = normalize(spec, self.supported_faults, self.resolve_key)
        if spec.get("category") and not self.split:
            raise FaultError(f"stall.category is for binance-usdm only: category={spec['category']!r}")
        if spec["fault"] == "server_shutdown_streams":
            self.faults.count_injected("server_shutdown_streams")
            self.faults.count_applied("server_shutdown_streams", self._server_shutdown(spec["seconds"]))
            return spec
        us = self.userstream
        if us is None or not us.apply_fault(spec):
            self.faults.apply(spec, self.hub)
        return spec

    def _server_shutdown(self, seconds: float) -> int:
        """Send serverShutdown on every market-data socket; close them `seconds` later."""
        raw = orjson.dumps({"e": "serverShutdown", "E": now_ms()})
        loop = asyncio.get_running_loop()
        clients = list(self.hub.clients)
        for client in clients:
            client.push(None, wrap_combined("!serverShutdown", raw) if client.wrap else raw)
            loop.call_later(seconds, self.hub.close, client, False)
        return len(clients)

    def clear_faults(self) -> int:
        """Disarm all pending faults."""
        return self.faults.clear()

    def stats(self) -> dict[str, Any]:
        """Return this venue's counters."""
        out = {"venue": self.name, "mode": "replay" if self.replay else "synthetic",
               "rest_requests": self.rest_requests, "faults": self.faults.stats(),
               **self.hub.stats(),
               "symbols": {s: {"last_update_id": f.last_u, "diffs": f.diffs}
                           for s, f in self.feeds.items()}}
        if self.orders is not None:
            out["orders"] = self.orders.stats()
        if self.replay is not None:
            out["replay"] = self.replay.stats()
        return out

    # -- publishing (synthetic) ---------------------------------------------
    def on_step(self, canonical: str, trades: list[Trade]) -> None:
        """Publish what one market step did to one symbol."""
        inst = self.instruments_by_name[canonical]
        feed = self.feeds[self.symbol_of[canonical]]
        if self.orders is not None and trades:
            self.orders.on_market_trades(inst, trades)
        self.publish(feed, trades)

    @property
    def instruments_by_name(self) -> dict[str, Instrument]:
        """Return instruments keyed by canonical name."""
        cached = getattr(self, "_by_name", None)
        if cached is None:
            cached = self._by_name = {i.canonical: i for i in self.instruments}
        return cached

    def publish(self, feed: Feed, trades: list[Trade]) -> None:
        """Send trades, the pending book diff and a changed top of book."""
        hub, inst, E = self.hub, feed.inst, now_ms()
        if trades:
            self._publish_trades(feed, trades, E)
        changes = feed.driver.book.flush()
        if changes:
            self._publish_diff(feed, changes, E)
        book = feed.driver.book
        bid, ask = book.best(BID), book.best(ASK)
        top = (bid, book.total[BID].get(bid), ask, book.total[ASK].get(ask))
        if top != feed.top and bid is not None and ask is not None:
            feed.top = top
            stream = feed.lower + "@bookTicker"
            if hub.has(stream):
                px, qty = self._px, self._qty
                data: dict[str, Any] = {"u": feed.last_u, "s": feed.sym,
                                        "b": px(inst, bid), "B": qty(inst, top[1]),
                                        "a": px(inst, ask), "A": qty(inst, top[3])}
                if self.futures:
                    data = {"e": "bookTicker", **data, "T": E, "E": E}
                hub.publish(stream, feed.sym, orjson.dumps(data), "bookTicker")

    def _publish_diff(self, feed: Feed, changes: list, E: int) -> None:
        inst, px, qty = feed.inst, self._px, self._qty
        n = len(changes)
        prev = feed.last_u
        if self.futures:
            U = prev + 1 if feed.reserved else prev + 1 + feed.ids.randrange(40)
            u = U + n - 1 + feed.ids.randrange(4)
            feed.reserved = False
        else:
            U, u = prev + 1, prev + n
        feed.last_u = u
        feed.history.appendleft((prev, changes))
        feed.diffs += 1
        bids = sorted((c for c in changes if c[0] == BID), key=lambda c: -c[1])
        asks = sorted((c for c in changes if c[0] == ASK), key=lambda c: c[1])
        b = [[px(inst, c[1]), qty(inst, c[3])] for c in bids]
        a = [[px(inst, c[1]), qty(inst, c[3])] for c in asks]
        if self.futures:
            data = {"e": "depthUpdate", "E": E, "T": E, "s": feed.sym,
                    "U": U, "u": u, "pu": prev, "b": b, "a": a}
        else:
            data = {"e": "depthUpdate", "E": E, "s": feed.sym, "U": U, "u": u, "b": b, "a": a}
        if not (self.hub.has(feed.lower + "@depth@100ms") or self.hub.has(feed.lower + "@depth")):
            return
        self.router.route(feed.sym, orjson.dumps(data),
                          lambda frame: self.emit_diff(feed.lower, feed.sym, frame),
                          lambda kind: self.bad_frame(feed.sym, kind))

    def emit_diff(self, lower: str, sym: str, frame: bytes) -> None:
        """Fan a diff frame out to both depth stream names."""
        self.hub.publish(lower + "@depth@100ms", sym, frame, "depthUpdate")
        self.hub.publish(lower + "@depth", sym, frame, "depthUpdate")

    def bad_frame(self, sym: str, kind: str) -> bytes:
        """Build a malformed depth frame: cut JSON, or JSON of the wrong shape."""
        if kind == "json":
            return b'{"e":"depthUpdate","E":' + str(now_ms()).encode() + b',"s":"' + sym.encode() + b'","U":'
        return orjson.dumps({"e": "depthUpdate", "s": sym, "U": "not-a-number", "b": {"x": 1}})

    def _publish_trades(self, feed: Feed, trades: list[Trade], E: int) -> None:
        hub, inst, px, qty = self.hub, feed.inst, self._px, self._qty
        t_stream, a_stream = feed.lower + "@trade", feed.lower + "@aggTrade"
        if hub.has(t_stream):
            for t in trades:
                if self.futures:
                    data = {"e": "trade", "E": E, "T": E, "s": feed.sym, "t": t.trade_id,
                            "p": px(inst, t.price), "q": qty(inst, t.qty), "X": "MARKET",
                            "m": t.taker_side == ASK}
                else:
                    data = {"e": "trade", "E": E, "s": feed.sym, "t": t.trade_id,
                            "p": px(inst, t.price), "q": qty(inst, t.qty), "T": E,
                            "m": t.taker_side == ASK, "M": True}
                hub.publish(t_stream, feed.sym, orjson.dumps(data), "trade")
        groups: list[list[Trade]] = []
        for t in trades:
            if groups and groups[-1][0].group == t.group and groups[-1][0].price == t.price:
                groups[-1].append(t)
            else:
                groups.append([t])
        for g in groups:
            feed.agg_id += 1
            if not hub.has(a_stream):
                continue
            q = qty(inst, sum(t.qty for t in g))
            data = {"e": "aggTrade", "E": E, "s": feed.sym, "a": feed.agg_id,
                    "p": px(inst, g[0].price), "q": q}
            if self.split:        # USD-M: "nq", the quantity without RPI orders (none here)
                data["nq"] = q
            data.update({"f": g[0].trade_id, "l": g[-1].trade_id, "T": E,
                         "m": g[0].taker_side == ASK})
            if not self.futures:
                data["M"] = True
            hub.publish(a_stream, feed.sym, orjson.dumps(data), "aggTrade")

    # -- REST ---------------------------------------------------------------
    async def _ping(self, _request: web.Request) -> web.Response:
        self.rest_requests += 1
        return reply({})

    async def _time(self, _request: web.Request) -> web.Response:
        self.rest_requests += 1
        return reply({"serverTime": now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.rest_requests += 1
        wanted = None
        if "symbol" in request.query:
            wanted = [request.query["symbol"]]
        elif "symbols" in request.query:
            try:
                wanted = orjson.loads(request.query["symbols"])
            except orjson.JSONDecodeError:
                return error(-1100, "Illegal characters found in parameter 'symbols'.")
        insts = self.instruments
        if wanted is not None:
            if not isinstance(wanted, list) or any(w not in self.feeds for w in wanted):
                return error(-1121, "Invalid symbol.")
            insts = [self.feeds[w].inst for w in wanted]
        body: dict[str, Any] = {"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [],
                                "exchangeFilters": []}
        if self.futures:
            body["futuresType"] = "COIN_MARGINED" if self.name == COINM else "U_MARGINED"
            body["symbols"] = [self._futures_symbol(i) for i in insts]
        else:
            body["symbols"] = [self._spot_symbol(i) for i in insts]
        return reply(body)

    def _spot_symbol(self, i: Instrument) -> dict[str, Any]:
        return {
            "symbol": i.binance_symbol, "status": "TRADING",
            "baseAsset": i.base, "baseAssetPrecision": 8,
            "quoteAsset": i.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": False, "allowTrailingStop": False,
            "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": i.tick_str(8),
                 "maxPrice": fmt(max_price(i), i.price_decimals, 8), "tickSize": i.tick_str(8)},
                {"filterType": "LOT_SIZE", "minQty": fmt(i.min_qty, i.qty_decimals, 8),
                 "maxQty": fmt(max_qty(i), i.qty_decimals, 8), "stepSize": i.lot_str(8)},
                {"filterType": "NOTIONAL", "minNotional": fmt(i.min_notional, 0, 8),
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
        }

    def _futures_symbol(self, i: Instrument) -> dict[str, Any]:
        pd, qd = i.price_decimals, i.qty_decimals
        return {
            "symbol": self.symbol_of[i.canonical], "pair": self.symbol_of[i.canonical].split("_")[0],
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "baseAsset": i.base, "quoteAsset": "USD" if self.name == COINM else i.quote,
            "marginAsset": i.base if self.name == COINM else i.quote,
            "pricePrecision": pd, "quantityPrecision": qd,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": i.tick_str(pd),
                 "maxPrice": fmt(max_price(i), pd, pd), "tickSize": i.tick_str(pd)},
                {"filterType": "LOT_SIZE", "minQty": fmt(i.min_qty, qd, qd),
                 "maxQty": fmt(max_qty(i), qd, qd), "stepSize": i.lot_str(qd)},
                {"filterType": "MIN_NOTIONAL", "notional": str(i.min_notional)},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK"],
        }

    async def _depth(self, request: web.Request) -> web.Response:
        self.rest_requests += 1
        sym = request.query.get("symbol", "")
        if not sym:
            return error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        feed = self.feeds.get(sym)
        if feed is None:
            return error(-1121, "Invalid symbol.")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        limit = max(1, min(limit, 5000 if not self.futures else 1000))
        if self.replay is not None:
            payload = self.replay.depth(sym)
            if payload is None:
                return error(-1121, "Invalid symbol.")
            return web.Response(body=payload, content_type="application/json")
        inst, book = feed.inst, feed.driver.book
        stale = self.faults.take("stale_snapshot", sym)
        if stale is not None:
            undo = list(feed.history)[: stale.params["lag"]]
            bids_map, asks_map = rewind(book, (c for _u, c in undo))
            last = undo[-1][0] if undo else feed.last_u
            bids = sorted(bids_map.items(), reverse=True)[:limit]
            asks = sorted(asks_map.items())[:limit]
        else:
            bids, asks = book.top(BID, limit), book.top(ASK, limit)
            last = feed.last_u
            if self.futures:
                last += 1
                feed.reserved = True
        px, qty = self._px, self._qty
        body: dict[str, Any] = {"lastUpdateId": last}
        if self.futures:
            E = now_ms()
            body["E"], body["T"] = E, E
        body["bids"] = [[px(inst, p), qty(inst, q)] for p, q in bids]
        body["asks"] = [[px(inst, p), qty(inst, q)] for p, q in asks]
        return reply(body)

    # -- WebSocket ----------------------------------------------------------
    async def _ws_combined(self, request: web.Request, category: str = "") -> web.WebSocketResponse:
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        return await self.hub.serve(request, True, self._on_text,
                                    lambda c: self._open(c, category, streams))

    async def _ws_raw(self, request: web.Request, category: str = "") -> web.StreamResponse:
        path = request.match_info.get("path", "")
        streams = [s for s in path.split("/") if s]
        return await self.hub.serve(request, False, self._on_text,
                                    lambda c: self._open(c, category, streams))

    def _open(self, client: Client, category: str, streams: list[str]) -> None:
        if self.split:        # a retired URL (no category) gets the /public streams only
            client.state["category"] = category or "public"
        self._subscribe(client, streams)

    def _subscribe(self, client: Client, streams: list[str]) -> None:
        category = client.state.get("category")
        for stream in streams:
            stream = normalize_stream(stream)
            if category is not None and category_of(stream) != category:
                continue      # accepted, never sent: Binance's routed paths fail silently
            self.hub.subscribe(client, stream)
        if self.replay is not None and client.streams:
            self.replay.start(client, self)

    def _on_text(self, client: Client, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            client.push(None, orjson.dumps({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}}))
            return
        if not isinstance(msg, dict):
            client.push(None, orjson.dumps(
                {"error": {"code": 2, "msg": "Invalid request: expected an object"}}))
            return
        rid = msg.get("id")
        if not (rid is None or (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0)
                or (isinstance(rid, str) and len(rid) <= 36)):
            client.push(None, orjson.dumps({"error": {"code": 2, "msg": (
                "Invalid request: request ID must be an unsigned integer")}, "id": None}))
            return
        method, params = msg.get("method"), msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                client.push(None, orjson.dumps({"error": {"code": 2, "msg": (
                    "Invalid request: params must be an array of strings")}, "id": rid}))
                return
            client.push(None, orjson.dumps({"result": None, "id": rid}))
            if method == "SUBSCRIBE":
                self._subscribe(client, params)
            else:
                for p in params:
                    self.hub.unsubscribe(client, normalize_stream(p))
        elif method == "LIST_SUBSCRIPTIONS":
            client.push(None, orjson.dumps({"result": sorted(client.streams), "id": rid}))
        else:
            client.push(None, orjson.dumps({"error": {"code": 2, "msg": (
                f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
                "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`")},
                "id": rid}))


def symbol_of(venue: str, inst: Instrument) -> str:
    """The venue symbol: "BTCUSDT" on spot and USD-M, "BTCUSD_PERP" on COIN-M (USD-quoted)."""
    return f"{inst.base}USD_PERP" if venue == COINM else inst.binance_symbol


def routed(handler, category: str):
    """An aiohttp handler calling `handler(request, category)`."""
    async def route(request: web.Request) -> web.StreamResponse:
        return await handler(request, category)
    return route


def normalize_stream(stream: str) -> str:
    """Lower-case the symbol part of a stream name: "BTCUSDT@trade" -> "btcusdt@trade"."""
    sym, at, rest = stream.partition("@")
    return sym.lower() + at + rest


def max_price(i: Instrument) -> int:
    """Return the PRICE_FILTER maxPrice mantissa (1000x the start price)."""
    return i.start_price * 1000


def max_qty(i: Instrument) -> int:
    """Return the LOT_SIZE maxQty mantissa (a million median levels)."""
    return i.level_lots * i.lot * 1_000_000
