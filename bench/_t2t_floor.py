"""The floor of `bench tick2trade`: the pipeline's chain of processes and channels, doing no work.

    source --TCP--> ingest --ring floor.md--> dispatch --ring floor.consumer--> strategy
        ^                                                                          |
        +----TCP (the venue connection)---- execution <--ZeroMQ DEALER/ROUTER ipc--+

Each role is a process of its own (`python -m bench._t2t_floor ROLE RUN_ID DIR [...]`), built
from what the pipeline uses: a socket read polled as ingest polls its WebSocket, 768-byte
`events.EVENT` records on shm rings (overwrite policy, default wait strategy), a ZeroMQ
DEALER -> ROUTER over ipc as the order channel, and a TCP send to the venue. Nothing
else: no parsing, no book, no routing, no JSON, no persistence. The source paces
fixed-size frames at `rate`/s in 1 ms bursts (the simulator sends bursts too).

Each hop stamps `time.time_ns()` into the record (ingest_ts_ns at the socket read,
event_ts_ns when dispatch read it, seq_provider when the strategy read it); the strategy
forwards every `every`-th record's stamps to execution, which stamps its receipt and the
moment right before its send, and writes them all (.npz, `DIR/floor.npz`) on SIGTERM.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

FRAME_BYTES = 256
ORDER = struct.Struct("<Qqqq")  # event_id, ingest_ns, dispatch_ns, strategy_ns
CAPACITY = 16384


def _ns(run_id: str):
    from core.run import RunContext
    return RunContext.from_env(run_id).namespace


def _attach(ns, name: str, patience_s: float = 30.0):
    from events import EVENT
    from shm import RingReader
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return RingReader.attach(ns, name, EVENT, start="oldest")
        except Exception:  # noqa: BLE001 - not created yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _stopper() -> list:
    stop: list = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    return stop


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def source(d: Path, rate: float, seconds: float) -> int:
    """Listen for ingest (feed) and execution (venue); once `d/go` exists, send `rate` frames/s."""
    feed, venue = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    (d / "ports").write_text(f"{feed.getsockname()[1]} {venue.getsockname()[1]}")
    _ready()
    fc, _ = feed.accept()
    vc, _ = venue.accept()
    fc.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stop = _stopper()
    while not (d / "go").exists() and not stop:
        time.sleep(0.01)
    frame = b"{" + b"x" * (FRAME_BYTES - 2) + b"}"
    t0 = time.monotonic()
    sent = 0
    while not stop and (el := time.monotonic() - t0) < seconds:
        due = int(el * rate) - sent
        if due > 0:
            fc.sendall(frame * due)
            sent += due
        r, _, _ = select.select([vc], [], [], 0.001)  # the venue side: read and discard
        if r:
            vc.recv(65536)
    (d / "source.sent").write_text(str(sent))
    while not stop:
        r, _, _ = select.select([vc], [], [], 0.05)
        if r and not vc.recv(65536):
            break
    return 0


def ingest(run_id: str, d: Path) -> int:
    from events import EVENT, Kind
    from shm import RingWriter
    feed_port = int((d / "ports").read_text().split()[0])
    w = RingWriter.create(_ns(run_id), "floor.md", EVENT, CAPACITY, policy="overwrite")
    s = socket.create_connection(("127.0.0.1", feed_port))
    rec = np.zeros(1, EVENT)
    rec["kind"] = Kind.BOOK
    buf = bytearray(FRAME_BYTES)
    poll = select.poll()
    poll.register(s.fileno(), select.POLLIN)
    stop = _stopper()
    _ready()
    n = 0
    try:
        while not stop:
            if not poll.poll(50):
                continue
            got = s.recv_into(buf, FRAME_BYTES, socket.MSG_WAITALL)
            now = time.time_ns()
            if got < FRAME_BYTES:
                break
            n += 1
            rec["event_id"] = n
            rec["ingest_ts_ns"] = now
            w.try_write_bytes(rec.view(np.uint8).data)
    finally:
        w.close()
    return 0


def dispatch(run_id: str, d: Path) -> int:
    from events import EVENT
    from shm import RingClosed, RingWriter
    ns = _ns(run_id)
    w = RingWriter.create(ns, "floor.consumer", EVENT, CAPACITY, policy="overwrite")
    r = _attach(ns, "floor.md")
    stop = _stopper()
    _ready()
    try:
        while not stop:
            try:
                b = r.wait_read(4096, 0.05)
            except RingClosed:
                break
            if len(b):
                now = time.time_ns()
                out = b.copy()
                r.release()
                out["event_ts_ns"] = now
                w.write_batch(out)
    finally:
        r.close()
        w.close()
    return 0


def strategy(run_id: str, d: Path, every: int) -> int:
    import zmq

    from shm import RingClosed
    r = _attach(_ns(run_id), "floor.consumer")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{d}/floor.ctl")
    stop = _stopper()
    _ready()
    n = 0
    try:
        while not stop:
            try:
                b = r.wait_read(1024, 0.05)
            except RingClosed:
                break
            if not len(b):
                continue
            now = time.time_ns()
            for i in range((-n) % every, len(b), every):  # the (n + i + 1)-th record, divisible by every
                x = b[i]
                sock.send(ORDER.pack(int(x["event_id"]), int(x["ingest_ts_ns"]), int(x["event_ts_ns"]), now),
                          zmq.NOBLOCK)
            n += len(b)
            r.release()
    finally:
        r.close()
        sock.close(0)
    return 0


def execution(run_id: str, d: Path) -> int:
    import zmq
    venue_port = int((d / "ports").read_text().split()[1])
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"ipc://{d}/floor.ctl")
    v = socket.create_connection(("127.0.0.1", venue_port))
    v.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rows: list[tuple] = []
    stop = _stopper()
    _ready()
    while not stop:
        if not sock.poll(50):
            continue
        while True:
            try:
                _, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            rx = time.time_ns()
            sent = time.time_ns()
            v.sendall(payload)
            rows.append((*ORDER.unpack(payload), rx, sent))
    a = np.array(rows, np.int64).reshape(-1, 6)
    np.savez(d / "floor.npz", event_id=a[:, 0], ingest_ns=a[:, 1], dispatch_ns=a[:, 2], strategy_ns=a[:, 3],
             exec_ns=a[:, 4], sent_ns=a[:, 5])
    sock.close(0)
    return 0


ROLES = {"source": lambda a: source(Path(a[1]), float(a[2]), float(a[3])),
         "ingest": lambda a: ingest(a[1], Path(a[2])),
         "dispatch": lambda a: dispatch(a[1], Path(a[2])),
         "strategy": lambda a: strategy(a[1], Path(a[2]), int(a[3])),
         "execution": lambda a: execution(a[1], Path(a[2]))}


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(ROLES[sys.argv[1]](sys.argv[1:]))
