"""Binance spot order entry over the WebSocket API: `order.place`, `order.cancel`, `order.status`.

    WS  <ws_url>  (wss://ws-api.binance.com:443/ws-api/v3), its own connection (not the user stream's)
    ->  {"id": 7, "method": "order.place", "params": {"symbol", "side", "type", "timeInForce", "quantity",
         "price", "newClientOrderId", "newOrderRespType": "FULL", "apiKey", "recvWindow", "timestamp",
         "signature"}}
    <-  {"id": 7, "status": 200, "result": {<the order object of POST /api/v3/order>},
         "rateLimits": [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100,
                         "count": 3}, ..., {"rateLimitType": "REQUEST_WEIGHT", ...}]}
    <-  {"id": 7, "status": 400, "error": {"code": -2010, "msg": "..."}, "rateLimits": [...]}

Every request is signed on its own (no `session.logon`: that takes Ed25519 keys only): `apiKey`,
`timestamp`, `recvWindow`, then `signature` = hex HMAC-SHA256 of every other param sorted by
name, `name=value` joined by `&`, values as sent. Request ids count up per session; an answer is
matched to its request by id, so requests of several worker threads share one connection.

A placement does not wait for its answer (`call(..., wait=False)`): the worker thread hands the
request to the connection and goes on to the next order, and the connection's reader thread
turns the answer into venue events (an answer that does not come within `timeout_s` becomes an
unknown outcome there, checked at least every READ_TICK_S). A worker waiting for each answer
held every order queued behind it for the venue's round trip (bench tick2trade at 10k events/s:
venue_send p99 6.5-123 ms with waiting workers, the simulator's answers taking 8-68 ms at p50).
Cancels, queries and amends still wait for their answers, and each first waits for its order's
placement to be answered (`WsOrderEntry.settle`), so none overtakes it.
What we rely on, and as of when: ../PROTOCOL.md, "WebSocket order entry".

Outcomes, by cause (the same as rest.py's, so the adapter turns them into the same events):

    status 200                                  -> Answer (result, stamps)
    4xx (400, 403, 409, 418, 429)               -> BinanceRefused: the venue said no (429/418 carry
                                                   `retryAfter`, kept in `retry_after_ms`)
    5xx, codes -1006/-1007, no answer within    -> PeerGone: the outcome is UNKNOWN (query by client
    `timeout_s`, the connection lost after the     order id; never send again)
    request was handed to it, a send that failed
    no connection up when the request is made   -> NotSent: the venue never saw it (the caller
                                                   may take REST)

A supervisor thread keeps one connection open: it reconnects after a loss (backoff 0.05 s
doubling to 2 s), and moves to a new connection `lifetime_s` after one opened (Binance ends
them at 24 h; default 23 h) and on `serverShutdown`, make before break: new requests go to the
new connection at once, the old one is closed once its requests are answered (or `timeout_s`
later: those become unknown outcomes). `rateLimits` of every answer are kept (`limits`) and
told to telemetry as gauges `exec.wsapi.rate_limit{type, interval}`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
import time
from dataclasses import dataclass

import orjson
import websocket

from events import PeerGone
from venues.trading import VenueOrderNotFound, VenueOutcomeUnknown, VenueRequestRefused
from venues.wsreader import READ_TICK_S
from venues.wssupervisor import WsSupervisor

from .rest import NO_SUCH_ORDER, STATUS_UNKNOWN_CODES, BinanceRefused, NotSent, duplicate_refusal
from .userstream import LIFETIME_S, SILENCE_S, _Conn, split_frame, ws_api_url

ORDER_RESP_TYPE = "FULL"     # the reply carries the fills: the same order object as REST's
REAP_S = 0.05                # how often the reader looks for placements past their deadline


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sign(params: dict, api_key: str, secret: bytes, timestamp_ms: int, recv_window_ms: int) -> dict:
    """`params` with apiKey, recvWindow, timestamp and their HMAC-SHA256 `signature` (see above)."""
    out = {**params, "apiKey": api_key, "recvWindow": recv_window_ms, "timestamp": timestamp_ms}
    payload = "&".join(f"{k}={_text(out[k])}" for k in sorted(out))
    out["signature"] = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    return out


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 answer: its `result`, the signed `timestamp_ms`, and when the request was handed to
    the connection / its answer read (time.time_ns())."""

    result: object
    timestamp_ms: int
    sent_ns: int
    replied_ns: int


