"""The publish protocol's assumptions: x86-64 store order, aligned 8-byte cursor stores."""

import platform

import numpy as np
import pytest

import shm._base as base
import shm.layout as L
from shm import RingError, RingReader, RingWriter
from tests.shm.workers import REC

pytestmark = pytest.mark.timeout(10)


def test_rings_refuse_to_run_on_weakly_ordered_machines(monkeypatch):
    monkeypatch.delenv("MELTICA_UNSAFE_WEAK_ORDER", raising=False)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(RingError, match="x86-64 store ordering.*aarch64"):
        RingWriter.create("never", "r", REC, 8)


def test_this_machine_is_strongly_ordered():
    assert platform.machine() in base.STRONG_ORDER_MACHINES


def test_cursor_stores_are_aligned_single_word_stores(ns):
    with RingWriter.create(ns, "r", REC, 8) as w, RingReader.attach(ns, "r", REC) as r:
        # The word views are 'q' (one 8-byte item store each) over a page-aligned mapping.
        assert w._words.format == "q" and w._words.itemsize == 8
        address = np.frombuffer(w._seg.map, np.uint8, 8).__array_interface__["data"][0]
        assert address % 4096 == 0
        for offset in (L.WRITER_POSITION_OFFSET, L.reader_slot_offset(r._slot) + L.R_POSITION * 8):
            assert (address + offset) % 8 == 0
        assert (address + L.records_offset(w.max_readers, w.capacity)) % 64 == 0
