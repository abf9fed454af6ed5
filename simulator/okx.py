"""OKX v5 public market data, in OKX's own wire format.

  REST GET /api/v5/public/instruments?instType=SPOT[&instId=]  (tickSz, lotSz, minSz)
       GET /api/v5/public/time
  WS   /ws/v5/public: text "ping" -> "pong"; {"op":"subscribe"|"unsubscribe","args":[
       {"channel":"books"|"trades"|"tickers","instId":"BTC-USDT"}]} answered per arg
       by {"event":"subscribe","arg":{..},"connId":".."}; bad requests by
       {"event":"error","code":"60012"|"60018","msg":..,"connId":..}.
  books: a snapshot of up to 400 levels per side on subscribe, then one update
       per market step that changed the book; every message carries `checksum`
       (signed CRC32 of the top 25 levels, strings as sent), `seqId`/`prevSeqId`
       (snapshot prevSeqId -1) and `ts`. Levels are [px, sz, "0", orderCount];
       numbers are sent without trailing zeros, as OKX does ("30316", "0.0012").
  trades: one message per match; tickers: on subscribe and whenever the top of
       book or the last trade changed.

A quoted update, for the shape: {"arg":{"channel":"books","instId":"BTC-USD-220527"},
"action":"update","data":[{"asks":[["30249.4","0","0","0"]],"bids":[["30182.6","452",
"0","1"]],"ts":"1652459225464","checksum":-914047754}]}
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from typing import Any, Sequence

import orjson
from aiohttp import web

from .binance import now_ms
from .book import ASK, BID, rewind
from .control import reply
from .faults import DiffRouter, FaultBox, normalize
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


class OkxVenue:
    """OKX spot market data served by one aiohttp app."""

    def __init__(self, instruments: list[Instrument], drivers: dict[str, BookDriver] | None,
                 replay: Any = None):
        self.name = NAME
        self.instruments = instruments
        self.by_name = {i.canonical: i for i in instruments}
        self.replay = replay
        self.feeds = {i.canonical: Feed(i, drivers[i.canonical] if drivers else None)
                      for i in instruments}
        self.faults = FaultBox()
        self.router = DiffRouter(self.faults)
        self.hub = Hub(NAME)
        self.rest_requests = 0
        self.app = web.Application()
        self.app.on_shutdown.append(self.hub.shutdown)
        self.app.router.add_get("/api/v5/public/instruments", self._instruments)
        self.app.router.add_get("/api/v5/public/time", self._time)
        self.app.router.add_get("/ws/v5/public", self._ws)

    # -- faults and stats ---------------------------------------------------
    @property
    def supported_faults(self) -> set[str]:
        """Return the fault names this venue accepts."""
        names = {"gap", "duplicate", "reorder", "malformed", "checksum", "stall", "disconnect"}
        if self.replay is None:
            names.add("stale_snapshot")
        return names

    def resolve_key(self, name: str) -> str | None:
        """Map a user-given symbol to an instId."""
        inst = resolve(self.by_name, name)
        return inst.canonical if inst else None

    def inject(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm or apply a fault; raise FaultError for a bad request."""
        spec = normalize(spec, self.supported_faults, self.resolve_key)
        self.faults.apply(spec, self.hub)
        return spec

    def clear_faults(self) -> int:
        """Disarm all pending faults."""
        return self.faults.clear()

    def stats(self) -> dict[str, Any]:
        """Return this venue's counters."""
        out = {"venue": NAME, "mode": "replay" if self.replay else "synthetic",
               "rest_requests": self.rest_requests, "faults": self.faults.stats(),
               **self.hub.stats(),
               "symbols": {k: {"seq_id": f.seq, "updates": f.updates} for k, f in self.feeds.items()}}
        if self.replay is not None:
            out["replay"] = self.replay.stats()
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
        cks = self._top_checksum(feed) if action == "update" else checksum(bids, asks)
        if bad_checksum:
            cks ^= 1
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

    def snapshot(self, feed: Feed) -> bytes:
        """Build the books snapshot a new subscriber gets (stale when armed)."""
        inst, driver = feed.inst, feed.driver
        stale = self.faults.take("stale_snapshot", inst.canonical)
        if stale is not None:
            undo = list(feed.history)[: stale.params["lag"]]
            bmap, amap = rewind(driver.book, (c for _s, c in undo))
            seq = undo[-1][0] if undo else feed.seq
            bids = sorted(bmap.items(), reverse=True)[:400]
            asks = sorted(amap.items())[:400]
        else:
            seq = feed.seq
            bids, asks = driver.book.top(BID, 400), driver.book.top(ASK, 400)
        b = [self.level(inst, driver, BID, p, q) for p, q in bids]
        a = [self.level(inst, driver, ASK, p, q) for p, q in asks]
        return self._books_msg(feed, "snapshot", b, a, -1, seq,
                               bool(self.faults.take("checksum", inst.canonical)))

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
    def on_step(self, canonical: str, trades: list[Trade]) -> None:
        """Publish what one market step did to one instId."""
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

    # -- REST ---------------------------------------------------------------
    async def _time(self, _request: web.Request) -> web.Response:
        self.rest_requests += 1
        return reply({"code": "0", "msg": "", "data": [{"ts": str(now_ms())}]})

    async def _instruments(self, request: web.Request) -> web.Response:
        self.rest_requests += 1
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return reply({"code": "50014", "msg": "Parameter instType can not be empty.",
                          "data": []}, 400)
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            return reply({"code": "51000", "msg": "Parameter instType error", "data": []}, 400)
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
            elif channel == "books":
                client.push(inst_id, self.snapshot(self.feeds[inst_id]))
            elif channel == "tickers":
                client.push(inst_id, self.ticker(self.feeds[inst_id]))

    @staticmethod
    def _error(client: Client, code: str, msg: str) -> None:
        client.push(None, orjson.dumps({"event": "error", "code": code, "msg": msg,
                                        "connId": client.conn_id}))
