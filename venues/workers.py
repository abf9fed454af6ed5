"""The REST worker threads of a trading adapter (Binance spot, Binance USD-M, OKX), the
telemetry of a placement that left (`tell_sent`), which they all give, and the start-up
request each makes of a venue that may still be starting (`ask_until_up`).

The engine's thread only queues a job (`submit`); the workers carry it out. Jobs of one
key (an order's client order id) always go to the same worker, in order, so a cancel
never overtakes its own order's placement. Each worker owns one keep-alive connection,
made by `connect()` and closed when the worker stops. A job is `fn(connection, *args)`;
one that raises is a bug: it goes to the DLQ (`adapter_job_failed`) and the worker goes on.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib

from events import PeerGone
from events.ids import mix64


def tell_sent(tel, vcoid: str, stamps: tuple, sent_ns: int, replied_ns: int, path: str, **more) -> None:
    """Tell telemetry when a placement left, off the order's path: histogram
    `exec.order.send_us` (the engine's receipt of the order -> its bytes handed to the venue
    connection) and event `exec.order.sent` (`stamps` = (consumer id, client order id,
    created_ns, placed_ns); the exec reports' `trace_id`; `path` "rest" or "ws"), so a
    tick-to-trade figure can be joined per order and the venue's round trip told from ours;
    `more`: further fields of the event."""
    if tel is None:
        return
    consumer_id, coid, created_ns, placed_ns = stamps
    tel.observe("exec.order.send_us", (sent_ns - created_ns) / 1000)
    tel.event("exec.order.sent", consumer_id=consumer_id, client_order_id=coid, order=vcoid,
              trace_id=mix64(zlib.crc32(vcoid.encode())), created_ns=created_ns,
              placed_ns=placed_ns, sent_ns=sent_ns, replied_ns=replied_ns, path=path, **more)


def ask_until_up(rest, ask, deadline_s: float):
    """`ask(rest)`, asked again every 0.1 s while the venue does not answer (PeerGone: it may
    be starting) until `deadline_s` have passed; `rest` is closed after."""
    end = time.monotonic() + deadline_s
    try:
        while True:
            try:
                return ask(rest)
            except PeerGone:
                if time.monotonic() >= end:
                    raise
                time.sleep(0.1)
    finally:
        rest.close()


class RestWorkers:
    def __init__(self, connect, n: int, name: str, *, dlq=None, venue: str = ""):
        self.dlq = dlq
        self.venue = venue
        self.queues = [queue.SimpleQueue() for _ in range(n)]
        self.threads = [threading.Thread(target=self._work, args=(q, connect()), name=f"{name}-{i}", daemon=True)
                        for i, q in enumerate(self.queues)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def submit(self, key: str, fn, *args) -> None:
        self.queues[zlib.crc32(key.encode()) % len(self.queues)].put((fn, args))

    def stop(self) -> None:
        """Ask every worker to end once the jobs queued before are done (see `join`)."""
        for q in self.queues:
            q.put(None)

    def join(self, timeout_s: float = 3.0) -> None:
        for t in self.threads:
            t.join(timeout=timeout_s)

    def _work(self, q: queue.SimpleQueue, conn) -> None:
        while True:
            job = q.get()
            if job is None:
                break
            fn, args = job
            try:
                fn(conn, *args)
            except Exception as e:  # a bug in a job must not kill the worker
                if self.dlq is not None:
                    self.dlq.put("adapter_job_failed", priority="high", venue=self.venue,
                                 error=f"{type(e).__name__}: {e}")
        conn.close()
