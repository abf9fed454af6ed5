"""Kraken spot public market data, WebSocket API v1, in Kraken's own wire format.

  WS   / (Kraken: wss://ws.kraken.com): {"event":"systemStatus","status":"online",..} on
       connect; {"event":"ping"(,"reqid":n)} -> {"event":"pong"(,"reqid":n)};
       {"event":"subscribe"|"unsubscribe","pair":["XBT/USDT"],"subscription":{"name":
       "book"|"trade"|"spread"(,"depth":10|25|100|500|1000)}(,"reqid":n)} answered per
       pair by {"channelID":..,"channelName":"book-1000","event":"subscriptionStatus",
       "pair":..,"status":"subscribed"|"unsubscribed"|"error",("errorMessage":..,)
       "subscription":{..}}; {"event":"heartbeat"} every second to subscribed sockets.
  REST none: the Kraken adapter fetches nothing at start (books come whole over WS).
  book-N: a snapshot [id,{"as":[..],"bs":[..]},"book-N",pair] of the top N levels on
       subscribe (depth defaults to 10, as on Kraken), then per market step that changed
       the top N one update [id,{"a":[..]},{"b":[..],"c":".."},"book-N",pair] (one dict
       when one side changed). Levels are [px, vol, "sec.micros"] with px at the pair's
       decimals and vol at 8; a level that comes back into the top N only because one
       above it left carries a 4th field "r" (republish). Levels pushed past N are not
       deleted on the wire: the client cuts its book to N, as Kraken requires. "c" is
       the unsigned CRC32 of the top 10 asks then top 10 bids, each price and volume
       with the point removed and leading zeros stripped (`checksum`).
  trade:  [id,[[px,vol,time,"b"|"s","m","" ]],"trade",pair] per match (side: the taker).
  spread: [id,[bid,ask,time,bidVol,askVol],"spread",pair] on subscribe and whenever the
       best bid or ask changed.
Pairs: canonical "BTC-USDT" is "XBT/USDT" (XBT for BTC, XDG for DOGE, as on Kraken).
Faults: checksum (the next update's "c" is wrong), malformed, gap, duplicate, reorder,
stall, disconnect; no stale_snapshot (v1 books carry no sequence to notice it by) and
no replay.

A quoted update, for the shape (recorded 2021-04-17): [992,{"b":[["354.15000000",
"5.00000000","1618678133.365913"]],"c":"2583817756"},"book-1000","XMR/USD"]
"""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any, Iterable, Sequence

import orjson
from aiohttp import web

from .book import ASK, BID
from .faults import DiffRouter, FaultBox, normalize
from .hub import Client, Hub
from .instruments import Instrument, fmt, resolve
from .market import BookDriver, Trade

NAME = "kraken"
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_DEPTH = 10
CHECKSUM_LEVELS = 10
VOLUME_DECIMALS = 8
HEARTBEAT_S = 1.0
_ALIASES = {"BTC": "XBT", "DOGE": "XDG"}


def kraken_pair(inst: Instrument) -> str:
    """Return the WS v1 pair of an instrument: BTC-USDT -> "XBT/USDT"."""
    return f"{_ALIASES.get(inst.base, inst.base)}/{_ALIASES.get(inst.quote, inst.quote)}"


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]]) -> str:
    """Return Kraken's v1 book checksum (unsigned CRC32, as a decimal string).

    `asks` and `bids` are best-first [px, vol] strings exactly as sent, already cut to
    the subscribed depth; the top CHECKSUM_LEVELS of each side count, asks first.
    """
    text = "".join(_digits(p) + _digits(v) for p, v, *_ in asks[:CHECKSUM_LEVELS])
    text += "".join(_digits(p) + _digits(v) for p, v, *_ in bids[:CHECKSUM_LEVELS])
    return str(zlib.crc32(text.encode("ascii")))


def timestamp() -> str:
    """Return now as Kraken writes times: "1618678133.365913" (seconds, 6 decimals)."""
    us = time.time_ns() // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


