"""Network I/O of one ingest process: a WebSocket reader thread and a REST fetcher thread.

Both threads only move bytes: they append `(recv_ns, item)` to the process's inbox
(a deque; append/popleft are atomic) and set its wake event; the ingest loop owns
every piece of state. `recv_ns` is `time.time_ns()` taken right after the frame was
read. Items: frame bytes, or one of the small event classes below.

WebSocket (websocket-client only): connect, send the subscribe frames, then read
with a short socket timeout so the thread can ping when the line is idle (OKX: text
"ping"; others: a protocol ping) and close a connection that stayed silent past the
watchdog. Any failure reconnects with capped exponential backoff and full jitter,
without a retry limit. REST (http.client): one kept-alive connection with timeouts,
reopened after a failure.
"""

from __future__ import annotations

import http.client
import logging
import random
import ssl
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import websocket

log = logging.getLogger("ingest.transport")


class Opened:
    """The WebSocket is connected and subscribed (`first`: the first time)."""

    __slots__ = ("first", "url")

    def __init__(self, first: bool, url: str):
        self.first = first
        self.url = url


class Closed:
    """The WebSocket went away (`reason`); a reconnect follows after a backoff."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class SnapshotReply:
    """A REST snapshot answer for `venue_symbol`: `body` bytes, or `error` text."""

    __slots__ = ("venue_symbol", "body", "error")

    def __init__(self, venue_symbol: str, body: bytes | None, error: str | None):
        self.venue_symbol = venue_symbol
        self.body = body
        self.error = error


class Backoff:
    """Capped exponential backoff with full jitter: uniform(0, min(cap, base * 2**n))."""

    def __init__(self, base_s: float = 0.25, cap_s: float = 30.0, rng: random.Random | None = None):
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (1 << min(self.attempts, 30)))
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


class WsReader(threading.Thread):
    """One WebSocket connection, kept open forever; frames go to `inbox`. Daemon thread."""

    def __init__(self, url: str, inbox: deque, wake: threading.Event, *, subscribe=(),
                 ping_text: str | None = None, ping_interval_s: float = 15.0,
                 watchdog_s: float = 30.0, connect_timeout_s: float = 10.0,
                 backoff: Backoff | None = None, name: str = "ws", max_backlog: int = 200_000):
        super().__init__(name=name, daemon=True)
        self.url = url
        self.inbox = inbox
        self.wake = wake
        self.subscribe = list(subscribe)
        self.ping_text = ping_text
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff = backoff or Backoff()
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._ws: websocket.WebSocket | None = None
        self.connects = 0
        self.frames = 0
        self.max_backlog = max_backlog  # frames waiting for the loop; past it, drop (books resync)
        self.dropped = 0

    def send(self, text: str) -> bool:
        """Send a text frame if connected (any thread); False when not connected."""
        with self._lock:
            ws = self._ws
        if ws is None:
            return False
        try:
            ws.send(text)
            return True
        except (websocket.WebSocketException, OSError) as exc:
            log.warning("%s: send failed: %s", self.name, exc)
            return False

    def drop(self) -> None:
        """Close the current connection (the thread reconnects): for a silent peer."""
        with self._lock:
            ws = self._ws
        if ws is not None:
            try:
                ws.shutdown()
            except Exception:  # noqa: BLE001 - closing a broken socket may fail any way
                pass

    def stop(self) -> None:
        self._halt.set()
        self.drop()

    def run(self) -> None:
        while not self._halt.is_set():
            reason = self._session()
            if self._halt.is_set():
                break
            self._post(Closed(reason))
            delay = self.backoff.next_delay()
            log.warning("%s: %s; reconnecting in %.2fs", self.name, reason, delay)
            self._halt.wait(delay)

    def _session(self) -> str:
        try:
            ws = websocket.create_connection(self.url, timeout=self.connect_timeout_s,
                                             skip_utf8_validation=True, enable_multithread=True)
        except (websocket.WebSocketException, OSError) as exc:
            return f"connect failed: {type(exc).__name__}: {exc}"
        ws.settimeout(min(1.0, self.ping_interval_s / 2, self.watchdog_s / 2))
        with self._lock:
            self._ws = ws
        self.connects += 1
        self._post(Opened(self.connects == 1, self.url))
        try:
            for text in self.subscribe:
                ws.send(text)
            return self._read(ws)
        except (websocket.WebSocketException, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._ws = None
            try:
                ws.close(timeout=0.2)
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass

    def _read(self, ws) -> str:
        inbox, wake = self.inbox, self.wake
        last_rx = last_ping = time.monotonic()
        got_data = False
        while not self._halt.is_set():
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                idle = now - last_rx
                if idle > self.watchdog_s:
                    return f"watchdog: silent for {idle:.1f}s"
                if idle > self.ping_interval_s and now - last_ping > self.ping_interval_s:
                    last_ping = now
                    if self.ping_text is not None:
                        ws.send(self.ping_text)
                    else:
                        ws.ping()
                continue
            last_rx = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_TEXT or opcode == websocket.ABNF.OPCODE_BINARY:
                if len(inbox) >= self.max_backlog:
                    self.dropped += 1   # the loop is far behind: the sequence checks will resync
                    continue
                inbox.append((time.time_ns(), data))
                wake.set()
                self.frames += 1
                if not got_data:
                    got_data = True
                    self.backoff.reset()
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                return "closed by the venue"
        return "stopped"

    def _post(self, item) -> None:
        self.inbox.append((time.time_ns(), item))
        self.wake.set()


class RestClient:
    """One kept-alive HTTP(S) connection to `base_url` (http.client), with timeouts. One thread."""

    def __init__(self, base_url: str, timeout_s: float = 5.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"REST URL must be http(s)://host[:port]: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base_path = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                                         context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def get(self, path_and_query: str) -> tuple[int, bytes]:
        """GET and return (status, body); one retry on a keep-alive connection that died."""
        for attempt in (0, 1):
            conn = self._connect()
            try:
                conn.request("GET", self.base_path + path_and_query,
                             headers={"Accept": "application/json", "User-Agent": "meltica-ingest"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, body
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.close()
                if attempt:
                    raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SnapshotFetcher(threading.Thread):
    """Fetches REST depth snapshots one at a time, in request order. Daemon thread.

    `path_for(venue_symbol)` gives the path and query; answers go to the inbox as
    SnapshotReply. A symbol already waiting is not queued twice.
    """

    def __init__(self, rest: RestClient, path_for, inbox: deque, wake: threading.Event, *,
                 min_interval_s: float = 0.05, name: str = "rest"):
        super().__init__(name=name, daemon=True)
        self.rest = rest
        self.path_for = path_for
        self.inbox = inbox
        self.wake = wake
        self.min_interval_s = min_interval_s
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._pending: set[str] = set()
        self._halt = False
        self.requests = 0

    def request(self, venue_symbol: str) -> None:
        with self._cond:
            if venue_symbol not in self._pending:
                self._pending.add(venue_symbol)
                self._queue.append(venue_symbol)
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._halt = True
            self._cond.notify()

    def run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._halt:
                    self._cond.wait()
                if self._halt:
                    break
                vs = self._queue.popleft()
            pause = self.min_interval_s - (time.monotonic() - last)
            if pause > 0:
                time.sleep(pause)
            last = time.monotonic()
            self.requests += 1
            try:
                status, body = self.rest.get(self.path_for(vs))
                reply = SnapshotReply(vs, body, None) if status == 200 else \
                    SnapshotReply(vs, None, f"HTTP {status}: {body[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                reply = SnapshotReply(vs, None, f"{type(exc).__name__}: {exc}")
            with self._cond:
                self._pending.discard(vs)
            self.inbox.append((time.time_ns(), reply))
            self.wake.set()
        self.rest.close()
