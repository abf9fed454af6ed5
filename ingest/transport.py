"""Network I/O of one ingest process: the WebSocket, read by the loop thread; REST in a thread.

WebSocket (websocket-client only; `WsFeed`): a connector thread connects (DNS, TCP,
TLS, handshake, subscribe frames: what blocks) and hands the open connection to the
ingest loop through the inbox; the loop thread then reads it itself, polling its
socket beside a `Waker` (an eventfd the other threads set), so a frame reaches the
adapter without a thread hand-off. The loop pings an idle line (OKX: text "ping";
Kraken: its ping event; others: a protocol ping) and drops a connection that sent no
data frame (text or binary: a pong or ping is no data) past the watchdog; liveness
per stream kind is the process's (`ingest.liveness`). Any failure reconnects with capped exponential backoff and full
jitter, without a retry limit. `recv_ns` is `time.time_ns()` taken right after a
frame was read. The socket is read in chunks (`ChunkedWebSocket`): one system call brings
every frame the venue sent since the last read, not three system calls a frame.

REST (http.client; `SnapshotFetcher`): one kept-alive connection with timeouts,
reopened after a failure, in a thread that appends `(recv_ns, SnapshotReply)` to the
process's inbox (a deque; append/popleft are atomic) and sets the waker. The ingest
loop owns every piece of state.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import select
import ssl
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import websocket

log = logging.getLogger("ingest.transport")


class Opened:
    """The WebSocket `ws` of `feed` is connected and subscribed (`first`: the first time)."""

    __slots__ = ("first", "url", "ws", "feed")

    def __init__(self, first: bool, url: str, ws=None, feed=None):
        self.first = first
        self.url = url
        self.ws = ws
        self.feed = feed


class Closed:
    """The WebSocket of `feed` went away (`reason`); a reconnect follows after a backoff."""

    __slots__ = ("reason", "feed")

    def __init__(self, reason: str, feed=None):
        self.reason = reason
        self.feed = feed


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


class Waker:
    """A wake-up other threads give the loop thread: an eventfd it polls beside the socket."""

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def set(self) -> None:
        try:
            os.eventfd_write(self.fd, 1)
        except (OSError, ValueError):   # closed (fd -1): the process is stopping
            pass

    def clear(self) -> None:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


READ_CHUNK = 65536   # bytes asked of the socket at once


class ChunkedWebSocket(websocket.WebSocket):
    """websocket-client's WebSocket, reading its socket a chunk at a time.

    Its frame reader asks `_recv` for exactly the bytes it needs next (the 2 header bytes,
    the extended length, the payload: three `recv` system calls a frame); here `_recv` serves
    them from one read of up to READ_CHUNK bytes. Bursts of 30 frames of 150-300 bytes over a
    socket pair: 6.2-6.9 us of CPU a frame against 11.2-12.5 (2026-12-02, load ~5). `buffered()`: bytes read and not yet handed out, which poll() cannot see.
    The handshake reads the socket itself, a byte at a time, so nothing of it lands here.
    `_recv` is websocket-client's own (its frame buffer's byte source, 1.7 to 1.9; pinned <2
    in pyproject.toml); tests/ingest/test_transport.py fails if it stops being called.
    """

    def __init__(self, *args, **kwargs):
        self._chunk = b""
        self._at = 0
        super().__init__(*args, **kwargs)

    def buffered(self) -> int:
        return len(self._chunk) - self._at

    def _recv(self, bufsize: int) -> bytes:
        if self._at >= len(self._chunk):
            data = super()._recv(READ_CHUNK)   # blocks (the socket's timeout) as the unchunked read did
            if len(data) <= bufsize:           # no more than was asked for: no copy
                return data
            self._chunk, self._at = data, 0
        at = self._at
        out = self._chunk[at:at + bufsize]
        self._at = at + len(out)
        return out


class WsFeed:
    """The WebSocket of one ingest process: connected by a thread, READ BY THE LOOP THREAD.

    A connector thread does what blocks (DNS, TCP, TLS, the handshake, the subscribe
    frames) and hands the open connection over as `Opened(first, url, ws)` through
    `post` (the process's inbox); a failed attempt posts `Closed(reason)`, waits a
    backoff and tries again, without limit. The loop thread adopts the connection
    (`adopt`) and from then on reads it itself (`next_frame`): a frame goes from the socket
    to the adapter with no thread hand-off (a reader thread cost ~0.3 ms a frame in
    GIL and wake-up hand-offs, measured on the simulator). `tick` sends keep-alive
    pings on an idle line and drops a connection silent past the watchdog; losing
    the connection (`lose`) asks the connector for a new one after a backoff.
    """

    def __init__(self, url: str, post, *, subscribe=(), ping_text: str | None = None,
                 ping_interval_s: float = 15.0, watchdog_s: float = 30.0,
                 connect_timeout_s: float = 10.0, backoff: Backoff | None = None,
                 name: str = "ws", read_timeout_s: float = 0.2, kinds=()):
        self.url = url
        self.kinds = tuple(kinds)      # the stream kinds this connection carries (the process's)
        self.post = post
        self.subscribe = list(subscribe)
        self.ping_text = ping_text
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s   # at most this long for the rest of a started frame
        self.backoff = backoff or Backoff()
        self.name = name
        self.ws: websocket.WebSocket | None = None   # the adopted connection (loop thread)
        self._poll = select.poll()
        self._fd = -1
        self.last_rx = 0.0
        self.last_ping = 0.0
        self.got_data = False
        self.connects = 0
        self.failures = 0                      # connect / subscribe attempts that failed
        self.last_error = ""
        self.frames = 0
        self._want = threading.Event()         # the connector should connect (again)
        self._want.set()
        self._delay = 0.0                      # ... after this backoff
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._connector, name=f"{name}.connect", daemon=True)

    # -- the connector thread --------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _connector(self) -> None:
        while not self._halt.is_set():
            self._want.wait()
            delay, self._delay = self._delay, 0.0
            if delay:
                self._halt.wait(delay)
            if self._halt.is_set():
                break
            try:
                ws = websocket.create_connection(self.url, timeout=self.connect_timeout_s,
                                                 skip_utf8_validation=True, class_=ChunkedWebSocket)
            except (websocket.WebSocketException, OSError) as exc:
                self._retry_later(f"connect failed: {type(exc).__name__}: {exc}")
                continue
            try:
                for text in self.subscribe:
                    ws.send(text)
            except (websocket.WebSocketException, OSError) as exc:
                _close(ws)
                self._retry_later(f"subscribe failed: {type(exc).__name__}: {exc}")
                continue
            if self._halt.is_set():
                _close(ws)
                break
            self._want.clear()
            self.connects += 1
            self.post(Opened(self.connects == 1, self.url, ws, self))

    def _retry_later(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        self.post(Closed(reason, self))
        delay = self.backoff.next_delay()
        log.warning("%s: %s; reconnecting in %.2fs", self.name, reason, delay)
        self._halt.wait(delay)

    # -- the loop thread -------------------------------------------------------------

    def adopt(self, ws) -> None:
        """Read `ws` from now on (the loop thread, on Opened)."""
        if self.ws is not None:
            self._drop()
        ws.settimeout(self.read_timeout_s)
        self.ws = ws
        self._fd = ws.sock.fileno()
        self._poll.register(self._fd, select.POLLIN)
        self.last_rx = self.last_ping = time.monotonic()
        self.got_data = False

    def fileno(self) -> int:
        """The socket to poll (-1: none adopted)."""
        return self._fd

    def next_frame(self):
        """(recv_ns, frame bytes) of a frame already received, or None (none, or the
        connection was lost: `lose` then told the process through `post(Closed)`)."""
        ws = self.ws
        if ws is None:
            return None
        try:
            while ws.buffered() or self._poll.poll(0) or _tls_pending(ws.sock):
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    return None    # a frame started but its rest is late: read on next turn
                if opcode == _TEXT or opcode == _BINARY:
                    self.last_rx = time.monotonic()     # data only: a pong proves no data flows
                    self.frames += 1
                    if not self.got_data:
                        self.got_data = True
                        self.backoff.reset()
                    return time.time_ns(), data
                if opcode == _CLOSE:
                    self.lose("closed by the venue")
                    return None
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            self.lose(f"{type(exc).__name__}: {exc}")
        return None

    def tick(self) -> None:
        """Keep-alive ping on an idle line; drop a connection with no data past the watchdog."""
        ws = self.ws
        if ws is None:
            return
        now = time.monotonic()
        idle = now - self.last_rx
        if idle > self.watchdog_s:
            self.lose(f"watchdog: no data frame for {idle:.1f}s")
            return
        if idle > self.ping_interval_s and now - self.last_ping > self.ping_interval_s:
            self.last_ping = now
            try:
                if self.ping_text is not None:
                    ws.send(self.ping_text)
                else:
                    ws.ping()
            except (websocket.WebSocketException, OSError) as exc:
                self.lose(f"ping failed: {type(exc).__name__}: {exc}")

    def send(self, text: str) -> bool:
        """Send a text frame (loop thread); False when not connected."""
        if self.ws is None:
            return False
        try:
            self.ws.send(text)
            return True
        except (websocket.WebSocketException, OSError) as exc:
            self.lose(f"send failed: {type(exc).__name__}: {exc}")
            return False

    def lose(self, reason: str) -> None:
        """Close the connection and ask the connector for a new one after a backoff."""
        if self.ws is None:
            return
        self._drop()
        self.post(Closed(reason, self))
        self._delay = delay = self.backoff.next_delay()
        log.warning("%s: %s; reconnecting in %.2fs", self.name, reason, delay)
        self._want.set()

    def _drop(self) -> None:
        ws, self.ws = self.ws, None
        try:
            self._poll.unregister(self._fd)
        except (KeyError, ValueError):
            pass
        self._fd = -1
        _close(ws)

    def stop(self) -> None:
        self._halt.set()
        self._want.set()
        if self.ws is not None:
            self._drop()


_TEXT, _BINARY, _CLOSE = websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CLOSE


def _tls_pending(sock) -> int:
    """Bytes a TLS socket decrypted already (poll does not see them); 0 for plain TCP."""
    pending = getattr(sock, "pending", None)
    return pending() if pending is not None else 0


def _close(ws) -> None:
    try:
        ws.close(timeout=0.2)
    except Exception:  # noqa: BLE001 - the socket may already be gone
        pass


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
