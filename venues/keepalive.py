"""One keep-alive HTTP(S) connection to a venue's REST base URL: what the Binance and OKX
REST clients share below their signing and reply rules (venues/<venue>/trading/rest.py).

`exchange` sends one request and reads its reply, and says by its outcome whether the venue
can have seen it:

    (HTTP status, body)                      a reply was read
    NotSent (a PeerGone)                     no connection could be opened: the venue never
                                             saw the request
    PeerGone                                 a timeout, a reset, a bad status line after the
                                             request was handed over: the outcome is UNKNOWN

An idle connection (`max_idle_s`, which the server may have closed) is opened anew before
it is used; a reply with `Connection: close` closes it. One instance per thread
(http.client is not thread-safe).
"""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

from events import PeerGone


class NotSent(PeerGone):
    """The connection could not be opened: the request certainly never reached the venue."""


class KeepAliveHttp:
    """A keep-alive connection to one REST base URL (http or https, with a path prefix)."""

    def __init__(self, base_url: str, *, timeout_s: float, max_idle_s: float):
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"REST base URL must be http(s): base_url={base_url!r}")
        self._https = u.scheme == "https"
        self._host, self._port = u.hostname, u.port or (443 if self._https else 80)
        self._prefix = u.path.rstrip("/")
        self.timeout_s = timeout_s
        self.max_idle_s = max_idle_s
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0
        self.requests = 0
        self.sent_ns = 0     # time.time_ns() right before the last request was handed to the connection
        self.replied_ns = 0  # time.time_ns() when its reply was read (0: none)

    def _connection(self) -> http.client.HTTPConnection:
        now = time.monotonic()
        if self._conn is not None and now - self._last_used > self.max_idle_s:
            self.close()  # the server may have closed an idle keep-alive connection
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        self._last_used = now
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def exchange(self, method: str, url: str, what: str, *, headers: dict, body: str | None = None) -> tuple[int, bytes]:
        """Send `method url` (the prefix included) and read the reply: (status, body); NotSent
        or PeerGone as the module docstring says, their messages starting with `what`."""
        conn = self._connection()
        if conn.sock is None:
            try:
                conn.connect()
            except OSError as e:
                self.close()
                raise NotSent(f"{what}: cannot connect ({type(e).__name__}); not sent") from None
        try:
            self.sent_ns, self.replied_ns = time.time_ns(), 0
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            self.replied_ns = time.time_ns()
        except (OSError, http.client.HTTPException) as e:  # timeout, reset, refused, bad status line
            self.close()
            kind = "timeout" if isinstance(e, (socket.timeout, TimeoutError)) else type(e).__name__
            raise PeerGone(f"{what}: no reply ({kind}); outcome unknown") from None
        self.requests += 1
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, raw