class _OrderConn(_Conn):
    """One WebSocket API connection for orders (the user stream's reader, answers matched by id).

    `call` runs its `on_reply(reply, sent_ns)` exactly once: on the reader thread with the
    answer (so an answer reaches execution without waking the caller first), else with a
    PeerGone when no answer can come: on the caller's thread when it waits (`wait=True`), on
    the reader's when it does not (no answer by the deadline: the reader checks on every frame
    and every READ_TICK_S; the connection lost: whoever ended it). Whoever pops the request from
    `_pending` owns it. `sent_ns`: time.time_ns() right before the text went to the WebSocket.
    """

    def call(self, rid: int, text: str, method: str, timeout_s: float, on_reply, wait: bool = True) -> None:
        # [answered Event (None: nobody waits), reply, on_reply, sent_ns, deadline (monotonic), method]
        slot = [threading.Event() if wait else None, None, on_reply, 0, time.monotonic() + timeout_s, method]
        self._pending[rid] = slot
        if self.lost.is_set():              # lost before we registered: nothing left, say so
            self._pending.pop(rid, None)
            raise NotSent(f"{method}: connection lost ({self.reason}); not sent")
        slot[3] = time.time_ns()
        try:
            self.ws.send(text)
        except (OSError, websocket.WebSocketException) as e:   # some bytes may have left: unknown
            if self._pending.pop(rid, None) is not None:
                on_reply(PeerGone(f"{method}: send failed ({type(e).__name__}); outcome unknown"), slot[3])
                return
        if not wait:
            return                                             # the reader (or whoever ends it) answers
        if not slot[0].wait(timeout_s):
            if self._pending.pop(rid, None) is not None:      # ours: no answer will be handled
                on_reply(PeerGone(f"{method}: no answer in {timeout_s:g}s; outcome unknown"), slot[3])
                return
            slot[0].wait()                                     # the reader took it: being handled
        if slot[1] is None:                                    # taken by abort_requests: lost
            on_reply(PeerGone(f"{method}: connection lost ({self.reason}); outcome unknown"), slot[3])

    def _on_frame(self, data: bytes) -> None:
        kind, body = split_frame(data)
        if kind != "answer":
            super()._on_frame(data)
        else:
            slot = self._pending.pop(body["id"], None)
            if slot is not None:                               # None: its caller gave up, unknown already
                slot[1] = body
                self._run(slot, body, data)
        self._on_idle(time.monotonic())

    def _run(self, slot: list, reply, raw: bytes = b"") -> None:
        try:
            slot[2](reply, slot[3])
        except Exception as e:  # a bug in a handler must not stop the reader
            self.on_bad(raw, f"answer handler failed: {type(e).__name__}: {e}")
        finally:
            if slot[0] is not None:
                slot[0].set()

    _reap_at = 0.0     # monotonic time of the next look for requests past their deadline

    def _on_idle(self, now: float) -> None:
        """The requests nobody waits for whose deadline passed: unknown outcomes (reader thread:
        after every frame and every READ_TICK_S without one; looked for at most every REAP_S)."""
        if now < self._reap_at:
            return
        self._reap_at = now + REAP_S
        self._reap(now)

    def idle(self) -> bool:
        return not self._pending


