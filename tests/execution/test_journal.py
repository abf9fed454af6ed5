"""The exec journal: fixed offsets, durability boundaries, torn tails, readers."""

import os

import numpy as np
import pytest

from events import EVENT, Kind
from events.records import RECORD_BYTES
from channels.journal import JournalError, JournalReader
from execution.journal import Journal
from execution.ids import LENGTH, venue_client_order_id

pytestmark = pytest.mark.timeout(10)


def reports(first: int, n: int) -> np.ndarray:
    recs = np.zeros(n, EVENT)
    recs["kind"] = Kind.EXEC_REPORT
    recs["exec"]["exec_seq"] = np.arange(first, first + n)
    return recs


def test_exec_seq_n_is_at_offset_n_times_the_record_size(tmp_path):
    j = Journal(tmp_path / "j", sync=True)
    j.append(reports(1, 3))
    j.append(reports(4, 2))
    raw = (tmp_path / "j").read_bytes()
    assert len(raw) == 6 * RECORD_BYTES
    rec = np.frombuffer(raw[4 * RECORD_BYTES: 5 * RECORD_BYTES], EVENT)[0]
    assert int(rec["exec"]["exec_seq"]) == 4
    j.close()


def test_append_refuses_a_gap_or_a_repeat(tmp_path):
    j = Journal(tmp_path / "j")
    j.append(reports(1, 2))
    with pytest.raises(JournalError):
        j.append(reports(4, 1))
    with pytest.raises(JournalError):
        j.append(reports(2, 1))
    j.close()


def test_reopening_cuts_a_torn_tail_and_continues_the_sequence(tmp_path):
    j = Journal(tmp_path / "j")
    j.append(reports(1, 2))
    j.close()
    with open(tmp_path / "j", "ab") as f:
        f.write(b"\x01" * 100)  # half a record: the power went mid-write
    j = Journal(tmp_path / "j")
    assert (j.last_seq, j.truncated_bytes) == (2, 100)
    j.append(reports(3, 1))
    assert list(j.read(1, 10)["exec"]["exec_seq"]) == [1, 2, 3]
    j.close()


def test_a_reader_sees_only_whole_records_and_reads_any_range(tmp_path):
    j = Journal(tmp_path / "j")
    r = JournalReader(tmp_path / "j")
    assert r.last_seq() == 0 and len(r.read(1, 10)) == 0
    j.append(reports(1, 5))
    assert r.last_seq() == 5
    assert list(r.read(3, 2)["exec"]["exec_seq"]) == [3, 4]
    with open(tmp_path / "j", "ab") as f:
        f.write(b"\x00" * 10)
    assert r.last_seq() == 5
    r.close()
    j.close()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    (tmp_path / "j").write_bytes(b"\x07" * RECORD_BYTES)
    with pytest.raises(JournalError):
        Journal(tmp_path / "j")
    with pytest.raises(JournalError):
        JournalReader(tmp_path / "j")


def test_venue_client_order_ids_are_short_safe_distinct_and_stable():
    a = venue_client_order_id(1, "o-1")
    assert a == venue_client_order_id(1, "o-1")
    assert len(a) == LENGTH <= 36
    assert all(c.isalnum() or c in "-_" for c in a)
    ids = {venue_client_order_id(c, f"o-{i}") for c in (1, 2, 0x7FFFFFFF) for i in range(1000)}
    assert len(ids) == 3000
    assert os.path.commonprefix([venue_client_order_id(1, "x"), venue_client_order_id(2, "x")]) == "m0000000"
