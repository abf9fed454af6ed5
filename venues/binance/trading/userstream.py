"""Binance spot user data over the WebSocket API: `userDataStream.subscribe.signature`.

    WS  <ws_url>  (wss://ws-api.binance.com:443/ws-api/v3; a URL without a path gets /ws-api/v3)
    ->  {"id": 1, "method": "userDataStream.subscribe.signature",
         "params": {"apiKey", "recvWindow", "timestamp", "signature"}}
    <-  {"id": 1, "status": 200, "result": {"subscriptionId": 0}, ...}
    <-  {"subscriptionId": 0, "event": {"e": "executionReport", ...}}   one event per text frame
    <-  {"event": {"e": "serverShutdown", "E": ...}}                      the venue closes soon

The listenKey stream (POST /api/v3/userDataStream) was retired on 2026-02-20 (HTTP 410).
Of its two successors, `session.logon` + `userDataStream.subscribe` takes Ed25519 keys
only; `userDataStream.subscribe.signature` works with any key type, so with the HMAC keys
execution signs its REST orders with: the signature is hex HMAC-SHA256 of the other params
sorted by name, `name=value` joined by `&`. What we rely on, and as of when: ../PROTOCOL.md.

One supervisor thread, and one reader thread per connection (websocket-client answers the
venue's pings, every 20 s, while it reads). The engine hears:

    on_state(UserStreamConnected())       once the venue confirmed a subscription (first, and
                                          every resubscription): the engine reconciles, so
                                          nothing sent while no subscription was live is lost
    on_state(UserStreamDisconnected(r))   the connection was lost (closed, failed, or silent
                                          for `silence_s`); reconnect after a backoff
    on_event(event, raw)                  every other event, unwrapped
    on_bad(raw, error)                    a frame that is not a WebSocket API message

Make before break: `lifetime_s` after a connection opened (Binance ends connections at 24 h;
default 23 h), on `serverShutdown`, and when the venue ends our subscription
(`eventStreamTerminated`), a new connection subscribes first; then the old one is
unsubscribed, and once the venue answered that (every event it sent before is read by
then), closed. The engine drops the duplicates the overlap may bring.
"""

from __future__ import annotations

import hashlib
import hmac
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

from .rest import BinanceRefused

WS_API_PATH = "/ws-api/v3"
LIFETIME_S = 23 * 3600.0      # Binance: "A single connection to the API is only valid for 24 hours"
SILENCE_S = 60.0              # Binance pings every 20 s: three missed pings mean the line is dead
_ids = itertools.count(1)


def ws_api_url(url: str) -> str:
    """The WebSocket API URL: `url` as given, or with /ws-api/v3 when it names a host only."""
    return url.rstrip("/") + WS_API_PATH if urlsplit(url).path in ("", "/") else url


def signed_params(api_key: str, secret: bytes, timestamp_ms: int, recv_window_ms: int) -> dict:
    """Params of a USER_STREAM request signed with an HMAC key (see the module docstring)."""
    params = {"apiKey": api_key, "recvWindow": recv_window_ms, "timestamp": timestamp_ms}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    return params


