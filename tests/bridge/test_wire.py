"""The raw NATS wire of md-out / md-in against real servers: auth, permissions, PINGs, a server restart."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bridge.servers import NatsNode
from bridge.wire import NatsWireError, WireConnection
from events import EVENT
from shm import RingReader

from .conftest import spawn, wait_until
from .md_writer import books

pytestmark = pytest.mark.timeout(60)


def receive(conn: WireConnection, n: int, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        conn.pump(lambda subj, payload: got.append((subj, bytes(payload))), 0.05)
    return got


def test_messages_split_anyhow_across_reads_are_parsed_whole():
    """A small receive buffer: messages cut at every byte count, one larger than the buffer,
    PINGs answered and -ERRs counted between them."""
    import random
    import socket
    ours, server = socket.socketpair()
    conn = WireConnection(ours, "test", {}, recv_bytes=4096)
    rng = random.Random(7)
    payloads = [bytes([i % 251]) * rng.choice([0, 1, 700, 1500, 3000, 9000]) for i in range(60)]
    stream = bytearray()
    for i, p in enumerate(payloads):
        stream += f"MSG meltica.ring.md.v{i % 3} 1 {len(p)}\r\n".encode() + p + b"\r\n"
        if i % 10 == 0:
            stream += b"PING\r\n"
        if i == 30:
            stream += b"-ERR 'Permissions Violation for Publish to x'\r\n"
    got: list = []
    server.setblocking(False)
    try:
        pos = 0
        while len(got) < len(payloads):
            if pos < len(stream):
                k = rng.randint(1, 5000)
                server.sendall(stream[pos:pos + k])
                pos += k
            conn.pump(lambda subj, payload: got.append((subj, bytes(payload))), 0.2)
        assert [p for _, p in got] == payloads
        assert [s for s, _ in got] == [f"meltica.ring.md.v{i % 3}" for i in range(len(payloads))]
        assert conn.errors == 1
        assert server.recv(1000) == b"PONG\r\n" * 6
    finally:
        conn.close()
        server.close()


def test_batches_cross_a_secured_server_byte_for_byte_and_permissions_hold(secured):
    node, passwords = secured
    pub = WireConnection.connect([node.url], name="t-pub", user="marketdata", password=passwords["marketdata"])
    sub = WireConnection.connect([node.url], name="t-sub", user="host", password=passwords["host"])
    try:
        sub.subscribe("meltica.ring.md.x")
        sub.pump(None, 0.2)
        recs = books(1, 1000)
        for first in (0, 500):
            pub.publish("meltica.ring.md.x", b"H" * 32, recs[first:first + 500].view(np.uint8))
        got = receive(sub, 2)
        assert [s for s, _ in got] == ["meltica.ring.md.x"] * 2
        assert b"".join(p[32:] for _, p in got) == recs.tobytes() and all(p[:32] == b"H" * 32 for _, p in got)

        pub.publish("meltica.ring.consumer.b.md", b"forged")  # not marketdata's to publish
        deadline = time.monotonic() + 5
        while not pub.errors and time.monotonic() < deadline:
            pub.pump(None, 0.05)
        assert pub.errors == 1
    finally:
        pub.close()
        sub.close()
    with pytest.raises(NatsWireError, match="(?i)authorization"):
        WireConnection.connect([node.url], name="t-bad", user="host", password="wrong")


def test_an_idle_connection_answers_the_servers_pings(tmp_path):
    with NatsNode.start(tmp_path / "nats", jetstream=False, extra='ping_interval: "100ms"\nping_max: 1\n') as node:
        pub = WireConnection.connect([node.url], name="t-pub")
        sub = WireConnection.connect([node.url], name="t-sub")
        try:
            sub.subscribe("x")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.0:  # ten ping intervals: unanswered, the server would close us
                pub.service()
                sub.pump(None, 0.05)
            pub.publish("x", b"still here")
            assert receive(sub, 1) == [("x", b"still here")]
        finally:
            pub.close()
            sub.close()


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_market_data_resumes_after_the_nats_server_restarts_and_losses_are_exact(nats_node, hosts, reap):
    src, dst = hosts
    spawn(src, reap, "tests.bridge.md_writer", "testvenue", "2000")
    out = spawn(src, reap, "bridge", "md-out", "--nats", nats_node.url, "--ring", "md.testvenue")
    inn = spawn(dst, reap, "bridge", "md-in", "--nats", nats_node.url, "--ring", "md.testvenue")
    wait_until(lambda: "md.testvenue" in dst.namespace.names(), 30, "md-in to create md.testvenue")
    reader = RingReader.attach(dst.namespace, "md.testvenue", EVENT, start="oldest")
    ids: list = []
    try:
        def take(n, timeout_s=30):
            deadline = time.monotonic() + timeout_s
            while len(ids) < n and time.monotonic() < deadline:
                b = np.array(reader.try_read())
                reader.release()
                ids.extend(b["event_id"].tolist()) if len(b) else time.sleep(0.01)

        take(1000)
        nats_node.kill()
        time.sleep(1.0)   # the source goes on writing; md-out cannot send
        nats_node.launch()
        nats_node.wait_ready()
        before = len(ids)
        take(before + 3000, 60)
        assert len(ids) >= before + 3000, "market data did not resume"
    finally:
        reader.close()
    from .test_md import stats_of
    st = stats_of(inn, dst.path("logs", "bridge-md-in.log"))["rings"]["md.testvenue"]
    stats_of(out, src.path("logs", "bridge-md-out.log"))
    seen = np.array(ids)
    assert (np.diff(seen) > 0).all(), "reordered or duplicated"
    gaps = int((np.diff(seen) - 1).sum())
    assert st["resets"] == 0 and st["lost"] == gaps, (st, gaps)
