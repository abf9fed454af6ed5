"""The exec journal's writer: appends EVENT records with a gap-free exec_seq.

The file's format and its reader are part of the contract between the processes
(`channels.journal`); this is the one writer's end (execution).

Durability: `append` writes the records with one write(2) on an O_APPEND descriptor
(a SIGKILLed writer loses nothing it returned from) and, with `sync=True`, calls
fdatasync(2) before returning (a power loss loses nothing that was published).
A torn tail (power loss mid-write) is cut off when the writer reopens.
"""

from __future__ import annotations

import os

import numpy as np

from channels.journal import JournalError, check_header, header, read_records
from events import EVENT, Kind
from events.records import RECORD_BYTES

__all__ = ["Journal", "JournalError"]

EXEC_CHANNEL_KINDS = (Kind.EXEC_REPORT, Kind.ACCOUNT)  # both keep exec_seq at exec.exec_seq


class Journal:
    """The writer's end. `last_seq` is the exec_seq of the last record appended."""

    def __init__(self, path: str | os.PathLike, *, sync: bool = True):
        self.path = os.fspath(path)
        self.sync = sync
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        size = os.fstat(self._fd).st_size
        if size < RECORD_BYTES:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, header())
            os.fsync(self._fd)
            size = RECORD_BYTES
        check_header(os.pread(self._fd, RECORD_BYTES, 0), self.path)
        whole = size // RECORD_BYTES
        if size != whole * RECORD_BYTES:  # a torn tail: the crash came mid-write
            self.truncated_bytes = size - whole * RECORD_BYTES
            os.ftruncate(self._fd, whole * RECORD_BYTES)
        else:
            self.truncated_bytes = 0
        self.last_seq = whole - 1
        if self.last_seq:
            last = read_records(self._fd, self.last_seq, 1)[0]
            if int(last["exec"]["exec_seq"]) != self.last_seq or int(last["kind"]) not in EXEC_CHANNEL_KINDS:
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
        return read_records(self._fd, first_seq, n)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
