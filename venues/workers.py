"""The REST worker threads of a trading adapter (Binance spot, Binance USD-M, OKX).

The engine's thread only queues a job (`submit`); the workers carry it out. Jobs of one
key (an order's client order id) always go to the same worker, in order, so a cancel
never overtakes its own order's placement. Each worker owns one keep-alive connection,
made by `connect()` and closed when the worker stops. A job is `fn(connection, *args)`;
one that raises is a bug: it goes to the DLQ (`adapter_job_failed`) and the worker goes on.
"""

from __future__ import annotations

import queue
import threading
import zlib


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
