"""The Binance user-data stream: listenKey over REST, events over WebSocket, reconnects.

    POST /api/v3/userDataStream          -> {"listenKey": "..."}
    WS   <ws_url>/ws/<listenKey>          -> executionReport, outboundAccountPosition, ...
    PUT  /api/v3/userDataStream?listenKey  keep-alive, every 30 minutes

One thread. On every (re)connect it calls `on_state(UserStreamConnected())` once the
socket is open, so the engine can query what it missed while the stream was down; on
every loss `on_state(UserStreamDisconnected(reason))`. Frames go to `on_frame(bytes)`.
"""

from __future__ import annotations

import threading
import time

import websocket

from events import PeerGone
from venues.trading import UserStreamConnected, UserStreamDisconnected

from .rest import BinanceRest


class UserStream:
    def __init__(self, rest: BinanceRest, ws_url: str, on_frame, on_state, *, keepalive_s: float = 1800.0,
                 backoff_s: tuple[float, float] = (0.05, 2.0), recv_timeout_s: float = 0.5):
        self.rest = rest
        self.ws_url = ws_url.rstrip("/")
        self.on_frame = on_frame
        self.on_state = on_state
        self.keepalive_s = keepalive_s
        self.backoff_min, self.backoff_max = backoff_s
        self.recv_timeout_s = recv_timeout_s
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._thread = threading.Thread(target=self._run, name="binance-userstream", daemon=True)
        self.connects = 0
        self.terminated = False  # the venue said eventStreamTerminated / listenKeyExpired

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close(timeout=0.2)
            except Exception:  # closing a socket that already broke
                pass
        self._thread.join(timeout=3)
        self.rest.close()

    def _run(self) -> None:
        backoff = self.backoff_min
        while not self._stop.is_set():
            connected = False
            reason = "stopped"
            try:
                key = self.rest.new_listen_key()
                ws = websocket.create_connection(f"{self.ws_url}/ws/{key}", timeout=self.rest.timeout_s,
                                                 enable_multithread=True)
                ws.settimeout(self.recv_timeout_s)
                self._ws = ws
                connected = True
                self.connects += 1
                self.on_state(UserStreamConnected())
                backoff = self.backoff_min
                reason = self._pump(ws, key)
            except (PeerGone, OSError, websocket.WebSocketException) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:  # a bug must not end the stream silently
                reason = f"unexpected {type(e).__name__}: {e}"
            finally:
                ws, self._ws = self._ws, None
                if ws is not None:
                    try:
                        ws.close(timeout=0.2)
                    except Exception:
                        pass
                if connected:
                    self.on_state(UserStreamDisconnected(reason))
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.backoff_max)

    def _pump(self, ws, key: str) -> str:
        last_keepalive = time.monotonic()
        while not self._stop.is_set():
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                frame = None
            if not ws.connected:
                return "closed by the venue"
            if frame:
                if self.on_frame(frame if isinstance(frame, bytes) else frame.encode()) == "terminated":
                    return "the venue terminated the stream"
            if time.monotonic() - last_keepalive > self.keepalive_s:
                self.rest.keepalive_listen_key(key)
                last_keepalive = time.monotonic()
        return "stopped"
