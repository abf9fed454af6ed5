"""The NATS wire protocol for the market-data hot path: raw batches out and in, without copies.

Measured here (2 cores, `python -m bench bridge`): through nats-py's asyncio client
md-out and md-in moved ~110-130k records/s (768-byte records, 786 KB messages) and
spent their time copying: nats-py builds each PUB as `header + payload + CRLF` (two
copies), asyncio's transport buffers it again, and on the way in the stream reader,
the parser and the message object copy every payload once more. A raw socket did
~840k/s on the same machine. So md-out and md-in speak the (small, documented) client
protocol themselves, https://docs.nats.io/reference/reference-protocols/nats-protocol
as of 2026-12:

    server -> client   INFO {json}, MSG <subject> <sid> [reply] <bytes>, PING, PONG, +OK, -ERR '<text>'
    client -> server   CONNECT {json}, PUB <subject> <bytes>, SUB <subject> <sid>, PING, PONG

- `publish(subject, *buffers)`: one `sendmsg` of the PUB line, the buffers as they are
  (a header and a numpy view of ring records), and CRLF: the kernel copies once.
- `pump(callback, timeout_s)`: `recv_into` one preallocated buffer, and for each whole
  MSG `callback(subject, memoryview of its payload)`, valid during the call only (the
  receiver writes it into its ring from there).
- PING is answered with PONG by both (the server closes a client that does not);
  -ERR is logged and counted (a permission violation on a subject is one); a lost
  connection is `NatsWireError` from either call: the caller reconnects
  (`connect` tries every server URL, as nats-py does) and subscribes again.

Auth: user and password in CONNECT (bridge.config's users); TLS when the server's INFO
requires it (the system's CA store, or `tls_ca`). Everything else of NATS (JetStream,
request/reply, headers) stays with nats-py in the rest of the bridge.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import time
from urllib.parse import urlparse

import orjson

from events.errors import MelticaError

log = logging.getLogger("bridge.wire")

CRLF = b"\r\n"
RECV_BYTES = 16 << 20      # the receive buffer: two largest batches and then some
SOCK_BUFFER = 4 << 20      # SO_SNDBUF / SO_RCVBUF asked for (the kernel may cap it)


class NatsWireError(MelticaError):
    """The connection to the NATS server failed or was closed: reconnect."""


class WireConnection:
    """One blocking client connection. One thread uses it."""

    def __init__(self, sock: socket.socket, url: str, info: dict, recv_bytes: int = RECV_BYTES):
        self.sock, self.url, self.info = sock, url, info
        self.buf = bytearray(recv_bytes)
        self.view = memoryview(self.buf)
        self.have = 0                      # bytes received into buf
        self.start = 0                     # the first byte not parsed yet
        self.errors = 0
        self.subs: dict[int, str] = {}

    # -- connecting ------------------------------------------------------------------

    @classmethod
    def connect(cls, servers: list[str], *, name: str, user: str | None = None, password: str | None = None,
                tls_ca: str | None = None, timeout_s: float = 2.0) -> "WireConnection":
        """The first server of `servers` that accepts us (NatsWireError if none does)."""
        errors = []
        for url in servers:
            try:
                return cls._connect(url, name, user, password, tls_ca, timeout_s)
            except (OSError, NatsWireError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        raise NatsWireError("no NATS server accepted the connection: " + "; ".join(errors))

    @classmethod
    def _connect(cls, url, name, user, password, tls_ca, timeout_s) -> "WireConnection":
        u = urlparse(url if "://" in url else f"nats://{url}")
        sock = socket.create_connection((u.hostname, u.port or 4222), timeout=timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUFFER)
            line = _read_line(sock, timeout_s)
            if not line.startswith(b"INFO "):
                raise NatsWireError(f"expected INFO, got {line[:80]!r}")
            info = orjson.loads(line[5:])
            if info.get("tls_required") or u.scheme == "tls":
                ctx = ssl.create_default_context(cafile=tls_ca)
                sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
            opts = {"verbose": False, "pedantic": False, "protocol": 1, "name": name, "lang": "python-meltica-wire",
                    "version": "1", "headers": False, "no_responders": False}
            if user:
                opts.update(user=user, **{"pass": password or ""})
            elif u.username:
                opts.update(user=u.username, **{"pass": u.password or ""})
            sock.sendall(b"CONNECT " + orjson.dumps(opts) + CRLF + b"PING" + CRLF)
            while True:
                line = _read_line(sock, timeout_s)
                if line == b"PONG":
                    break
                if line.startswith(b"-ERR"):
                    raise NatsWireError(f"server refused: {line.decode(errors='replace')}")
            sock.settimeout(None)
            return cls(sock, url, info)
        except BaseException:
            sock.close()
            raise

    # -- out ------------------------------------------------------------------------

    def publish(self, subject: str, *parts) -> None:
        """PUB `subject` with the concatenation of `parts` (bytes-like) as its payload."""
        views = [memoryview(p).cast("B") for p in parts]
        size = sum(v.nbytes for v in views)
        bufs = [memoryview(f"PUB {subject} {size}\r\n".encode()), *views, memoryview(CRLF)]
        try:
            while bufs:
                sent = self.sock.sendmsg(bufs)
                while bufs and sent >= bufs[0].nbytes:  # a partial send (the socket buffer filled)
                    sent -= bufs.pop(0).nbytes
                if bufs:
                    bufs[0] = bufs[0][sent:]
        except OSError as exc:
            raise NatsWireError(f"publish to {self.url}: {exc}") from exc

    def service(self) -> None:
        """Answer the server (PING) without waiting: a publisher calls this now and then."""
        self.pump(None, 0.0)

    # -- in -------------------------------------------------------------------------

    def subscribe(self, subject: str) -> int:
        sid = len(self.subs) + 1
        self.subs[sid] = subject
        self._send(f"SUB {subject} {sid}\r\n".encode())
        return sid

    def pump(self, callback, timeout_s: float) -> int:
        """Read what has come (waiting up to `timeout_s`); `callback(subject, payload)` per message."""
        if not select.select([self.sock], [], [], timeout_s)[0] and not self._pending_tls():
            return 0
        try:
            n = self.sock.recv_into(self.view[self.have:], len(self.buf) - self.have)
        except ssl.SSLWantReadError:
            return 0
        except OSError as exc:
            raise NatsWireError(f"read from {self.url}: {exc}") from exc
        if not n:
            raise NatsWireError(f"{self.url} closed the connection")
        self.have += n
        return self._parse(callback)

    def _pending_tls(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def _parse(self, callback) -> int:
        buf, view, start, done = self.buf, self.view, self.start, 0
        while True:
            nl = buf.find(CRLF, start, self.have)
            if nl < 0:
                break
            if buf.startswith(b"MSG ", start):
                parts = bytes(view[start + 4:nl]).split(b" ")
                size = int(parts[-1])
                end = nl + 2 + size + 2
                if end > self.have:  # the rest of it comes with the next reads
                    self.start = start
                    if end - start > len(buf):  # larger than the buffer: grow it once
                        self._grow(end - start)
                    elif end > len(buf):  # it fits only from the front
                        self._compact()
                    return done
                if callback is not None:
                    callback(parts[0].decode(), view[nl + 2:nl + 2 + size])
                done += 1
                start = end
                continue
            line = bytes(view[start:nl])
            if line == b"PING":
                self._send(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                self.errors += 1
                log.warning("%s: %s", self.url, line.decode(errors="replace"))
            start = nl + 2  # PONG, +OK, INFO (cluster changes): nothing to do
        self.start = start
        if start == self.have:  # all parsed: start over at the front, nothing to move
            self.start = self.have = 0
        elif len(buf) - self.have < len(buf) // 2:  # the back half in use (once per ~8 MB, not per read)
            self._compact()
        return done

    def _compact(self) -> None:
        """Move the bytes not parsed yet (a partial message) to the front of the buffer."""
        left = self.have - self.start
        self.view[:left] = bytes(self.view[self.start:self.have])
        self.start, self.have = 0, left

    def _grow(self, size: int) -> None:
        old, left = self.buf, self.have - self.start
        self.buf = bytearray(max(size * 2, len(old)))
        self.buf[:left] = old[self.start:self.have]
        self.start, self.have = 0, left
        self.view.release()
        self.view = memoryview(self.buf)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise NatsWireError(f"write to {self.url}: {exc}") from exc

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.view.release()


def _read_line(sock: socket.socket, timeout_s: float) -> bytes:
    """One protocol line, byte by byte (the handshake only: a few short lines)."""
    deadline = time.monotonic() + timeout_s
    out = bytearray()
    while not out.endswith(CRLF):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        b = sock.recv(1)
        if not b:
            raise NatsWireError("closed during the handshake")
        out += b
        if len(out) > 1 << 20:
            raise NatsWireError("handshake line too long")
    return bytes(out[:-2])