class Feed:
    """One pair: its book driver, what each subscribed depth last saw, its top of book."""

    def __init__(self, inst: Instrument, driver: BookDriver):
        self.inst = inst
        self.driver = driver
        self.pair = kraken_pair(inst)
        self.views: dict[int, tuple[dict[int, int], dict[int, int]]] = {}  # depth -> (bids, asks)
        self.top: tuple | None = None
        self.updates = 0

    def px(self, price: int) -> str:
        return fmt(price, self.inst.price_decimals, self.inst.price_decimals)

    def vol(self, qty: int) -> str:
        return fmt(qty, self.inst.qty_decimals, VOLUME_DECIMALS)

    def best(self) -> tuple:
        """Return (bid, bid qty, ask, ask qty): what a spread message shows."""
        book = self.driver.book
        bid, ask = book.best(BID), book.best(ASK)
        return bid, book.total[BID].get(bid), ask, book.total[ASK].get(ask)

    def view_now(self, depth: int) -> tuple[dict[int, int], dict[int, int]]:
        book = self.driver.book
        return dict(book.top(BID, depth)), dict(book.top(ASK, depth))


class KrakenVenue:
    """Kraken spot WS v1 market data served by one aiohttp app."""

    def __init__(self, instruments: list[Instrument], drivers: dict[str, BookDriver]):
        self.name = NAME
        self.instruments = instruments
        self.by_name = {i.canonical: i for i in instruments}
        self.feeds = {i.canonical: Feed(i, drivers[i.canonical]) for i in instruments}
        self.by_pair = {f.pair: f for f in self.feeds.values()}
        self.faults = FaultBox()
        self.routers = {d: DiffRouter(self.faults) for d in BOOK_DEPTHS}
        self.hub = Hub(NAME)
        self.channel_ids: dict[str, int] = {}
        self.rest_requests = 0
        self._heartbeat: asyncio.Task | None = None
        self.app = web.Application()
        self.app.on_startup.append(self._start)
        self.app.on_shutdown.append(self._stop)
        self.app.router.add_get("/", self._ws)

    # -- faults and stats ---------------------------------------------------
    supported_faults = {"gap", "duplicate", "reorder", "malformed", "checksum", "stall", "disconnect"}

    def resolve_key(self, name: str) -> str | None:
        """Map a user-given symbol (BTC-USDT, BTCUSDT, XBT/USDT) to the canonical name."""
        feed = self.by_pair.get(name.upper())
        if feed is not None:
            return feed.inst.canonical
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
        return {"venue": NAME, "mode": "synthetic", "rest_requests": self.rest_requests,
                "faults": self.faults.stats(), **self.hub.stats(),
                "symbols": {k: {"pair": f.pair, "updates": f.updates, "depths": sorted(f.views)}
                            for k, f in self.feeds.items()}}

    # -- messages -----------------------------------------------------------
    def channel_id(self, stream: str) -> int:
        """Return the channelID of a (channel, pair) stream; stable while the venue runs."""
        cid = self.channel_ids.get(stream)
        if cid is None:
            cid = self.channel_ids[stream] = 336 + 16 * len(self.channel_ids)
        return cid

    def snapshot(self, feed: Feed, depth: int) -> bytes:
        """Build the book-N snapshot a new subscriber gets."""
        book, ts = feed.driver.book, timestamp()
        asks = [[feed.px(p), feed.vol(q), ts] for p, q in book.top(ASK, depth)]
        bids = [[feed.px(p), feed.vol(q), ts] for p, q in book.top(BID, depth)]
        stream = f"book-{depth}:{feed.pair}"
        return orjson.dumps([self.channel_id(stream), {"as": asks, "bs": bids},
                             f"book-{depth}", feed.pair])

    def spread(self, feed: Feed) -> bytes:
        """Build the current spread message of one pair."""
        book = feed.driver.book
        bid, ask = book.best(BID), book.best(ASK)
        body = [feed.px(bid) if bid else "", feed.px(ask) if ask else "", timestamp(),
                feed.vol(book.total[BID][bid]) if bid else "",
                feed.vol(book.total[ASK][ask]) if ask else ""]
        return orjson.dumps([self.channel_id("spread:" + feed.pair), body, "spread", feed.pair])

    def book_update(self, feed: Feed, depth: int, changed: set[tuple[int, int]],
                    bad_checksum: bool) -> bytes | None:
        """Diff the top `depth` against what its subscribers saw; None when unchanged.

        Sends new and changed levels (with "r" when a level only came back into range)
        and deletions of levels that left the book; levels merely pushed past `depth`
        are left to the client's truncation.
        """
        old = feed.views[depth]
        new = feed.view_now(depth)
        book, ts = feed.driver.book, timestamp()
        out: list[list] = [[], []]
        for side in (BID, ASK):
            before, after, sent = old[side], new[side], out[side]
            for price, qty in after.items():
                if before.get(price) != qty:
                    level = [feed.px(price), feed.vol(qty), ts]
                    if price not in before and (side, price) not in changed:
                        level.append("r")
                    sent.append(level)
            for price in before:
                if price not in after and not book.total[side].get(price):
                    sent.append([feed.px(price), feed.vol(0), ts])
        feed.views[depth] = new
        if not out[BID] and not out[ASK]:
            return None
        asks = [(feed.px(p), feed.vol(q)) for p, q in book.top(ASK, min(depth, CHECKSUM_LEVELS))]
        bids = [(feed.px(p), feed.vol(q)) for p, q in book.top(BID, min(depth, CHECKSUM_LEVELS))]
        crc = checksum(asks, bids)
        if bad_checksum:
            crc = str((int(crc) + 1) % (1 << 32))
        out[ASK].sort(key=lambda lv: int(lv[0].replace(".", "")))
        out[BID].sort(key=lambda lv: -int(lv[0].replace(".", "")))
        parts: list[Any] = [self.channel_id(f"book-{depth}:{feed.pair}")]
        if out[ASK] and out[BID]:
            parts += [{"a": out[ASK]}, {"b": out[BID], "c": crc}]
        elif out[ASK]:
            parts.append({"a": out[ASK], "c": crc})
        else:
            parts.append({"b": out[BID], "c": crc})
        return orjson.dumps(parts + [f"book-{depth}", feed.pair])

    def bad_frame(self, feed: Feed, depth: int, kind: str) -> bytes:
        """Build a malformed book frame: cut JSON, or a data frame without its payload."""
        cid = self.channel_id(f"book-{depth}:{feed.pair}")
        if kind == "json":
            return f'[{cid},{{"a":[["{feed.px(feed.inst.start_price)}","0.0'.encode()
        return orjson.dumps([cid, f"book-{depth}", feed.pair])

    # -- publishing ---------------------------------------------------------
    def on_step(self, canonical: str, trades: list[Trade]) -> None:
        """Publish what one market step did to one pair."""
        feed, hub = self.feeds[canonical], self.hub
        key, pair = canonical, feed.pair
        if trades and hub.has("trade:" + pair):
            ts = timestamp()
            body = [[feed.px(t.price), feed.vol(t.qty), ts, "b" if t.taker_side == BID else "s", "m", ""]
                    for t in trades]
            hub.publish("trade:" + pair, key, orjson.dumps(
                [self.channel_id("trade:" + pair), body, "trade", pair]), "trade")
        changes = feed.driver.book.flush()
        if changes:
            feed.updates += 1
            changed = {(side, price) for side, price, _old, _new in changes}
            for depth in list(feed.views):
                stream = f"book-{depth}:{pair}"
                if not hub.has(stream):
                    del feed.views[depth]
                    continue
                frame = self.book_update(feed, depth, changed,
                                         bool(self.faults.pending("checksum", key)))
                if frame is None:
                    continue
                if self.faults.pending("checksum", key):
                    self.faults.take("checksum", key)
                self.routers[depth].route(
                    key, frame, lambda f, s=stream: hub.publish(s, key, f, "book"),
                    lambda kind, d=depth: self.bad_frame(feed, d, kind))
        top = feed.best()
        if top != feed.top:
            feed.top = top
            if hub.has("spread:" + pair):
                hub.publish("spread:" + pair, key, self.spread(feed), "spread")

    # -- WebSocket ----------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self.hub.serve(request, False, self._on_text, self._on_open)

    def _on_open(self, client: Client) -> None:
        client.push(None, orjson.dumps({"connectionID": int(client.conn_id, 16), "event": "systemStatus",
                                        "status": "online", "version": "1.9.1"}))

    def _on_text(self, client: Client, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict):
            self._error(client, "Malformed request")
            return
        event = msg.get("event")
        rid = {"reqid": msg["reqid"]} if "reqid" in msg else {}
        if event == "ping":
            client.push(None, orjson.dumps({"event": "pong", **rid}))
        elif event in ("subscribe", "unsubscribe"):
            self._subscription(client, event, msg, rid)
        else:
            self._error(client, "Unsupported event" if isinstance(event, str) else "Malformed request", rid)

    def _subscription(self, client: Client, event: str, msg: dict, rid: dict) -> None:
        sub, pairs = msg.get("subscription"), msg.get("pair")
        if not isinstance(sub, dict) or not isinstance(sub.get("name"), str):
            self._error(client, "Subscription name invalid", rid)
            return
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, str) for p in pairs):
            self._error(client, "Pair field must be an array", rid)
            return
        name = sub["name"]
        answer = {"name": name}
        if name == "book":
            depth = sub.get("depth", DEFAULT_DEPTH)
            answer["depth"] = depth
            if depth not in BOOK_DEPTHS or isinstance(depth, bool):
                self._statuses(client, pairs, answer, rid, "Subscription depth not supported")
                return
            channel = f"book-{depth}"
        elif name in ("trade", "spread"):
            depth, channel = 0, name
        else:
            self._statuses(client, pairs, answer, rid, "Subscription name invalid")
            return
        for pair in pairs:
            feed = self.by_pair.get(pair)
            stream = f"{channel}:{pair}"
            error = None
            if feed is None:
                error = f"Currency pair not supported {pair}"
            elif event == "subscribe" and stream in client.streams:
                error = "Already subscribed"
            elif event == "unsubscribe" and stream not in client.streams:
                error = "Subscription Not Found"
            if error is not None:
                self._statuses(client, [pair], answer, rid, error)
                continue
            status = {"channelID": self.channel_id(stream), "channelName": channel, "event":
                      "subscriptionStatus", "pair": pair, **rid,
                      "status": "subscribed" if event == "subscribe" else "unsubscribed",
                      "subscription": answer}
            client.push(None, orjson.dumps(status))
            if event == "unsubscribe":
                self.hub.unsubscribe(client, stream)
                continue
            if name == "book" and not self.hub.has(stream):
                feed.views[depth] = feed.view_now(depth)
            self.hub.subscribe(client, stream)
            key = feed.inst.canonical
            if name == "book":
                client.push(key, self.snapshot(feed, depth))
            elif name == "spread":
                feed.top = feed.best()
                client.push(key, self.spread(feed))

    @staticmethod
    def _statuses(client: Client, pairs: Iterable[str], answer: dict, rid: dict, error: str) -> None:
        for pair in pairs:
            client.push(None, orjson.dumps({"errorMessage": error, "event": "subscriptionStatus",
                                            "pair": pair, **rid, "status": "error",
                                            "subscription": answer}))

    @staticmethod
    def _error(client: Client, error: str, rid: dict | None = None) -> None:
        client.push(None, orjson.dumps({"errorMessage": error, "event": "error", **(rid or {}),
                                        "status": "error"}))

    # -- heartbeat ----------------------------------------------------------
    async def _start(self, _app: web.Application) -> None:
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def _stop(self, _app: web.Application) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self.hub.shutdown()

    async def _beat(self) -> None:
        frame = orjson.dumps({"event": "heartbeat"})
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for client in list(self.hub.clients):
                if client.streams:
                    client.push(None, frame)
                    self.hub.sent["heartbeat"] = self.hub.sent.get("heartbeat", 0) + 1
