"""OKX v5 public market data, in OKX's own wire format as OKX documents it today (2026-12).

  REST GET /api/v5/public/instruments?instType=SPOT[&instId=]  (tickSz, lotSz, minSz)
       GET /api/v5/public/time
       GET /api/v5/market/books?instId=&sz=   (sz 1..400, default 1) ->
           {"code":"0","msg":"","data":[{"asks":[..],"bids":[..],"ts":"<ms>","seqId":S}]}
  WS   /ws/v5/public: text "ping" -> "pong"; {"op":"subscribe"|"unsubscribe","args":[
       {"channel":"books"|"trades"|"tickers","instId":"BTC-USDT"}]} answered per arg
       by {"event":"subscribe","arg":{..},"connId":".."}; bad requests by
       {"event":"error","code":"60012"|"60018","msg":..,"connId":..}.
  books: one "update" per market step that changed the book, chained by
       `seqId`/`prevSeqId`; `checksum` 0 (OKX since 2026-06-23) and no initial
       snapshot (OKX's delisting, production August 2026): clients take the book
       from REST. A keep-alive ("asks": [], "bids": [], prevSeqId == seqId) when a
       book has not changed for `keepalive_s`. Levels are [px, sz, "0", orderCount];
       numbers are sent without trailing zeros, as OKX does ("30316", "0.0012").
  trades: one message per match; tickers: on subscribe and whenever the top of
       book or the last trade changed.

Options (constructor, `python -m simulator --okx-*`, or POST /_sim/okx {..}):
  ws_snapshot   fraction of connections that still get the old WS snapshot on
                subscribe (prevSeqId -1), as captures of August 2026 showed; 0 default
  checksum      true: the old form, every books message carries the CRC32 of the top
                25 levels (the `checksum` fault sends a wrong non-zero one either way)
  keepalive_s   seconds without a book change before a keep-alive (default 5)
Faults beyond the common ones: `seq_reset` (maintenance: the next update of the
instrument restarts its seqId lower, prevSeqId still the last one). Replay mode sends
the recording as it was (2022: WS snapshots and checksums) and has no REST books.
Counters in /_sim/stats: `ws_ops` (subscribe / unsubscribe requests) and
`books_requests` per instId.

A quoted update (docs, WS / Order book channel), for the shape: {"arg":{"channel":
"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0",
"13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","checksum":0,
"prevSeqId":123456,"seqId":123457}]}
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections import deque
from typing import Any, Sequence

import orjson
from aiohttp import web

from .binance import now_ms
from .book import ASK, BID, rewind
from .control import read_json, reply
from .faults import ORDER_FAULTS, DiffRouter, FaultBox, FaultError, normalize
from .hub import Client, Hub
from .instruments import Instrument, fmt, format_decimal, resolve
from .market import BookDriver, Trade

NAME = "okx"
CHANNELS = ("books", "trades", "tickers")
_HISTORY = 4096


def checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """Return OKX's book checksum: signed CRC32 of bid1px:bid1sz:ask1px:ask1sz:...

    Uses the top 25 levels per side, best first, strings exactly as sent; when
    one side is shorter its missing entries are skipped.
    """
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += (bids[i][0], bids[i][1])
        if i < len(asks):
            parts += (asks[i][0], asks[i][1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class Feed:
    """Sequence ids, history, top of book and 24h stats of one instId."""

    def __init__(self, inst: Instrument, driver: BookDriver | None):
        self.inst = inst
        self.driver = driver
        self.ids = random.Random(f"meltica-sim/ids/okx/{inst.canonical}")
        self.seq = self.ids.randrange(10**9, 10**10)
        self.history: deque[tuple[int, list]] = deque(maxlen=_HISTORY)  # (seq before, changes)
        self.top: tuple | None = None
        self.open = inst.start_price
        self.high = self.low = inst.start_price
        self.last: tuple[int, int] | None = None
        self.vol = 0            # qty mantissa
        self.vol_ccy = 0        # price * qty, at price+qty decimals
        self.updates = 0
        self.pushed = time.monotonic()   # last books message (keep-alive timing)


class OkxVenue:
    """OKX spot market data served by one aiohttp app."""

    def __init__(self, instruments: list[Instrument], drivers: dict[str, BookDriver] | None,
                 replay: Any = None, *, ws_snapshot: float = 0.0, checksum: bool = False,
                 keepalive_s: float = 5.0, api_key: str = "meltica-sim-key",
                 api_secret: str = "meltica-sim-secret"):
        self.name = NAME
        self.options: dict[str, Any] = {}
        self.set_options({"ws_snapshot": ws_snapshot, "checksum": checksum, "keepalive_s": keepalive_s})
        self._snapshot_rng = random.Random("meltica-sim/okx/ws-snapshot")
        self.ws_ops = {"subscribe": 0, "unsubscribe": 0}
        self.books_requests: dict[str, int] = {}
        self.instruments = instruments
        self.by_name = {i.canonical: i for i in instruments}
        self.replay = replay
        self.feeds = {i.canonical: Feed(i, drivers[i.canonical] if drivers else None)
                      for i in instruments}
        self.faults = FaultBox()
        self.router = DiffRouter(self.faults)
        self.hub = Hub(NAME)
        self.rest_requests = 0
        self.orders: Any = None          # the order API (okx_orders.py), synthetic mode only
        self.app = web.Application()
        self.app.on_shutdown.append(self.hub.shutdown)
        if replay is None:
            self.app.cleanup_ctx.append(self._keepalives)
        self.app.router.add_get("/api/v5/public/instruments", self._instruments)
        self.app.router.add_get("/api/v5/public/time", self._time)
        self.app.router.add_get("/api/v5/market/books", self._books)
        self.app.router.add_post("/_sim/okx", self._options)
        self.app.router.add_get("/ws/v5/public", self._ws)
        if replay is None:
            from .okx_orders import OkxOrders
            OkxOrders(self, api_key, api_secret)

    # -- faults and stats ---------------------------------------------------
    @property
    def supported_faults(self) -> set[str]:
        """Return the fault names this venue accepts."""
        names = {"gap", "duplicate", "reorder", "malformed", "checksum", "stall", "disconnect"}
        if self.replay is None:
            names.add("seq_reset")
        if self.replay is None:
            names.add("stale_snapshot")
        if self.orders is not None:
            names |= ORDER_FAULTS | {"reorder_report"}
        return names

    def resolve_key(self, name: str) -> str | None:
        """Map a user-given symbol to an instId."""
        inst = resolve(self.by_name, name)
        return inst.canonical if inst else None

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm or apply a fault; raise FaultError for a bad request."""
        spec = normalize(spec, self.supported_faults, self.resolve_key)
        if self.orders is None or not self.orders.private.apply_fault(spec):
            self.faults.apply(spec, self.hub)
        return spec

    def clear_faults(self) -> int:
        """Disarm all pending faults."""
        return self.faults.clear()

    def set_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        """Change ws_snapshot / checksum / keepalive_s; raise FaultError for a bad value."""
        if not isinstance(opts, dict):
            raise FaultError(f"options must be an object: {opts!r}")
        for key, value in opts.items():
            if key == "ws_snapshot":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise FaultError(f"ws_snapshot must be a fraction in 0..1: ws_snapshot={value!r}")
                value = float(value)
            elif key == "checksum":
                if not isinstance(value, bool):
                    raise FaultError(f"checksum must be true or false: checksum={value!r}")
            elif key == "keepalive_s":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise FaultError(f"keepalive_s must be a positive number: keepalive_s={value!r}")
                value = float(value)
            else:
                raise FaultError(f"unknown okx option: {key!r}; known: checksum, keepalive_s, ws_snapshot")
            self.options[key] = value
        return dict(self.options)

    def stats(self) -> dict[str, Any]:
        """Return this venue's counters."""
        out = {"venue": NAME, "mode": "replay" if self.replay else "synthetic",
               "rest_requests": self.rest_requests, "faults": self.faults.stats(),
               "options": dict(self.options), "ws_ops": dict(self.ws_ops),
               "books_requests": dict(self.books_requests),
               **self.hub.stats(),
               "symbols": {k: {"seq_id": f.seq, "updates": f.updates} for k, f in self.feeds.items()}}
        if self.replay is not None:
            out["replay"] = self.replay.stats()
        if self.orders is not None:
            out["orders"] = self.orders.stats()
        return out

    # -- formatting ---------------------------------------------------------
    @staticmethod
    def level(inst: Instrument, driver: BookDriver, side: int, price: int, qty: int) -> list[str]:
        """Format one level as [px, sz, "0", orderCount]."""
        if not qty:
            return [fmt(price, inst.price_decimals), "0", "0", "0"]
        book = driver.book
        synth = book.synth[side].get(price, 0)
        count = (1 + synth % 4 if synth else 0) + len(book.users[side].get(price, ()))
        return [fmt(price, inst.price_decimals), fmt(qty, inst.qty_decimals), "0", str(count)]

    def _books_msg(self, feed: Feed, action: str, bids: list, asks: list, prev: int, seq: int,
                   bad_checksum: bool = False) -> bytes:
        inst = feed.inst
        cks = 0
        if self.options["checksum"] or bad_checksum:
            cks = self._top_checksum(feed) if action == "update" else checksum(bids, asks)
        if bad_checksum:
            cks ^= 1
        feed.pushed = time.monotonic()
        data = {"asks": asks, "bids": bids, "ts": str(now_ms()), "checksum": cks,
                "prevSeqId": prev, "seqId": seq}
        return orjson.dumps({"arg": {"channel": "books", "instId": inst.canonical},
                             "action": action, "data": [data]})

    def _top_checksum(self, feed: Feed) -> int:
        inst, driver = feed.inst, feed.driver
        bids = [(fmt(p, inst.price_decimals), fmt(q, inst.qty_decimals))
                for p, q in driver.book.top(BID, 25)]
        asks = [(fmt(p, inst.price_decimals), fmt(q, inst.qty_decimals))
                for p, q in driver.book.top(ASK, 25)]
        return checksum(bids, asks)

    def book_state(self, feed: Feed, depth: int) -> tuple[int, list, list]:
        """(seqId, bids, asks) of the book now, `depth` levels per side (`lag` diffs old
        when a stale_snapshot fault is armed)."""
        inst, driver = feed.inst, feed.driver
        stale = self.faults.take("stale_snapshot", inst.canonical)
        if stale is not None:
            undo = list(feed.history)[: stale.params["lag"]]
            bmap, amap = rewind(driver.book, (c for _s, c in undo))
            seq = undo[-1][0] if undo else feed.seq
            bids = sorted(bmap.items(), reverse=True)[:depth]
            asks = sorted(amap.items())[:depth]
        else:
            seq = feed.seq
            bids, asks = driver.book.top(BID, depth), driver.book.top(ASK, depth)
        return (seq, [self.level(inst, driver, BID, p, q) for p, q in bids],
                [self.level(inst, driver, ASK, p, q) for p, q in asks])

    def snapshot(self, feed: Feed) -> bytes:
        """Build the WS books snapshot the connections that still get one receive."""
        seq, b, a = self.book_state(feed, 400)
        return self._books_msg(feed, "snapshot", b, a, -1, seq,
                               bool(self.faults.take("checksum", feed.inst.canonical)))

    def ticker(self, feed: Feed) -> bytes:
        """Build the current tickers message of one instId."""
        inst = feed.inst
        pd, qd = inst.price_decimals, inst.qty_decimals
        book = feed.driver.book
        bid, ask = book.best(BID), book.best(ASK)
        last_px, last_sz = feed.last or (feed.open, 0)
        data = {"instType": "SPOT", "instId": inst.canonical,
                "last": fmt(last_px, pd), "lastSz": fmt(last_sz, qd),
                "askPx": fmt(ask, pd) if ask else "", "askSz": fmt(book.total[ASK][ask], qd) if ask else "",
                "bidPx": fmt(bid, pd) if bid else "", "bidSz": fmt(book.total[BID][bid], qd) if bid else "",
                "open24h": fmt(feed.open, pd), "high24h": fmt(feed.high, pd), "low24h": fmt(feed.low, pd),
                "sodUtc0": fmt(feed.open, pd), "sodUtc8": fmt(feed.open, pd),
                "volCcy24h": format_decimal(feed.vol_ccy, pd + qd), "vol24h": format_decimal(feed.vol, qd),
                "ts": str(now_ms())}
        return orjson.dumps({"arg": {"channel": "tickers", "instId": inst.canonical}, "data": [data]})

    # -- publishing (synthetic) ---------------------------------------------
    def on_step(self, canonical: str, trades: list[Trade], user: bool = False) -> None:
        """Publish what one market step (or, `user`, one user order) did to one instId."""
        if self.orders is not None and trades and not user:
            self.orders.on_market_trades(trades)
        feed, hub = self.feeds[canonical], self.hub
        inst, key = feed.inst, canonical
        pd, qd = inst.price_decimals, inst.qty_decimals
        if trades:
            t_stream = "trades:" + key
            for t in trades:
                feed.last = (t.price, t.qty)
                feed.high, feed.low = max(feed.high, t.price), min(feed.low, t.price)
                feed.vol += t.qty
                feed.vol_ccy += t.price * t.qty
                if hub.has(t_stream):
                    hub.publish(t_stream, key, orjson.dumps({
                        "arg": {"channel": "trades", "instId": key},
                        "data": [{"instId": key, "tradeId": str(t.trade_id), "px": fmt(t.price, pd),
                                  "sz": fmt(t.qty, qd), "side": "buy" if t.taker_side == BID else "sell",
                                  "ts": str(now_ms())}]}), "trades")
        changes = feed.driver.book.flush()
        if changes:
            prev = feed.seq
            if self.faults.take("seq_reset", key):     # maintenance: the sequence restarts lower
                feed.seq = feed.ids.randrange(0, max(1, min(prev, 1000)))
            else:
                feed.seq = prev + 1 + feed.ids.randrange(20)
            feed.history.appendleft((prev, changes))
            feed.updates += 1
            if hub.has("books:" + key):
                self._publish_update(feed, changes, prev)

        book = feed.driver.book
        bid, ask = book.best(BID), book.best(ASK)
        top = (bid, book.total[BID].get(bid), ask, book.total[ASK].get(ask), feed.last)
        if top != feed.top:
            feed.top = top
            if hub.has("tickers:" + key):
                hub.publish("tickers:" + key, key, self.ticker(feed), "tickers")

    def _publish_update(self, feed: Feed, changes: list, prev: int) -> None:
        inst, driver, key = feed.inst, feed.driver, feed.inst.canonical
        bids = sorted((c for c in changes if c[0] == BID), key=lambda c: -c[1])
        asks = sorted((c for c in changes if c[0] == ASK), key=lambda c: c[1])
        b = [self.level(inst, driver, BID, c[1], c[3]) for c in bids]
        a = [self.level(inst, driver, ASK, c[1], c[3]) for c in asks]
        frame = self._books_msg(feed, "update", b, a, prev, feed.seq,
                                bool(self.faults.take("checksum", key)))
        self.router.route(key, frame,
                          lambda f: self.hub.publish("books:" + key, key, f, "books"),
                          lambda kind: self.bad_frame(key, kind))

    @staticmethod
    def bad_frame(key: str, kind: str) -> bytes:
        """Build a malformed books frame: cut JSON, or JSON of the wrong shape."""
        if kind == "json":
            return b'{"arg":{"channel":"books","instId":"' + key.encode() + b'"},"action":"upd'
        return orjson.dumps({"arg": {"channel": "books", "instId": key}, "action": "update",
                             "data": {"asks": "not-a-list"}})

    async def _keepalives(self, _app: web.Application):
        """Send a keep-alive on every books stream whose book has not changed for
        `keepalive_s` (OKX: "asks": [], "bids": [], prevSeqId == seqId == the last seqId)."""
        async def loop() -> None:
            while True:
                period = self.options["keepalive_s"]
                await asyncio.sleep(min(period / 4, 1.0))
                now = time.monotonic()
                for key, feed in self.feeds.items():
                    if self.hub.has("books:" + key) and now - feed.pushed >= period:
                        self.hub.publish("books:" + key, key,
                                         self._books_msg(feed, "update", [], [], feed.seq, feed.seq), "books")
        task = asyncio.ensure_future(loop())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # -- REST ---------------------------------------------------------------
    async def _time(self, _request: web.Request) -> web.Response:
        self.rest_requests += 1
        return reply({"code": "0", "msg": "", "data": [{"ts": str(now_ms())}]})

    async def _books(self, request: web.Request) -> web.Response:
        """GET /api/v5/market/books?instId=&sz= as OKX answers it (REST / Order book)."""
        self.rest_requests += 1
        inst_id, sz = request.query.get("instId", ""), request.query.get("sz", "1")
        if not inst_id:
            return reply({"code": "50014", "msg": "Parameter instId can not be empty.", "data": []}, 400)
        feed = self.feeds.get(inst_id)
        if feed is None:
            return reply({"code": "51001", "msg": "Instrument ID does not exist.", "data": []}, 400)
        if not (sz.isascii() and sz.isdigit()) or not 1 <= int(sz) <= 400:
            return reply({"code": "51000", "msg": "Parameter sz error", "data": []}, 400)
        self.books_requests[inst_id] = self.books_requests.get(inst_id, 0) + 1
        if self.replay is not None:
            return reply({"code": "50001", "msg": "Service temporarily unavailable. Please try again later.",
                          "data": []}, 503)
        seq, b, a = self.book_state(feed, int(sz))
        return reply({"code": "0", "msg": "", "data": [{"asks": a, "bids": b, "ts": str(now_ms()),
                                                        "seqId": seq}]})

    async def _options(self, request: web.Request) -> web.Response:
        try:
            opts = self.set_options(await read_json(request))
        except FaultError as exc:
            return reply({"ok": False, "error": str(exc)}, 400)
        return reply({"ok": True, "options": opts})

    async def _instruments(self, request: web.Request) -> web.Response:
        self.rest_requests += 1
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return reply({"code": "50014", "msg": "Parameter instType can not be empty.",
                          "data": []}, 400)
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            return reply({"code": "51000", "msg": "Parameter instType error", "data": []}, 400)
        if inst_type == "SWAP" and self.orders is not None:
            return reply({"code": "0", "msg": "", "data": self.orders.swap_instruments(request.query.get("instId"))})
        insts = self.instruments if inst_type == "SPOT" else []
        if "instId" in request.query:
            insts = [i for i in insts if i.canonical == request.query["instId"]]
        data = [{"instType": "SPOT", "instId": i.canonical, "uly": "", "instFamily": "",
                 "baseCcy": i.base, "quoteCcy": i.quote, "settleCcy": "", "ctVal": "",
                 "ctMult": "", "ctValCcy": "", "optType": "", "stk": "", "listTime": "1606468572000",
                 "expTime": "", "lever": "", "tickSz": i.tick_str(), "lotSz": i.lot_str(),
                 "minSz": fmt(i.min_qty, i.qty_decimals), "ctType": "", "alias": "",
                 "state": "live", "maxLmtSz": fmt(i.level_lots * i.lot * 1_000_000, i.qty_decimals),
                 "maxMktSz": "1000000", "ruleType": "normal"} for i in insts]
        return reply({"code": "0", "msg": "", "data": data})

    # -- WebSocket ----------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self.hub.serve(request, False, self._on_text)

    def _on_text(self, client: Client, text: str) -> None:
        if text == "ping":
            client.push(None, b"pong")
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        op = msg.get("op") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args or \
                not all(isinstance(a, dict) and isinstance(a.get("channel"), str) for a in args):
            self._error(client, "60012", f"Invalid request: {text}")
            return
        for arg in args:
            inst_id = arg.get("instId")
            if arg["channel"] not in CHANNELS or inst_id not in self.feeds:
                self._error(client, "60018", (
                    f"Wrong URL or channel:{arg['channel']},instId:{inst_id} doesn't exist. "
                    "Please use the correct URL, channel and parameters referring to API document."))
                return
        self.ws_ops[op] += 1
        if "ws_snapshot" not in client.state:
            client.state["ws_snapshot"] = self._snapshot_rng.random() < self.options["ws_snapshot"]
        for arg in args:
            channel, inst_id = arg["channel"], arg["instId"]
            ack: dict[str, Any] = {"event": op, "arg": {"channel": channel, "instId": inst_id},
                                   "connId": client.conn_id}
            if "id" in msg:
                ack = {"id": msg["id"], **ack}
            client.push(None, orjson.dumps(ack))
            stream = f"{channel}:{inst_id}"
            if op == "unsubscribe":
                self.hub.unsubscribe(client, stream)
                continue
            if stream in client.streams:
                continue
            self.hub.subscribe(client, stream)
            if self.replay is not None:
                self.replay.start(client, self)
            elif channel == "books" and client.state["ws_snapshot"]:
                client.push(inst_id, self.snapshot(self.feeds[inst_id]))
            elif channel == "tickers":
                client.push(inst_id, self.ticker(self.feeds[inst_id]))

    @staticmethod
    def _error(client: Client, code: str, msg: str) -> None:
        client.push(None, orjson.dumps({"event": "error", "code": code, "msg": msg,
                                        "connId": client.conn_id}))
