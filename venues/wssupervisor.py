"""The thread that keeps a private WebSocket up: what the Binance spot user stream and
WebSocket API session, the Binance USD-M user stream and the OKX private stream do alike
around their own `_run` (when to reconnect, rotate or move is each venue's protocol, and
stays in its module).

    start() / stop()       the supervisor thread; stop wakes it and gives up the requests in
                           flight (`_give_up`) so it ends at once
    _pause(backoff)        wait out a backoff (stop ends it); the next one, doubled up to the max
    _wait(conn, due)       until stopped, `conn` lost or given notice by the venue, or `due`
    _failed(reason)        counted (`failed_metric`) and, once per distinct reason, to the DLQ
                           (`failed_dlq`); nothing while stopping (a request cut short is no failure)
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod


class WsSupervisor(ABC):
    thread_name = "ws-supervisor"
    failed_metric = "exec.stream.subscribe_failed"
    failed_dlq = "user_stream_failed"
    labels: dict = {}     # on the failure metric and DLQ entry (OKX: its venue)

    def __init__(self, backoff_s: tuple[float, float], dlq, telemetry):
        self.backoff_min, self.backoff_max = backoff_s
        self.dlq, self.tel = dlq, telemetry
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self.last_error = ""

    @abstractmethod
    def _run(self) -> None:
        """The supervisor thread: the venue's rules of reconnecting, rotating and moving."""

    def _give_up(self) -> None:
        """Make the requests in flight on the connections give up (stop)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._give_up()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _pause(self, backoff: float) -> float:
        self._stop.wait(backoff)
        return min(backoff * 2, self.backoff_max)

    def _wait(self, conn, due: float) -> None:
        """Until stopped, `conn` is lost or has a `notice`, or time.monotonic() reaches `due`."""
        while not (self._stop.is_set() or conn.lost.is_set() or conn.notice):
            left = due - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 1.0))
            self._wake.clear()

    def _failed(self, reason: str) -> None:
        if self._stop.is_set():
            return
        if self.tel is not None:
            self.tel.inc(self.failed_metric, **self.labels)
        if reason != self.last_error and self.dlq is not None:   # once per distinct reason
            self.dlq.put(self.failed_dlq, priority="high", **self.labels, error=reason)
        self.last_error = reason
