"""One private WebSocket connection and the thread that reads it: what the Binance spot
user stream and WebSocket API, the Binance USD-M user stream and the OKX private stream
share (each venue's `_Conn` subclasses `WsReader` with its own frames, requests and notes).

The reader answers the venue's pings (websocket-client does, while it reads), wakes every
`READ_TICK_S` to see whether the line went silent (nothing heard for `silence_s`: lost),
and hands every text or binary frame to `_on_frame`. The connection is lost, once, by
`_end(reason)`: the first reason stays, waiters are released (`_unblock`), and the owner's
supervisor is woken (`wake`). A subclass sets its own state, then calls `_start_reading()`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

import websocket

READ_TICK_S = 0.5


class WsReader(ABC):
    """One connection to `url`: opened at construction (OSError / WebSocketException if it
    cannot be), read by one thread named `thread_name` once `_start_reading` is called."""

    thread_name = "ws-read"
    await_close_frame = True   # close(): wait (1 s at most) for the venue's close frame first

    def __init__(self, url: str, timeout_s: float, silence_s: float, on_bad, wake: threading.Event):
        self.on_bad, self.wake = on_bad, wake
        self.silence_s = silence_s
        self.ws = websocket.create_connection(url, timeout=timeout_s, enable_multithread=True)
        self.ws.settimeout(READ_TICK_S)
        self.opened = self.heard = time.monotonic()
        self.lost = threading.Event()
        self.reason = ""
        self.notice = ""     # the venue will end this connection soon (set by a subclass): move elsewhere
        self._thread = threading.Thread(target=self._read, name=self.thread_name, daemon=True)

    def _start_reading(self) -> None:
        self._thread.start()

    @abstractmethod
    def _on_frame(self, data: bytes) -> None:
        """One text or binary frame (the reader thread)."""

    def _on_idle(self, now: float) -> None:
        """The reader heard nothing for a tick and the line is not yet silent (OKX pings here)."""

    def _unblock(self) -> None:
        """Release whoever waits for an answer on this connection: it is lost."""

    def _read(self) -> None:
        ws = self.ws
        while not self.lost.is_set():
            try:
                opcode, frame = ws.recv_data_frame(True)   # answers pings with pongs
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                if now - self.heard > self.silence_s:
                    self._end(f"silent for {self.silence_s:g}s")
                    return
                self._on_idle(now)
                continue
            except (OSError, websocket.WebSocketException) as e:
                self._end(f"{type(e).__name__}: {e}")
                return
            self.heard = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._end("closed by the venue")
                return
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                self._on_frame(frame.data)

    def _end(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.lost.set()
        self._unblock()
        self.wake.set()

    def close(self) -> None:
        """Close (a close frame, then the socket) and join the reader."""
        if not self.lost.is_set():
            try:
                self.ws.send_close()
            except (OSError, websocket.WebSocketException):
                pass
            if self.await_close_frame:
                self._thread.join(timeout=1.0)   # the reader sees the venue's close frame and ends
        self._end("closed by us")
        self.ws.shutdown()                       # ends a reader still waiting in recv
        self._thread.join(timeout=1.0)
