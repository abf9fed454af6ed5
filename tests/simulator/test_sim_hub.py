"""The hub's writer sends the frames queued together in one write: each is a whole TEXT frame."""

from __future__ import annotations

import pytest
from websocket._abnf import ABNF, frame_buffer

from simulator.hub import text_frame

pytestmark = pytest.mark.timeout(10)


def test_frames_written_together_read_back_whole_and_in_order_at_every_length_form():
    payloads = [b"{}", b"x" * 125, b"y" * 126, b"z" * 65535, b"w" * 65536]   # 7-bit, 16-bit and 64-bit lengths
    wire = memoryview(b"".join(text_frame(p) for p in payloads))
    at = 0

    def recv(n: int) -> bytes:
        nonlocal at
        out = bytes(wire[at:at + n])
        at += len(out)
        return out

    reader = frame_buffer(recv, skip_utf8_validation=True)
    got = [reader.recv_frame() for _ in payloads]
    assert [(f.opcode, f.fin, f.mask_value, f.data) for f in got] == [(ABNF.OPCODE_TEXT, 1, 0, p) for p in payloads]
    assert at == len(wire)
