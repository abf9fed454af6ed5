"""Client-side helpers for the venue simulator tests (urllib + websocket-client)."""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
import zlib
from decimal import Decimal
from typing import Any

import orjson
import websocket

_ids = itertools.count(1000)


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """Send one HTTP request; return (status, parsed JSON body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null")


def get(url: str) -> tuple[int, Any]:
    """GET a JSON document."""
    return http("GET", url)


def connect(url: str, timeout: float = 10.0) -> websocket.WebSocket:
    """Open a WebSocket with a receive timeout."""
    return websocket.create_connection(url, timeout=timeout)


def binance_barrier(ws: websocket.WebSocket) -> list[Any]:
    """Return every frame queued before a LIST_SUBSCRIPTIONS reply (parsed; bad JSON as bytes)."""
    rid = next(_ids)
    ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": rid}).decode())
    out = []
    while True:
        text = ws.recv()
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            out.append(text)
            continue
        if isinstance(msg, dict) and msg.get("id") == rid and "result" in msg:
            return out
        out.append(msg)


def okx_barrier(ws: websocket.WebSocket) -> list[Any]:
    """Return every frame queued before the pong to a ping (parsed; bad JSON as str)."""
    ws.send("ping")
    out = []
    while True:
        text = ws.recv()
        if text == "pong":
            return out
        try:
            out.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            out.append(text)


def okx_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """Independent OKX checksum: interleave top-25 strings, CRC32, signed 32-bit."""
    text = []
    for i in range(25):
        for side in (bids, asks):
            if i < len(side):
                text.append(f"{side[i][0]}:{side[i][1]}")
    value = zlib.crc32(":".join(text).encode()) & 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


class LocalBook:
    """A client-side book of price strings, kept like a venue adapter keeps one."""

    def __init__(self, bids: list, asks: list):
        self.bids = {p: lvl for p, *lvl in bids}
        self.asks = {p: lvl for p, *lvl in asks}

    def apply(self, bids: list, asks: list) -> None:
        """Apply absolute level quantities; a zero quantity removes the level."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, *lvl in levels:
                if Decimal(lvl[0]) == 0:
                    side.pop(p, None)
                else:
                    side[p] = lvl

    def top(self, n: int) -> tuple[list, list]:
        """Return (bids, asks) best first as [px, qty] string pairs."""
        b = sorted(self.bids, key=Decimal, reverse=True)[:n]
        a = sorted(self.asks, key=Decimal)[:n]
        return [[p, self.bids[p][0]] for p in b], [[p, self.asks[p][0]] for p in a]