class WsApiSession(WsSupervisor):
    """One order-entry session on the Binance spot WebSocket API (see the module docstring).

    `request` may be called from any thread; `up` says whether a request made now would be sent.
    """

    thread_name = "binance-wsapi"
    failed_metric, failed_dlq = "exec.wsapi.down", "wsapi_down"

    def __init__(self, ws_url: str, api_key: str, api_secret: str, *, recv_window_ms: int = 5000,
                 timeout_s: float = 2.0, lifetime_s: float = LIFETIME_S, silence_s: float = SILENCE_S,
                 backoff_s: tuple[float, float] = (0.05, 2.0), dlq=None, telemetry=None, clock_ms=None):
        self.url = ws_api_url(ws_url)
        self._key, self._secret = api_key, api_secret.encode()
        self.recv_window_ms, self.timeout_s = recv_window_ms, timeout_s
        self.lifetime_s, self.silence_s = lifetime_s, silence_s
        super().__init__(backoff_s, dlq, telemetry)
        self.now_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._ids = itertools.count(1)
        self._conn: _OrderConn | None = None
        self._changed = threading.Condition()   # notified when a connection is up
        self.connects = 0          # connections opened
        self.rotations = 0         # make-before-break moves (lifetime, serverShutdown)
        self.limits: dict[tuple[str, str, int], tuple[int, int]] = {}   # (type, interval, n) -> (count, limit)
        self.retry_after_ms = 0    # from the last 429/418 answer (0: none)

    def __repr__(self) -> str:  # never show the credentials
        return f"WsApiSession({self.url})"

    @property
    def up(self) -> bool:
        c = self._conn
        return c is not None and not c.lost.is_set()

    def _give_up(self) -> None:
        c = self._conn
        if c is not None:
            c.abort_requests()

    def wait_up(self, timeout_s: float) -> bool:
        """Wait until a connection is up (start-up, tests); True if it is."""
        with self._changed:
            return self._changed.wait_for(lambda: self.up, timeout_s)

    def _set_conn(self, conn: _OrderConn | None) -> None:
        with self._changed:
            self._conn = conn
            self._changed.notify_all()

    # -- requests ------------------------------------------------------------------------

    def request(self, method: str, params: dict, *, timestamp_ms: int | None = None) -> Answer:
        """Sign and send one request, wait for its outcome: an Answer, else raise (see the module
        docstring)."""
        box: list = []
        self.call(method, params, lambda out, _sent_ns: box.append(out), timestamp_ms=timestamp_ms)
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def call(self, method: str, params: dict, on_outcome, *, timestamp_ms: int | None = None,
             wait: bool = True) -> None:
        """Sign and send one request; `on_outcome(Answer | BinanceRefused | PeerGone, sent_ns)` runs
        once (`sent_ns`: time.time_ns() right before the request went to the WebSocket), on the
        connection's reader thread when the answer comes. `wait`: this returns after the outcome;
        else as soon as the request was handed to the connection. Raises NotSent (and runs
        nothing) when no connection is up."""
        conn = self._conn
        if conn is None or conn.lost.is_set():
            raise NotSent(f"{method}: WebSocket API session down ({self.last_error or 'not connected'}); not sent")
        ts = self.now_ms() if timestamp_ms is None else timestamp_ms
        rid = next(self._ids)
        text = orjson.dumps({"id": rid, "method": method,
                             "params": sign(params, self._key, self._secret, ts, self.recv_window_ms)}).decode()

        def on_reply(reply, sent_ns: int) -> None:
            out = reply if isinstance(reply, PeerGone) else self._outcome(method, reply, ts, sent_ns)
            on_outcome(out, sent_ns)

        conn.call(rid, text, method, self.timeout_s, on_reply, wait)

    def _outcome(self, method: str, reply: dict, ts: int, sent_ns: int):
        """An answer's outcome: Answer (200), PeerGone (unknown) or BinanceRefused."""
        replied_ns = time.time_ns()
        self._note_limits(reply.get("rateLimits"))
        status = reply.get("status")
        if status == 200:
            return Answer(reply.get("result"), ts, sent_ns, replied_ns)
        err = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        try:
            code = int(err.get("code", 0))
        except (TypeError, ValueError):
            code = 0
        msg = str(err.get("msg", ""))
        if not isinstance(status, int) or status >= 500 or code in STATUS_UNKNOWN_CODES:
            return PeerGone(f"{method}: status {status}, code {code}: {msg}; outcome unknown")
        if status in (418, 429):
            data = err.get("data") if isinstance(err.get("data"), dict) else {}
            self.retry_after_ms = int(data.get("retryAfter") or reply.get("retryAfter") or 0)
            if self.tel is not None:
                self.tel.inc("exec.wsapi.rate_limited", status=str(status))
        return BinanceRefused(status, code, msg, method)

    def _note_limits(self, limits) -> None:
        if not isinstance(limits, list):
            return
        for lim in limits:
            try:
                key = (str(lim["rateLimitType"]), str(lim["interval"]), int(lim["intervalNum"]))
                self.limits[key] = (int(lim["count"]), int(lim["limit"]))
            except (KeyError, TypeError, ValueError):
                continue
            if self.tel is not None:
                self.tel.gauge("exec.wsapi.rate_limit", self.limits[key][0], type=key[0],
                               interval=f"{key[2]}{key[1]}")

    # -- the supervisor ------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_min
        try:
            while not self._stop.is_set():
                conn = self._conn
                if conn is None:
                    conn = self._open()
                    if conn is None:
                        backoff = self._pause(backoff)
                        continue
                    backoff = self.backoff_min
                    self._set_conn(conn)
                self._wait(conn, conn.opened + self.lifetime_s)   # lost, notice or lifetime
                if self._stop.is_set():
                    break
                if conn.lost.is_set():
                    self._set_conn(None)
                    self._failed(f"connection lost: {conn.reason}")
                    conn.close()
                    self._stop.wait(backoff)
                    continue
                why = conn.notice or "lifetime"
                new = self._open()
                if new is None:
                    backoff = self._pause(backoff)
                    continue
                self._set_conn(new)       # new requests go here from now on
                self.rotations += 1
                if self.tel is not None:
                    self.tel.inc("exec.wsapi.rotations", reason=why)
                self._retire(conn)
        finally:
            c = self._conn
            self._set_conn(None)
            if c is not None:
                c.close()

    def _open(self) -> _OrderConn | None:
        try:
            conn = _OrderConn(self.url, self.timeout_s, self.silence_s, self._on_event, self._on_bad, self._wake)
        except (OSError, websocket.WebSocketException) as e:
            self._failed(f"connect: {type(e).__name__}: {e}")
            return None
        self.connects += 1
        if self.tel is not None:
            self.tel.inc("exec.wsapi.connects")
        return conn

    def _retire(self, old: _OrderConn) -> None:
        """Close `old` once its requests are answered, or `timeout_s` from now."""
        end = time.monotonic() + self.timeout_s
        while not old.idle() and not old.lost.is_set() and time.monotonic() < end and not self._stop.is_set():
            time.sleep(0.01)
        old.close()

    def _on_event(self, ev: dict, raw: bytes) -> None:
        if self.tel is not None:   # no subscription here: nothing but connection events is expected
            self.tel.inc("exec.wsapi.ignored_events", event=str(ev.get("e"))[:32])

    def _on_bad(self, raw: bytes, error: str) -> None:
        if self.dlq is not None:
            self.dlq.put("bad_wsapi_frame", priority="high", raw=raw, error=error)


