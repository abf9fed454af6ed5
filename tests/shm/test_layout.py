"""The layout docstring and the computed offsets agree."""

import re

import numpy as np
import pytest

import shm.layout as L


def test_layout_drawing_matches_the_constants():
    doc = L.__doc__
    rows = re.findall(r"^\s{4}(\S+(?: \+ \S+)?(?: \S+)?)\s{2,}(\S+(?: \* \S+)?)\s{2,}(\S+)", doc, re.M)
    drawn = {row[2]: row[0] for row in rows}
    assert drawn["HEADER:"] == "0"
    assert drawn["WRITER_HEARTBEAT_NS"] == str(L.WRITER_HEARTBEAT_OFFSET)
    assert drawn["WRITER_POSITION"] == str(L.WRITER_POSITION_OFFSET)
    assert drawn["WAKE:"] == str(L.WAKE_OFFSET)
    assert drawn["READER"] == str(L.READERS_OFFSET)
    assert f"{L.READER_SLOT_BYTES} * R" in doc and f"{L.READERS_OFFSET} + {L.READER_SLOT_BYTES} R" in doc


@pytest.mark.parametrize("readers,capacity,size", [(1, 2, 64), (16, 1024, 768), (256, 1 << 16, 8)])
def test_every_cursor_has_its_own_line_pair_and_regions_do_not_overlap(readers, capacity, size):
    cursors = [L.WRITER_HEARTBEAT_OFFSET, L.WRITER_POSITION_OFFSET, L.WAKE_OFFSET] + [
        L.reader_slot_offset(i) for i in range(readers)]
    assert all(c % L.LINE_PAIR == 0 for c in cursors)
    assert len({c // L.LINE_PAIR for c in cursors}) == len(cursors)
    assert L.HEADER_WORDS * L.WORD <= L.LINE_PAIR
    assert L.descr_offset(readers) == L.reader_slot_offset(readers)
    assert L.seqs_offset(readers) >= L.descr_offset(readers) + L.DESCR_BYTES
    assert L.records_offset(readers, capacity) >= L.seqs_offset(readers) + 8 * capacity
    assert L.records_offset(readers, capacity) % L.LINE_PAIR == 0
    assert L.segment_size(readers, capacity, size) == L.records_offset(readers, capacity) + size * capacity


def test_magic_spells_the_layout_name():
    assert np.int64(L.MAGIC).tobytes() == b"MELTRNG1"
