"""The iceoryx2 baseline of `bench ring`: its Python binding in the ring's two shapes.

iceoryx2 (PyPI `iceoryx2`, the `bench` extra) is zero-copy shared-memory pub/sub with
a Rust core. Measured the way its own examples use it, with the ring's 64-byte record
(seq, ~seq, ts_ns, padding) and writer and reader in separate processes:

    publisher   loan a sample, copy the record in, send, then `notifier.notify()`
                (the event service is how an iceoryx2 subscriber sleeps until data);
                a full subscriber buffer blocks the send (`RetryUntilDelivered`, which
                waits with iceoryx2's adaptive wait: yield, then sleep)
    subscriber  `receive()` until empty, then `listener.timed_wait()` (blocks in the
                kernel until notified); each record's bytes copied out and checked

The service is lossless (`enable_safe_overflow(False)`, no history); its subscriber
buffer is the ring's capacity where iceoryx2 accepts it.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import time
import uuid

import numpy as np

REC_BYTES = 64


def unavailable() -> str | None:
    """None when iceoryx2 imports here, else why not (the benchmark reports the reason)."""
    try:
        import iceoryx2  # noqa: F401
    except ImportError as e:
        return f"iceoryx2 not installed ({e}): pip install -e '.[bench]'"
    except Exception as e:  # a wheel that does not load on this platform
        return f"iceoryx2 does not load here: {type(e).__name__}: {e}"
    return None


def version() -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version
    try:
        return dist_version("iceoryx2")
    except PackageNotFoundError:
        return None


class _Rec(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_int64), ("check", ctypes.c_int64), ("ts_ns", ctypes.c_int64),
                ("pad", ctypes.c_uint8 * 40)]

    @staticmethod
    def type_name() -> str:
        return "MelticaBenchRecord64"


assert ctypes.sizeof(_Rec) == REC_BYTES


def _ports(service: str, buffer: int, publisher: bool):
    """(node, data port, event port) for one side of the benchmark's service."""
    import iceoryx2 as iox2
    iox2.set_log_level(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    name = iox2.ServiceName.new(service)
    pubsub = (node.service_builder(name).publish_subscribe(_Rec)
              .history_size(0).subscriber_max_buffer_size(buffer)
              .enable_safe_overflow(False).max_publishers(1).max_subscribers(1)
              .open_or_create())
    event = node.service_builder(name).event().open_or_create()
    if publisher:
        port = (pubsub.publisher_builder()
                .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered).create())
        return node, port, event.notifier_builder().create()
    return node, pubsub.subscriber_builder().buffer_size(buffer).create(), event.listener_builder().create()


def _reader(service, buffer, count, ready, go, result, latency):
    import iceoryx2 as iox2
    node, sub, listener = _ports(service, buffer, publisher=False)
    ready.set()
    go.wait(60)
    wait = iox2.Duration.from_millis(500)
    receive, string_at = sub.receive, ctypes.string_at
    lat = np.empty(count if latency else 0, np.int64)
    n = bad = 0
    c0 = w0 = None
    idle_since = None
    while n < count:
        s = receive()
        if s is None:
            listener.timed_wait(wait)
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 10:  # 10 s without a record: the writer is gone
                break
            continue
        idle_since = None
        data = string_at(s.payload_ptr, REC_BYTES)
        del s  # the sample goes back to the publisher
        if latency:
            lat[n] = time.monotonic_ns() - int.from_bytes(data[16:24], "little")
            if c0 is None:
                c0, w0 = time.process_time(), time.perf_counter()
        if int.from_bytes(data[:8], "little") != n:
            bad += 1
        n += 1
    end = time.monotonic_ns()
    cpu = (time.process_time() - c0) / (time.perf_counter() - w0) if c0 is not None else None
    result.put((end, n, bad, lat[:n].tobytes() if latency else b"", cpu))
    del sub, listener, node


def _run(count: int, buffer: int, writer, latency: bool) -> tuple:
    """Start the reader, let `writer(publisher, notifier)` send, return the reader's result."""
    ctx = mp.get_context("spawn")
    service = f"meltica-bench/{uuid.uuid4().hex[:12]}"
    ready, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    p = ctx.Process(target=_reader, args=(service, buffer, count, ready, go, result, latency))
    p.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("iceoryx2 reader did not start")
        node, pub, notifier = _ports(service, buffer, publisher=True)
        pub.update_connections()
        go.set()
        start = writer(pub, notifier)
        out = result.get(timeout=300)
        del pub, notifier, node
    finally:
        go.set()
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
    return start, out


def throughput(count: int, buffer: int = 1 << 14) -> dict:
    """One record per call, blocking waits on both sides; records/s and intact-in-order."""
    src = np.zeros(count, [("seq", "<i8"), ("check", "<i8"), ("ts_ns", "<i8"), ("pad", "V40")])
    src["seq"] = np.arange(count)
    src["check"] = ~src["seq"]
    addr = src.ctypes.data

    def write(pub, notifier) -> int:
        loan, memmove, notify = pub.loan_uninit, ctypes.memmove, notifier.notify
        start = time.monotonic_ns()
        for i in range(count):
            sample = loan()
            memmove(sample.payload_ptr, addr + i * REC_BYTES, REC_BYTES)
            sample.assume_init().send()
            notify()
        return start

    start, (end, n, bad, _lat, _cpu) = _run(count, buffer, write, latency=False)
    return {"records_per_s": count / ((end - start) / 1e9), "intact_in_order": n == count and bad == 0}


def latency(rate: int, seconds: float, buffer: int = 1 << 14) -> dict:
    """One-way latency at `rate` records/s (paced like the ring's latency writer)."""
    count = int(rate * seconds)

    def write(pub, notifier) -> int:
        time.sleep(0.2)  # let the reader settle into its blocking wait
        rec = _Rec()
        send, notify = pub.send_copy, notifier.notify
        interval = 1e9 / rate
        t0 = time.monotonic_ns()
        for i in range(count):
            due = t0 + int(i * interval)
            now = time.monotonic_ns()
            if due - now > 25_000:
                time.sleep((due - now - 20_000) / 1e9)
            rec.seq = i
            rec.check = ~i
            rec.ts_ns = time.monotonic_ns()
            send(rec)
            notify()
        return t0

    _start, (_end, n, bad, raw, cpu) = _run(count, buffer, write, latency=True)
    return {"samples_ns": np.frombuffer(raw, np.int64), "intact_in_order": n == count and bad == 0,
            "reader_cpu": cpu}
