"""One private WebSocket connection and the thread that reads it: what the Binance spot
user stream and WebSocket API, the Binance USD-M user stream and the OKX private stream
share (each venue's `_Conn` subclasses `WsReader` with its own frames, requests and notes).

The reader answers the venue's pings (websocket-client does, while it reads), wakes every
`READ_TICK_S` to see whether the line went silent (nothing heard for `silence_s`: lost),
and hands every text or binary frame to `_on_frame`. The connection is lost, once, by
`_end(reason)`: the first reason stays, waiters are released (`_unblock`), and the owner's
supervisor is woken (`wake`). A subclass sets its own state, then calls `_start_reading()`.

Requests awaiting answers, for a subclass that makes them: `_pending` maps a request id to
its slot, `[answered Event, reply, ...]` when a caller waits for it, or `[None, None,
on_outcome, sent_ns, deadline (monotonic), name]` when nobody does (the subclass's `_run`
hands it its outcome on the reader thread). `_reap(now)` gives those past their deadline an
unknown outcome; `abort_requests()` ends every request (the connection is lost or closed).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

import websocket

from events import PeerGone

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
        self._pending: dict = {}   # request id -> slot (see the module docstring)
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

    def _run(self, slot: list, outcome) -> None:
        """Hand `outcome` (the answer, or a PeerGone) to a request nobody waits for (a subclass
        that makes such requests says how)."""
        raise NotImplementedError(f"{type(self).__name__} makes no requests without a caller")

    def _reap(self, now: float) -> None:
        """The requests nobody waits for whose deadline passed: unknown outcomes (reader thread)."""
        for rid, slot in list(self._pending.items()):
            if slot[0] is None and slot[4] <= now and self._pending.pop(rid, None) is not None:
                self._run(slot, PeerGone(f"{slot[5]}: no answer in time; outcome unknown"))

    def abort_requests(self) -> None:
        """End every request: a waiting caller wakes with no reply (PeerGone, it says), the
        others get a PeerGone here."""
        for rid in list(self._pending):
            slot = self._pending.pop(rid, None)
            if slot is None:
                continue
            if slot[0] is not None:
                slot[0].set()
            else:
                self._run(slot, PeerGone(f"{slot[5]}: connection lost ({self.reason}); outcome unknown"))

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
