"""The exec journal: an append-only file of fixed-size EVENT records, gap-free exec_seq.

    offset            size   content
    0                 768    header: magic "MELTEXJ1", layout version, record bytes,
                             events.SCHEMA_VERSION, created_ns (little-endian int64s)
    768 * N           768    EVENT record of exec_seq N (N >= 1), kind EXEC_REPORT

So exec_seq N is at offset N * RECORD_BYTES, and a reader (a consumer catching up)
can read any range with one pread, without asking the writer. One writer process
(execution) appends; any number of readers read.

Durability: `append` writes the records with one write(2) on an O_APPEND descriptor
(a SIGKILLed writer loses nothing it returned from) and, with `sync=True`, calls
fdatasync(2) before returning (a power loss loses nothing that was published).
Readers read only whole records below the file size: Linux raises the size of a
regular file only after the bytes below it are copied, so a record below the size
is complete; a torn tail (power loss mid-write) is cut off when the writer reopens.
"""

from __future__ import annotations

import os
import time

import numpy as np

from events import EVENT, Kind
from events.kinds import SCHEMA_VERSION
from events.records import RECORD_BYTES

MAGIC = int.from_bytes(b"MELTEXJ1", "little")
LAYOUT_VERSION = 1
_HEADER_WORDS = 5


class JournalError(Exception):
    """The journal file is not what we expect (magic, version, sequence)."""


def _header() -> bytes:

    words = np.zeros(RECORD_BYTES // 8, "<i8")
    words[:_HEADER_WORDS] = [MAGIC, LAYOUT_VERSION, RECORD_BYTES, SCHEMA_VERSION, time.time_ns()]
    return words.tobytes()


def _check_header(raw: bytes, path: str) -> None:
    words = np.frombuffer(raw[: _HEADER_WORDS * 8], "<i8")
    if words[0] != MAGIC:
        raise JournalError(f"{path}: not an exec journal: magic={int(words[0]):#x}")
    if words[1] != LAYOUT_VERSION or words[2] != RECORD_BYTES or words[3] != SCHEMA_VERSION:
        raise JournalError(f"{path}: journal layout differs: version={words[1]}, record_bytes={words[2]}, "
                           f"schema={words[3]}; ours: {LAYOUT_VERSION}, {RECORD_BYTES}, {SCHEMA_VERSION}")


def _read(fd: int, first_seq: int, n: int) -> np.ndarray:
    raw = os.pread(fd, n * RECORD_BYTES, first_seq * RECORD_BYTES)
    k = len(raw) // RECORD_BYTES
    return np.frombuffer(raw[: k * RECORD_BYTES], EVENT).copy()


class Journal:
    """The writer's end. `last_seq` is the exec_seq of the last record appended."""

    def __init__(self, path: str | os.PathLike, *, sync: bool = True):
        self.path = os.fspath(path)
        self.sync = sync
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        size = os.fstat(self._fd).st_size
        if size < RECORD_BYTES:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, _header())
            os.fsync(self._fd)
            size = RECORD_BYTES
        _check_header(os.pread(self._fd, RECORD_BYTES, 0), self.path)
        whole = size // RECORD_BYTES
        if size != whole * RECORD_BYTES:  # a torn tail: the crash came mid-write
            self.truncated_bytes = size - whole * RECORD_BYTES
            os.ftruncate(self._fd, whole * RECORD_BYTES)
        else:
            self.truncated_bytes = 0
        self.last_seq = whole - 1
        if self.last_seq:
            last = _read(self._fd, self.last_seq, 1)[0]
            if int(last["exec"]["exec_seq"]) != self.last_seq or int(last["kind"]) != Kind.EXEC_REPORT:
                raise JournalError(f"{self.path}: record {self.last_seq} holds exec_seq "
                                   f"{int(last['exec']['exec_seq'])}, kind {int(last['kind'])}")

    def append(self, records: np.ndarray) -> None:
        """Append records whose exec_seq run on from `last_seq`; durable per `sync`."""
        n = len(records)
        if not n:
            return
        seqs = records["exec"]["exec_seq"]
        first = self.last_seq + 1
        if int(seqs[0]) != first or int(seqs[-1]) != first + n - 1:
            raise JournalError(f"{self.path}: append must continue at exec_seq {first}: got "
                               f"{int(seqs[0])}..{int(seqs[-1])}")
        data = records.tobytes()
        done = os.write(self._fd, data)
        while done < len(data):  # a regular file writes whole, but be exact
            done += os.write(self._fd, data[done:])
        if self.sync:
            os.fdatasync(self._fd)
        self.last_seq += n

    def read(self, first_seq: int, max_n: int) -> np.ndarray:
        """Copies of records first_seq.. (at most max_n, none past last_seq)."""
        n = min(max_n, self.last_seq - first_seq + 1)
        if first_seq < 1 or n <= 0:
            return np.zeros(0, EVENT)
        return _read(self._fd, first_seq, n)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class JournalReader:
    """A reader's end (any process): read records by exec_seq, never writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        head = os.pread(self._fd, RECORD_BYTES, 0)
        if len(head) < RECORD_BYTES:
            os.close(self._fd)
            raise JournalError(f"{self.path}: no header yet")
        _check_header(head, self.path)

    def last_seq(self) -> int:
        """The highest exec_seq whose record is complete in the file now."""
        return os.fstat(self._fd).st_size // RECORD_BYTES - 1

    def read(self, first_seq: int, max_n: int) -> np.ndarray:
        """Copies of the complete records first_seq.. (at most max_n)."""
        n = min(max_n, self.last_seq() - first_seq + 1)
        if first_seq < 1 or n <= 0:
            return np.zeros(0, EVENT)
        return _read(self._fd, first_seq, n)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
