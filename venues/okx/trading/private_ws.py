"""The OKX private WebSocket: login, the `orders` / `account` / `positions` channels, and
order entry (`order`, `cancel-order`, `amend-order`) on the same connection.

    WS  <ws_url>  (wss://ws.okx.com:8443/ws/v5/private; a URL without a path gets /ws/v5/private)
    ->  {"op": "login", "args": [{"apiKey", "passphrase", "timestamp": "<unix s>", "sign"}]}
            sign = base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify"))
    <-  {"event": "login", "code": "0", "msg": "", "connId": ".."}   (else {"event": "error", "code": "600xx"})
    ->  {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}, {"channel": "account"},
                                     {"channel": "positions", "instType": "ANY"}]}
    <-  {"event": "subscribe", "arg": {..}, "connId": ".."}   one per channel
    <-  {"arg": {"channel": "orders", ..}, "data": [{..order..}]}   pushes
    ->  {"id": "o12", "op": "order", "args": [{..as REST..}]}
    <-  {"id": "o12", "op": "order", "code": "0", "msg": "", "data": [{"clOrdId", "ordId", "sCode", "sMsg"}]}
    ->  "ping"   <-  "pong"   (OKX closes a connection that received nothing for 30 s: code 4004)
    <-  {"event": "notice", "code": "64008", ..}   the venue closes the connection soon: a new one
                                                   logs in and subscribes first (make before break)

One supervisor thread and one reader thread per connection. The engine hears, through
`on_state`, UserStreamConnected once login and every subscription were confirmed (first
and after every reconnect: the engine then reconciles what it may have missed) and
UserStreamDisconnected when the connection was lost; pushes go to `on_push(channel,
data, raw)`, unreadable frames to `on_bad(raw, error)`. Order entry (`request`) waits for
the answer with the id it sent; no answer is PeerGone (outcome unknown: the caller
queries, never re-sends).
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
import time
from urllib.parse import urlsplit

import orjson
import websocket

from events import PeerGone
from venues.trading import UserStreamConnected, UserStreamDisconnected
from venues.wsreader import READ_TICK_S, WsReader
from venues.wssupervisor import WsSupervisor

from .rest import OkxRefused, answer, sign

PRIVATE_PATH = "/ws/v5/private"
CHANNELS = ({"channel": "orders", "instType": "ANY"}, {"channel": "account"},
            {"channel": "positions", "instType": "ANY"})
PING_S = 15.0          # send "ping" after this long without a frame (OKX: 30 s idle closes)
SILENCE_S = 40.0       # no frame (not even "pong") for this long: the line is dead
_ids = itertools.count(1)


def private_url(url: str) -> str:
    """The private WebSocket URL: `url` as given, or with /ws/v5/private when it names a host only."""
    return url.rstrip("/") + PRIVATE_PATH if urlsplit(url).path in ("", "/") else url


def login_args(api_key: str, secret: bytes, passphrase: str, now_s: int) -> dict:
    ts = str(now_s)
    return {"apiKey": api_key, "passphrase": passphrase, "timestamp": ts,
            "sign": sign(secret, ts + "GET" + "/users/self/verify")}


class LoginFailed(Exception):
    """The venue refused login or a subscription: its code and message."""


class _Conn(WsReader):
    """One connection: its reader thread and the requests awaiting answers."""

    thread_name = "okx-private-read"

    def __init__(self, url: str, timeout_s: float, on_push, on_bad, wake: threading.Event):
        super().__init__(url, timeout_s, SILENCE_S, on_bad, wake)
        self.on_push = on_push
        self.sent = self.heard
        self._events: collections.deque = collections.deque(maxlen=64)   # login / subscribe / error events
        self._event_cv = threading.Condition()
        self._send_lock = threading.Lock()
        self._start_reading()

    def send(self, text: str) -> None:
        with self._send_lock:
            self.ws.send(text)
            self.sent = time.monotonic()

    def expect(self, event: str, n: int, timeout_s: float) -> list[dict]:
        """Wait for `n` events named `event`; an `error` event first raises LoginFailed."""
        deadline = time.monotonic() + timeout_s
        got: list[dict] = []
        with self._event_cv:
            while len(got) < n:
                while self._events:
                    ev = self._events.popleft()
                    if ev.get("event") == "error":
                        raise LoginFailed(f"{ev.get('code')}: {ev.get('msg')}")
                    if ev.get("event") == event:
                        if event == "login" and str(ev.get("code", "0")) != "0":
                            raise LoginFailed(f"{ev.get('code')}: {ev.get('msg')}")
                        got.append(ev)
                if len(got) >= n:
                    break
                left = deadline - time.monotonic()
                if left <= 0 or self.lost.is_set():
                    raise PeerGone(f"no {event} answer ({self.reason or 'timeout'})")
                self._event_cv.wait(min(left, READ_TICK_S))
        return got

    def _send_request(self, rid: str, op: str, args: dict, exp_ms: int) -> None:
        """The request's text to the venue (its slot is in `_pending` already); PeerGone if
        the send failed (the slot is gone then)."""
        msg = {"id": rid, "op": op, "args": [args]}
        if exp_ms:
            msg["expTime"] = str(time.time_ns() // 1_000_000 + exp_ms)
        try:
            self.send(orjson.dumps(msg).decode())
        except (OSError, websocket.WebSocketException) as e:
            self._pending.pop(rid, None)
            raise PeerGone(f"{op}: not sent ({type(e).__name__})") from None

    def request(self, op: str, args: dict, timeout_s: float, exp_ms: int = 0) -> list:
        """Send one order-entry request; its answer's data (OkxRefused / PeerGone as REST).
        `exp_ms` > 0: `expTime` that many ms from now (docs: "Overview > Transaction timeouts")."""
        rid = f"{op[0]}{next(_ids)}"          # alphanumeric, at most 32 characters
        slot = [threading.Event(), None]
        self._pending[rid] = slot
        self._send_request(rid, op, args, exp_ms)
        if not slot[0].wait(timeout_s):
            self._pending.pop(rid, None)
            raise PeerGone(f"{op}: no answer in {timeout_s}s; outcome unknown")
        if slot[1] is None:
            raise PeerGone(f"{op}: connection lost ({self.reason}); outcome unknown")
        return answer(200, slot[1], f"ws {op}")

    def request_nowait(self, op: str, args: dict, timeout_s: float, exp_ms: int, on_outcome) -> None:
        """`request` without waiting: `on_outcome(data | OkxRefused | PeerGone)` runs once, on
        the reader thread (the answer; no answer within `timeout_s`, looked for after every
        frame and every READ_TICK_S; the connection lost), or on this thread, before this
        raises PeerGone, when the send failed."""
        rid = f"{op[0]}{next(_ids)}"
        self._pending[rid] = [None, None, on_outcome, 0, time.monotonic() + timeout_s, op]   # see WsReader
        if self.lost.is_set():               # lost before we registered: nothing will answer it
            self._pending.pop(rid, None)
            raise PeerGone(f"{op}: connection lost ({self.reason}); not sent")
        self._send_request(rid, op, args, exp_ms)

    def _run(self, slot: list, raw) -> None:
        """Run a `request_nowait` callback with its answer's data, or what went wrong."""
        if isinstance(raw, PeerGone):
            out = raw
        else:
            try:
                out = answer(200, raw, f"ws {slot[5]}")
            except (OkxRefused, PeerGone) as e:
                out = e
        try:
            slot[2](out)
        except Exception as e:  # a bug in a handler must not stop the reader
            self.on_bad(raw if isinstance(raw, bytes) else b"", f"answer handler failed: {type(e).__name__}: {e}")

    def _on_idle(self, now: float) -> None:
        self._reap(now)
        if now - max(self.heard, self.sent) > PING_S:
            try:
                self.send("ping")
            except (OSError, websocket.WebSocketException) as e:
                self._end(f"ping failed: {type(e).__name__}")

    def _on_frame(self, data: bytes) -> None:
        if data == b"pong":
            return
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            self.on_bad(data, f"not JSON: {e}")
            return
        if not isinstance(msg, dict):
            self.on_bad(data, f"not an object: {type(msg).__name__}")
            return
        rid = str(msg.get("id"))
        if ("op" in msg and "id" in msg) or (msg.get("event") == "error" and rid in self._pending):
            slot = self._pending.pop(rid, None)   # an answer (an error event too: refused); one that
            if slot is not None:                   # comes after its request gave up is dropped: the
                slot[1] = data                     # order was queried meanwhile
                if slot[0] is not None:
                    slot[0].set()
                else:
                    self._run(slot, data)
            self._reap(time.monotonic())
            return
        if "data" in msg and isinstance(msg.get("arg"), dict):
            data_list = msg["data"]
            if not isinstance(data_list, list):
                self.on_bad(data, "data is not a list")
                return
            self.on_push(str(msg["arg"].get("channel", "")), data_list, data)
            return
        ev = msg.get("event")
        if ev == "notice":
            self.notice = str(msg.get("code", "notice"))
            self.wake.set()
            return
        if ev in ("login", "subscribe", "unsubscribe", "error", "channel-conn-count"):
            with self._event_cv:
                self._events.append(msg)
                self._event_cv.notify_all()
            if ev == "error":
                self.on_bad(data, f"venue error {msg.get('code')}: {msg.get('msg')}")
            return
        self.on_bad(data, "neither a push, an answer nor an event")

    def _unblock(self) -> None:
        self.abort_requests()
        with self._event_cv:
            self._event_cv.notify_all()


