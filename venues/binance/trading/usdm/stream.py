"""Binance USD-M user data: a listenKey stream on the WebSocket `/private` URL.

    POST   /fapi/v1/listenKey      -> {"listenKey": "..."} (the account's active key, extended 60 min)
    PUT    /fapi/v1/listenKey      keepalive: 60 more minutes (-1125: the key is gone)
    WS     <ws_url>/private/stream
    ->     {"method": "SUBSCRIBE", "params": ["<listenKey>"], "id": n}
    <-     {"result": null, "id": n}                            subscribed: events flow from here
    <-     {"stream": "<listenKey>", "data": {"e": "ORDER_TRADE_UPDATE", ...}}   one per text frame
           (also ACCOUNT_UPDATE, TRADE_LITE, ...; {"e": "listenKeyExpired", ...}: no more events)

Since 2026-04-23 user data is only on `wss://fstream.binance.com/private` (the legacy URL
without a category was retired); a `--ws-url` without a path gets /private. We connect and
subscribe the way Binance's own SDK (binance-sdk-derivatives-trading-usds-futures 18.1.0,
2026-10) does: the combined endpoint, the listen key subscribed by message, so the venue's
answer confirms the subscription before we tell the engine the stream is up. The key is the
account's: other clients of the account get the same one from POST, so we never DELETE it
(that would end their streams too).

One supervisor thread, one reader thread per connection (websocket-client answers the
venue's pings, every 3 minutes, while it reads). The engine hears, as from the spot stream:

    on_state(UserStreamConnected())      after every (re)connect: the engine reconciles
    on_state(UserStreamDisconnected(r))  lost (closed, failed, silent `silence_s`), or the key
                                         expired (listenKeyExpired, or -1125 on keepalive):
                                         reconnect with a key from POST, after a backoff
    on_event(event, raw) / on_bad(raw, error)

Keepalive every `keepalive_s` (30 min, as Binance recommends; the key lives 60). A connection
lives at most 24 h: after `lifetime_s` (23 h) a new connection on the same key opens first,
then the old one is closed (the engine drops the duplicates the overlap may bring).
"""

from __future__ import annotations

import itertools
import threading
import time
from urllib.parse import urlsplit

import orjson
import websocket

from events import PeerGone
from venues.trading import UserStreamConnected, UserStreamDisconnected
from venues.wsreader import WsReader
from venues.wssupervisor import WsSupervisor

from ..rest import BinanceRefused
from .rest import NO_SUCH_LISTEN_KEY, FuturesRest

PRIVATE_PATH = "/private"
LIFETIME_S = 23 * 3600.0     # "A single connection is only valid for 24 hours"
KEEPALIVE_S = 30 * 60.0      # the key lives 60 minutes after each POST / PUT
SILENCE_S = 600.0            # the venue pings every 3 minutes: three missed pings mean a dead line
_ids = itertools.count(1)


def private_url(ws_url: str) -> str:
    """The user-data connection URL: <ws_url>[/private]/stream."""
    base = ws_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += PRIVATE_PATH
    return f"{base}/stream"


def split_frame(data: bytes) -> tuple[str, object]:
    """One text frame: ("answer", reply) to a request, ("event", the event, unwrapped from
    {"stream", "data"}), or ("bad", why)."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        return "bad", f"not JSON: {e}"
    if isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg):
        return "answer", msg
    if isinstance(msg, dict) and isinstance(msg.get("data"), dict) and "stream" in msg:
        msg = msg["data"]
    if not isinstance(msg, dict) or not isinstance(msg.get("e"), str):
        return "bad", "not an event object"
    return "event", msg


class _Conn(WsReader):
    """One /private connection: its reader thread and its one subscription request."""

    thread_name = "usdm-userstream-read"
    await_close_frame = False

    def __init__(self, url: str, timeout_s: float, silence_s: float, on_event, on_bad, wake: threading.Event):
        super().__init__(url, timeout_s, silence_s, on_bad, wake)
        self.on_event = on_event
        self.expired = False
        self._answered = threading.Event()
        self._answer: dict | None = None
        self._start_reading()

    def subscribe(self, listen_key: str, timeout_s: float) -> None:
        """SUBSCRIBE the key and wait for the venue's answer; PeerGone / BinanceRefused if none."""
        rid = next(_ids)
        try:
            self.ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": [listen_key], "id": rid}).decode())
        except (OSError, websocket.WebSocketException) as e:
            raise PeerGone(f"SUBSCRIBE: not sent ({type(e).__name__})") from None
        if not self._answered.wait(timeout_s) or self._answer is None:
            raise PeerGone(f"SUBSCRIBE: no answer in {timeout_s}s ({self.reason or 'open'})")
        err = self._answer.get("error")
        if err or self._answer.get("id") != rid:
            err = err if isinstance(err, dict) else {}
            raise BinanceRefused(0, int(err.get("code", 0)), str(err.get("msg", self._answer)), "SUBSCRIBE")

    def _on_frame(self, data: bytes) -> None:
        kind, body = split_frame(data)
        if kind == "bad":
            self.on_bad(data, body)
        elif kind == "answer":
            self._answer = body
            self._answered.set()
        elif body["e"] == "listenKeyExpired":
            self.expired = True
            self._end("listenKeyExpired")
        else:
            self.on_event(body, data)

    def _unblock(self) -> None:
        self._answered.set()          # a subscription waiting for its answer gives up


