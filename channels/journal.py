"""The exec journal's format and its reader: an append-only file of EVENT records, gap-free exec_seq.

    offset            size   content
    0                 768    header: magic "MELTEXJ1", layout version, record bytes,
                             events.SCHEMA_VERSION, created_ns (little-endian int64s)
    768 * N           768    EVENT record of exec_seq N (N >= 1), kind EXEC_REPORT or ACCOUNT
                             (both keep exec_seq at `exec.exec_seq`)

So exec_seq N is at offset N * RECORD_BYTES, and a reader (a consumer catching up)
can read any range with one pread, without asking the writer. One writer process
(execution, `execution.journal.Journal`) appends; any number of readers read.

Readers read only whole records below the file size: Linux raises the size of a
regular file only after the bytes below it are copied, so a record below the size is
complete; a torn tail (power loss mid-write) is cut off when the writer reopens.
"""

from __future__ import annotations

import os
import time

import numpy as np

from events import EVENT
from events.errors import MelticaError
from events.kinds import SCHEMA_VERSION
from events.records import RECORD_BYTES

MAGIC = int.from_bytes(b"MELTEXJ1", "little")
LAYOUT_VERSION = 1
HEADER_WORDS = 5


class JournalError(MelticaError):
    """The journal file is not what we expect (magic, version, sequence)."""


def header() -> bytes:
    """A fresh journal's header record."""
    words = np.zeros(RECORD_BYTES // 8, "<i8")
    words[:HEADER_WORDS] = [MAGIC, LAYOUT_VERSION, RECORD_BYTES, SCHEMA_VERSION, time.time_ns()]
    return words.tobytes()


def check_header(raw: bytes, path: str) -> None:
    """JournalError unless `raw` is the header of a journal of our layout."""
    words = np.frombuffer(raw[: HEADER_WORDS * 8], "<i8")
    if words[0] != MAGIC:
        raise JournalError(f"{path}: not an exec journal: magic={int(words[0]):#x}")
    if words[1] != LAYOUT_VERSION or words[2] != RECORD_BYTES or words[3] != SCHEMA_VERSION:
        raise JournalError(f"{path}: journal layout differs: version={words[1]}, record_bytes={words[2]}, "
                           f"schema={words[3]}; ours: {LAYOUT_VERSION}, {RECORD_BYTES}, {SCHEMA_VERSION}")


def read_records(fd: int, first_seq: int, n: int) -> np.ndarray:
    """Copies of the whole records first_seq.. (at most n) of the journal open on `fd`."""
    raw = os.pread(fd, n * RECORD_BYTES, first_seq * RECORD_BYTES)
    k = len(raw) // RECORD_BYTES
    return np.frombuffer(raw[: k * RECORD_BYTES], EVENT).copy()


class JournalReader:
    """A reader's end (any process): read records by exec_seq, never writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        head = os.pread(self._fd, RECORD_BYTES, 0)
        if len(head) < RECORD_BYTES:
            os.close(self._fd)
            raise JournalError(f"{self.path}: no header yet")
        check_header(head, self.path)

    def last_seq(self) -> int:
        """The highest exec_seq whose record is complete in the file now."""
        return os.fstat(self._fd).st_size // RECORD_BYTES - 1

    def read(self, first_seq: int, max_n: int) -> np.ndarray:
        """Copies of the complete records first_seq.. (at most max_n)."""
        n = min(max_n, self.last_seq() - first_seq + 1)
        if first_seq < 1 or n <= 0:
            return np.zeros(0, EVENT)
        return read_records(self._fd, first_seq, n)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