class WsOrderEntry:
    """The adapter's WebSocket path: place, cancel and query jobs (run on the adapter's worker
    threads, one order's jobs on one thread) -> the venue events the REST path emits.

    A placement is handed to the connection and not waited for (its outcome comes on the
    reader thread); every other request of an order, on either path, first waits for its
    placement's outcome (`settle`: the adapter calls it before a REST cancel, query or amend),
    so none overtakes it. Each method returns False, having sent nothing, when the session is
    down: the adapter then takes REST for that request. Once a request was handed to the
    connection it is never sent again, on either path: no usable answer is a
    VenueOutcomeUnknown, resolved by a query. `reports(vcoid, action, order_object, source)`
    and `sent(vcoid, stamps, sent_ns, replied_ns, path)` are the adapter's
    (parse.order_response, telemetry). A market's own entry (USD-M) says how a placement is
    sent (`place_params`) and what refusal means a duplicate (`duplicate`).
    """

    source = "ws"

    def __init__(self, session: WsApiSession, emit, reports, sent):
        self.session, self.emit, self.reports, self.sent = session, emit, reports, sent
        self.fallbacks = 0     # requests that took REST: the session was down
        self._placing: dict[str, threading.Event] = {}   # vcoid -> set once its placement's outcome is out

    def settle(self, vcoid: str) -> None:
        """Wait until the placement of `vcoid` sent here (if any) has its outcome: its answer,
        or an unknown outcome `timeout_s` (and at most a reader tick) after it left."""
        ev = self._placing.get(vcoid)
        if ev is not None:
            ev.wait(self.session.timeout_s + 2 * READ_TICK_S)

    def place_params(self, params: dict) -> dict:
        """The `order.place` params of the REST placement `params`."""
        return {**params, "newOrderRespType": ORDER_RESP_TYPE}

    def duplicate(self, e: BinanceRefused) -> bool:
        """A placement refused as `e`: its client order id is taken (an earlier placement landed)."""
        return duplicate_refusal(e.code, e.msg)

    def place(self, vcoid: str, params: dict, stamps: tuple) -> bool:
        ts = self.session.now_ms()
        placed = self._placing[vcoid] = threading.Event()

        def done(out, sent_ns: int) -> None:
            try:
                self._placed(vcoid, stamps, ts, out, sent_ns)
            finally:
                if self._placing.get(vcoid) is placed:
                    del self._placing[vcoid]
                placed.set()

        if not self._call("place", "order.place", self.place_params(params), done, ts, wait=False):
            del self._placing[vcoid]
            placed.set()
            return False
        return True

    def _placed(self, vcoid: str, stamps: tuple, ts: int, out, sent_ns: int) -> None:
        """A placement's outcome -> its venue events, then telemetry (`exec.order.sent`)."""
        if isinstance(out, Answer):
            self.reports(vcoid, "place", out.result, self.source)
            self.sent(vcoid, stamps, sent_ns, out.replied_ns, "ws")
        elif isinstance(out, BinanceRefused):
            self.emit(VenueRequestRefused(vcoid, "place", out.code, out.msg, self.duplicate(out)))
            self.sent(vcoid, stamps, sent_ns, time.time_ns(), "ws")
        else:
            self.emit(VenueOutcomeUnknown(vcoid, "place", str(out), ts))
            self.sent(vcoid, stamps, sent_ns, 0, "ws")

    def cancel(self, vcoid: str, symbol: str) -> bool:
        self.settle(vcoid)

        def done(out, _sent_ns) -> None:
            if isinstance(out, Answer):
                self.reports(vcoid, "cancel", out.result, self.source)
            elif isinstance(out, BinanceRefused):
                self.emit(VenueRequestRefused(vcoid, "cancel", out.code, out.msg))
            else:
                self.emit(VenueOutcomeUnknown(vcoid, "cancel", str(out)))

        return self._call("cancel", "order.cancel", {"symbol": symbol, "origClientOrderId": vcoid}, done)

    def query(self, vcoid: str, symbol: str) -> bool:
        self.settle(vcoid)

        def done(out, _sent_ns) -> None:
            if isinstance(out, Answer):
                self.reports(vcoid, "query", out.result, "query")
            elif isinstance(out, BinanceRefused):
                self.emit(VenueOrderNotFound(vcoid) if out.code == NO_SUCH_ORDER
                          else VenueRequestRefused(vcoid, "query", out.code, out.msg))
            else:
                self.emit(VenueOutcomeUnknown(vcoid, "query", str(out)))

        return self._call("query", "order.status", {"symbol": symbol, "origClientOrderId": vcoid}, done)

    def _call(self, action: str, method: str, params: dict, done, ts: int | None = None, *,
              wait: bool = True) -> bool:
        """Send; `done(outcome, sent_ns)` emits the venue events (on the reader thread when
        answered). False, having sent nothing, when the session is down."""
        try:
            self.session.call(method, params, done, timestamp_ms=ts, wait=wait)
        except NotSent:
            self.fallbacks += 1
            if self.session.tel is not None:
                self.session.tel.inc("exec.wsapi.fallback", action=action)
            return False
        return True