class FuturesUserStream(WsSupervisor):
    thread_name = "usdm-userstream"

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, on_event, on_bad, on_state, *,
                 timeout_s: float = 2.0, lifetime_s: float = LIFETIME_S, keepalive_s: float = KEEPALIVE_S,
                 silence_s: float = SILENCE_S, backoff_s: tuple[float, float] = (0.05, 2.0), dlq=None,
                 telemetry=None):
        self.ws_url = ws_url
        self.rest = FuturesRest(rest_url, api_key, api_secret, timeout_s=timeout_s)
        self.on_event, self.on_bad, self.on_state = on_event, on_bad, on_state
        self.timeout_s, self.lifetime_s, self.keepalive_s, self.silence_s = timeout_s, lifetime_s, keepalive_s, silence_s
        super().__init__(backoff_s, dlq, telemetry)
        self._live: list[_Conn] = []
        self.key = ""
        self.connects = 0             # connections opened (first, reconnects, rotations)
        self.keepalives = 0
        self.rotations = 0

    def __repr__(self) -> str:  # never show the credentials or the key
        return f"FuturesUserStream({self.ws_url})"

    # -- the supervisor ----------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_min
        conn: _Conn | None = None
        try:
            while not self._stop.is_set():
                if conn is None:
                    conn = self._open(new_key=True)
                    if conn is None:
                        backoff = self._pause(backoff)
                        continue
                    backoff = self.backoff_min
                    keepalive_due = time.monotonic() + self.keepalive_s
                    self.on_state(UserStreamConnected())
                self._wait(conn, min(keepalive_due, conn.opened + self.lifetime_s))
                if self._stop.is_set():
                    break
                if conn.lost.is_set():   # lost, or the key expired
                    self.on_state(UserStreamDisconnected(conn.reason))
                    self._close(conn)
                    conn = None
                    self._stop.wait(backoff)
                elif time.monotonic() >= keepalive_due:
                    keepalive_due = time.monotonic() + self._keepalive(conn)
                else:                    # the connection's lifetime is over
                    new = self._open(new_key=False)
                    if new is None:
                        backoff = self._pause(backoff)
                        continue
                    self.rotations += 1
                    if self.tel is not None:
                        self.tel.inc("exec.stream.rotations", reason="lifetime")
                    self.on_state(UserStreamConnected())
                    self._close(conn)
                    conn = new
        finally:
            for c in list(self._live):
                self._close(c)
            self.rest.close()

    def _keepalive(self, conn: _Conn) -> float:
        """PUT the key; seconds until the next one (a minute when the venue did not answer)."""
        try:
            self.rest.keepalive_listen_key()
        except BinanceRefused as e:
            if e.code == NO_SUCH_LISTEN_KEY:       # gone: a new key on a new connection
                conn.expired = True
                conn._end(f"listenKey gone: {e.code} {e.msg}")
            self._failed(f"keepalive: {e}")
            return self.keepalive_s
        except PeerGone as e:
            self._failed(f"keepalive: {e}")
            return min(60.0, self.keepalive_s)
        self.keepalives += 1
        return self.keepalive_s

    def _open(self, new_key: bool) -> _Conn | None:
        """A connection on the account's listen key (asked for anew unless `new_key` is False)."""
        try:
            if new_key or not self.key:
                self.key = self.rest.new_listen_key()
            conn = _Conn(private_url(self.ws_url), self.timeout_s, self.silence_s, self.on_event,
                         self.on_bad, self._wake)
        except (PeerGone, BinanceRefused, KeyError, TypeError) as e:
            self._failed(f"listenKey: {type(e).__name__}: {e}")
            return None
        except (OSError, websocket.WebSocketException) as e:
            self._failed(f"connect: {type(e).__name__}: {e}")
            return None
        self._live.append(conn)
        try:
            conn.subscribe(self.key, self.timeout_s)
        except (PeerGone, BinanceRefused) as e:
            self._failed(f"subscribe: {type(e).__name__}: {e}")
            self._close(conn)
            return None
        self.connects += 1
        return conn

    def _close(self, conn: _Conn) -> None:
        conn.close()
        if conn in self._live:
            self._live.remove(conn)
