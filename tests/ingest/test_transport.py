"""Transport pieces that need no network: the reconnect backoff, the REST URL check, and the
chunked WebSocket read over a socket pair."""

from __future__ import annotations

import random

import pytest

from ingest.transport import Backoff, RestClient

pytestmark = pytest.mark.timeout(10)


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets():
    b = Backoff(0.25, 4.0, random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    ceilings = [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    b.reset()
    assert b.next_delay() <= 0.25


def test_rest_client_refuses_urls_it_cannot_use():
    with pytest.raises(ValueError):
        RestClient("ws://127.0.0.1:1")
    c = RestClient("http://127.0.0.1:9/prefix/")
    assert (c.host, c.port, c.base_path) == ("127.0.0.1", 9, "/prefix")


def _frame(payload: bytes) -> bytes:
    """A server's (unmasked) text frame."""
    n = len(payload)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + payload


def _chunked_pair():
    import socket

    from ingest.transport import ChunkedWebSocket
    venue, ours = socket.socketpair()
    ws = ChunkedWebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = ours, True
    ws.settimeout(0.2)
    return venue, ws


def test_frames_sent_together_are_read_with_one_system_call_and_handed_out_in_order():
    venue, ws = _chunked_pair()
    payloads = [b'{"n":%d}' % i for i in range(3)] + [b"x" * 300]    # short and extended lengths
    venue.sendall(b"".join(_frame(p) for p in payloads))
    calls = []
    read = ws.sock.recv
    ws.sock = type("Counting", (), {"recv": lambda self, n: calls.append(n) or read(n),
                                     "gettimeout": lambda self: 0.2})()
    got = [ws.recv_data()[1] for _ in payloads]
    assert got == payloads and len(calls) == 1 and ws.buffered() == 0
    venue.close()


def test_a_frame_whose_rest_is_late_is_finished_on_the_next_read():
    import websocket
    venue, ws = _chunked_pair()
    frame = _frame(b'{"late":true}')
    venue.sendall(_frame(b'{"first":1}') + frame[:5])
    assert ws.recv_data()[1] == b'{"first":1}' and ws.buffered() == 5
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_data()                                   # the rest is not there yet
    venue.sendall(frame[5:])
    assert ws.recv_data()[1] == b'{"late":true}' and ws.buffered() == 0
    venue.close()
