"""Named shared-memory segments: create, attach, close, unlink, and sweep a run.

A segment is a file in /dev/shm (what POSIX `shm_open` uses on Linux), mapped with
`mmap`. We open the files ourselves instead of using `multiprocessing.shared_memory`:
its resource tracker unlinks segments that other processes still use (RING_NOTES
pitfalls 5 and 6), and here the lifecycle is explicit instead.

Names: `<prefix>.<namespace>.<name>`, e.g. `meltica.run-4f2a.md.binance-spot`. A
namespace is one pipeline run, so `Namespace(run).cleanup()` removes every segment of
that run, including those a crashed process left behind.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re

from .errors import SegmentExists, SegmentNotFound

SHM_DIR = "/dev/shm"
DEFAULT_PREFIX = "meltica"
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def _check_name(part: str, what: str) -> None:
    if not part or not _NAME_RE.match(part):
        raise ValueError(f"{what} must be dot-separated words of [A-Za-z0-9_-]: {what}={part!r}")


class Namespace:
    """The segments of one pipeline run: `<prefix>.<run>.*` in /dev/shm."""

    def __init__(self, run: str, prefix: str = DEFAULT_PREFIX):
        _check_name(run, "run")
        _check_name(prefix, "prefix")
        self.run = run
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Namespace({self.run!r}, prefix={self.prefix!r})"

    def full_name(self, name: str) -> str:
        _check_name(name, "name")
        return f"{self.prefix}.{self.run}.{name}"

    def path(self, name: str) -> str:
        return os.path.join(SHM_DIR, self.full_name(name))

    def names(self) -> list[str]:
        """Short names of this run's segments that exist now, sorted."""
        head = f"{self.prefix}.{self.run}."
        try:
            entries = os.listdir(SHM_DIR)
        except FileNotFoundError:
            return []
        return sorted(e[len(head) :] for e in entries if e.startswith(head))

    def cleanup(self) -> list[str]:
        """Unlink every segment of this run; return the short names removed."""
        removed = []
        for name in self.names():
            try:
                os.unlink(self.path(name))
                removed.append(name)
            except FileNotFoundError:
                pass
        return removed


class Segment:
    """One mapped segment. Owns the mapping; the creator owns the name (unlinks it)."""

    def __init__(self, path: str, fd: int, size: int, created: bool):
        self.path = path
        self.size = size
        self.created = created
        self.inode = os.fstat(fd).st_ino
        self.map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.fd = fd  # kept open for `lock()`

    @classmethod
    def create(cls, path: str, size: int) -> "Segment":
        """Create a zero-filled segment of `size` bytes under a private name.

        Fill its header, then call `commit()`: the segment appears under `path` only
        then, whole, so an attaching process never sees a half-built header. The file
        is 0600 whatever the umask (which can only narrow a mode): the creator's user
        alone may map it, so every reader must run as that user.
        """
        if os.path.exists(path):
            raise SegmentExists(f"segment exists already: {path}")
        tmp = f"{path}.init-{os.getpid()}"
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            seg = cls(tmp, fd, size, created=True)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        seg.final_path = path
        return seg

    def commit(self) -> None:
        """Give the segment its public name; fail if another creator got there first."""
        try:
            os.link(self.path, self.final_path)  # atomic: fails if the name exists
        except FileExistsError:
            raise SegmentExists(f"segment exists already: {self.final_path}") from None
        finally:
            os.unlink(self.path)
        self.path = self.final_path

    @classmethod
    def attach(cls, path: str) -> "Segment":
        """Map an existing segment whole."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise SegmentNotFound(f"no segment: {path}") from None
        size = os.fstat(fd).st_size
        if size == 0:
            os.close(fd)
            raise SegmentNotFound(f"segment is empty (its creator is still sizing it?): {path}")
        return cls(path, fd, size, created=False)

    def replaced(self) -> bool:
        """True when the name now points at another segment, or at none."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def lock(self) -> "_Flock":
        """An exclusive advisory lock on the segment, across processes (`with seg.lock():`).

        The lock call and its release are system calls, so they are full memory barriers:
        what one holder stored is visible to the next holder.
        """
        return _Flock(self.fd)

    def close(self) -> bool:
        """Unmap. Returns False while numpy views of the mapping are still alive.

        Every array over the mapping must be dropped first (RING_NOTES pitfall 7); if
        one is not, the mapping stays until the garbage collector frees the last view.
        """
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            self.map.close()
            return True
        except BufferError:
            return False

    def unlink(self) -> None:
        """Remove the name (mappings stay valid until closed). Only if it is still ours."""
        if not self.replaced():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class _Flock:
    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