class PrivateStream(WsSupervisor):
    """The private connection of one account, kept logged in and subscribed."""

    thread_name = "okx-private"
    labels = {"venue": "okx"}

    def __init__(self, ws_url: str, api_key: str, api_secret: str, passphrase: str, on_push, on_bad, on_state, *,
                 timeout_s: float = 2.0, backoff_s: tuple[float, float] = (0.05, 2.0), dlq=None, telemetry=None,
                 clock_s=None):
        self.url = private_url(ws_url)
        self._key, self._secret, self._passphrase = api_key, api_secret.encode(), passphrase
        self.on_push, self.on_bad, self.on_state = on_push, on_bad, on_state
        self.timeout_s = timeout_s
        super().__init__(backoff_s, dlq, telemetry)
        self._clock_s = clock_s or (lambda: int(time.time()))
        self.conn: _Conn | None = None          # the live, logged-in connection (None: none)
        self._up = threading.Event()            # set while `conn` is one
        self.logins = 0

    def __repr__(self) -> str:  # never show the credentials
        return f"PrivateStream({self.url})"

    def _give_up(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.abort_requests()

    def wait_up(self, timeout_s: float) -> bool:
        """Wait until a connection is logged in and subscribed; False after `timeout_s`."""
        return self._up.wait(timeout_s)

    def request(self, op: str, args: dict, exp_ms: int = 0) -> list:
        """Order entry on the live connection; NotConnected when there is none (use REST)."""
        return self._live().request(op, args, self.timeout_s, exp_ms)

    def request_nowait(self, op: str, args: dict, exp_ms: int, on_outcome) -> None:
        """`request` whose outcome goes to `on_outcome` (`_Conn.request_nowait`); NotConnected
        (nothing sent, nothing called) when there is no connection."""
        self._live().request_nowait(op, args, self.timeout_s, exp_ms, on_outcome)

    def _live(self) -> _Conn:
        conn = self.conn
        if conn is None or conn.lost.is_set():
            raise NotConnected("no logged-in private connection")
        return conn

    def _run(self) -> None:
        backoff = self.backoff_min
        try:
            while not self._stop.is_set():
                conn = self._open()
                if conn is None:
                    backoff = self._pause(backoff)
                    continue
                backoff = self.backoff_min
                self.conn = conn
                self._up.set()
                self.on_state(UserStreamConnected())
                self._wait(conn, math.inf)
                while conn.notice and not (self._stop.is_set() or conn.lost.is_set()):
                    conn = self._move(conn)          # the venue closes this one soon
                    self._wait(conn, math.inf)
                self._up.clear()
                self.conn = None
                if self._stop.is_set():
                    conn.close()
                    break
                self.on_state(UserStreamDisconnected(conn.reason))
                conn.close()
                if self.tel is not None:
                    self.tel.inc("exec.stream.reconnects", venue="okx")
                self._stop.wait(backoff)
        finally:
            self._up.clear()
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def _move(self, old: _Conn) -> _Conn:
        """Make before break (notice 64008): log in and subscribe on a new connection, make it
        the live one (UserStreamConnected: the engine reconciles what the switch may hide),
        then close the old one; the engine drops duplicates the overlap brings. Returns the
        new connection, or the old one (its notice cleared) when none could be opened: it
        then runs until the venue closes it."""
        new = self._open()
        if new is None:
            old.notice = ""
            self._stop.wait(self.backoff_max)
            return old
        self.conn = new
        if self.tel is not None:
            self.tel.inc("exec.stream.rotations", venue="okx", reason=f"notice {old.notice}")
        self.on_state(UserStreamConnected())
        old.close()
        return new

    def _open(self) -> _Conn | None:
        try:
            conn = _Conn(self.url, self.timeout_s, self.on_push, self.on_bad, self._wake)
        except (OSError, websocket.WebSocketException) as e:
            self._failed(f"connect: {type(e).__name__}: {e}")
            return None
        try:
            args = login_args(self._key, self._secret, self._passphrase, self._clock_s())
            conn.send(orjson.dumps({"op": "login", "args": [args]}).decode())
            conn.expect("login", 1, self.timeout_s)
            conn.send(orjson.dumps({"op": "subscribe", "args": list(CHANNELS)}).decode())
            conn.expect("subscribe", len(CHANNELS), self.timeout_s)
        except (PeerGone, LoginFailed, OkxRefused, OSError, websocket.WebSocketException) as e:
            self._failed(f"login/subscribe: {type(e).__name__}: {e}")
            conn.close()
            return None
        self.logins += 1
        return conn


class NotConnected(PeerGone):
    """WS order entry was asked for while no private connection is logged in: nothing was sent."""