def split_frame(data: bytes) -> tuple[str, object]:
    """One WebSocket API text frame: ("answer", reply) to a request, ("event", the event
    unwrapped from {"subscriptionId", "event"} or a connection event's {"event"}), or
    ("bad", why)."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        return "bad", f"not JSON: {e}"
    if not isinstance(msg, dict):
        return "bad", f"not an object: {type(msg).__name__}"
    if "status" in msg and "id" in msg:
        return "answer", msg
    ev = msg.get("event")
    if not isinstance(ev, dict):
        return "bad", "neither an answer nor an event"
    return "event", ev


class _Conn(WsReader):
    """One WebSocket API connection: its reader thread and the requests awaiting answers."""

    thread_name = "binance-userstream-read"

    def __init__(self, url: str, timeout_s: float, silence_s: float, on_event, on_bad, wake: threading.Event):
        super().__init__(url, timeout_s, silence_s, on_bad, wake)
        self.on_event = on_event
        self.retiring = False         # we unsubscribe it ourselves: its end is no news
        self.subscription = None
        self._start_reading()

    def request(self, method: str, params: dict, timeout_s: float):
        """Send one request and return its `result`; PeerGone without an answer, BinanceRefused
        for an error answer."""
        rid = next(_ids)
        slot = [threading.Event(), None]
        self._pending[rid] = slot
        try:
            self.ws.send(orjson.dumps({"id": rid, "method": method, "params": params}).decode())
        except (OSError, websocket.WebSocketException) as e:
            self._pending.pop(rid, None)
            raise PeerGone(f"{method}: not sent ({type(e).__name__})") from None
        if not slot[0].wait(timeout_s):
            self._pending.pop(rid, None)
            raise PeerGone(f"{method}: no answer in {timeout_s}s")
        reply = slot[1]
        if reply is None:
            raise PeerGone(f"{method}: connection lost ({self.reason})")
        status = reply.get("status")
        if status != 200:
            err = reply.get("error") or {}
            raise BinanceRefused(int(status or 0), int(err.get("code", 0)), str(err.get("msg", "")), method)
        return reply.get("result")

    def _on_frame(self, data: bytes) -> None:
        kind, body = split_frame(data)
        if kind == "bad":
            self.on_bad(data, body)
        elif kind == "answer":
            slot = self._pending.pop(body["id"], None)
            if slot is not None:
                slot[1] = body
                slot[0].set()
        else:
            e = body.get("e")
            if e == "serverShutdown" or (e == "eventStreamTerminated" and not self.retiring):
                self.notice = e
                self.wake.set()
            elif e != "eventStreamTerminated":
                self.on_event(body, data)

    def _unblock(self) -> None:
        self.abort_requests()


class UserStream(WsSupervisor):
    thread_name = "binance-userstream"

    def __init__(self, ws_url: str, api_key: str, api_secret: str, on_event, on_bad, on_state, *,
                 recv_window_ms: int = 5000, timeout_s: float = 2.0, lifetime_s: float = LIFETIME_S,
                 silence_s: float = SILENCE_S, backoff_s: tuple[float, float] = (0.05, 2.0),
                 dlq=None, telemetry=None, clock_ms=None):
        self.url = ws_api_url(ws_url)
        self._key, self._secret = api_key, api_secret.encode()
        self.on_event, self.on_bad, self.on_state = on_event, on_bad, on_state
        self.recv_window_ms, self.timeout_s = recv_window_ms, timeout_s
        self.lifetime_s, self.silence_s = lifetime_s, silence_s
        super().__init__(backoff_s, dlq, telemetry)
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._live: list[_Conn] = []
        self.subscribes = 0            # subscriptions the venue confirmed
        self.rotations = 0             # make-before-break moves (lifetime, serverShutdown, terminated)

    def __repr__(self) -> str:  # never show the credentials
        return f"UserStream({self.url})"

    def _give_up(self) -> None:
        for conn in list(self._live):
            conn.abort_requests()      # a request in flight gives up at once

    # -- the supervisor ----------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_min
        conn: _Conn | None = None
        try:
            while not self._stop.is_set():
                if conn is None:
                    conn = self._open()
                    if conn is None:
                        backoff = self._pause(backoff)
                        continue
                    backoff = self.backoff_min
                    self.on_state(UserStreamConnected())
                self._wait(conn, conn.opened + self.lifetime_s)   # lost, notice or lifetime
                if self._stop.is_set():
                    break
                if conn.lost.is_set():
                    self.on_state(UserStreamDisconnected(conn.reason))
                    self._close(conn)
                    conn = None
                    self._stop.wait(backoff)
                    continue
                why = conn.notice or "lifetime"
                new = self._open()
                if new is None:
                    if conn.notice == "eventStreamTerminated":   # the old one carries nothing now
                        self.on_state(UserStreamDisconnected(f"subscription ended; resubscribe failed: "
                                                             f"{self.last_error}"))
                        self._close(conn)
                        conn = None
                    backoff = self._pause(backoff)
                    continue
                backoff = self.backoff_min
                self.rotations += 1
                if self.tel is not None:
                    self.tel.inc("exec.stream.rotations", reason=why)
                self.on_state(UserStreamConnected())
                self._retire(conn)
                conn = new
        finally:
            for c in list(self._live):
                self._close(c)

    def _open(self) -> _Conn | None:
        """A new connection with a confirmed subscription, or None (the reason in last_error)."""
        try:
            conn = _Conn(self.url, self.timeout_s, self.silence_s, self.on_event, self.on_bad, self._wake)
        except (OSError, websocket.WebSocketException) as e:
            self._failed(f"connect: {type(e).__name__}: {e}")
            return None
        self._live.append(conn)
        try:
            params = signed_params(self._key, self._secret, self._clock_ms(), self.recv_window_ms)
            result = conn.request("userDataStream.subscribe.signature", params, self.timeout_s)
            conn.subscription = result["subscriptionId"]
        except (PeerGone, BinanceRefused, KeyError, TypeError) as e:
            self._failed(f"subscribe: {type(e).__name__}: {e}")
            self._close(conn)
            return None
        self.subscribes += 1
        return conn

    def _retire(self, old: _Conn) -> None:
        """Unsubscribe `old`, wait for the answer (what it sent before is read), close it."""
        old.retiring = True
        if not old.lost.is_set():
            try:
                old.request("userDataStream.unsubscribe", {"subscriptionId": old.subscription}, self.timeout_s)
            except (PeerGone, BinanceRefused):
                pass   # lost or refused: what it sent is read all the same
        self._close(old)

    def _close(self, conn: _Conn) -> None:
        conn.close()
        if conn in self._live:
            self._live.remove(conn)
