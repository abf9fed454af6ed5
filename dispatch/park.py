"""Park the dispatch loop on every ingest ring at once, until one of them publishes.

A ring's writer publishes by storing its position; readers park on the low 32 bits of
that word (a futex) after raising the ring's waiters hint, and the writer then wakes
them (`shm.wait.Wake`). One ring is what `RingReader.wait_read` parks on; dispatch
reads several, so it raises the hint of each and waits on all their words with one
`futex_waitv` (Linux 5.16+): a publish on any ring wakes it within microseconds, not
after a nap. Where the word lives comes from `shm.layout`, as for every reader.

A park is bounded (`timeout_ns`): lost wake-ups are possible in theory (Python cannot
emit the StoreLoad fence between raising the hint and the kernel's load of the word),
and control requests and timers need the loop now and then. Without futex_waitv the
parker waits on one ring's futex (the one read least recently, in turn), or naps.

    parker = Parker(readers)
    do_work()                                    # reads every ring as far as it can
    parker.park(parker.read_up_to(), timeout_ns)  # or tokens() taken before the round
"""

from __future__ import annotations

import ctypes
import platform
import time

from shm import RingReader
from shm import layout as L
from shm.wait import lower_timer_slack

_SYS_FUTEX_WAITV = {"x86_64": 449, "aarch64": 449}.get(platform.machine())
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT = 0
_FUTEX2_SIZE_U32 = 0x02  # shared (not FUTEX2_PRIVATE): the writer is another process
_CLOCK_MONOTONIC = 1

try:
    _syscall = ctypes.CDLL(None, use_errno=True).syscall
except (OSError, AttributeError):
    _syscall = None


class _Waitv(ctypes.Structure):
    _fields_ = [("val", ctypes.c_uint64), ("uaddr", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("_reserved", ctypes.c_uint32)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _probe_waitv() -> bool:
    """futex_waitv with no futexes: EINVAL where it exists, ENOSYS where it does not."""
    if _syscall is None or _SYS_FUTEX_WAITV is None:
        return False
    _syscall(_SYS_FUTEX_WAITV, None, 0, 0, None, _CLOCK_MONOTONIC)
    return ctypes.get_errno() != 38  # ENOSYS


HAVE_WAITV = _probe_waitv()


class Parker:
    """Waits on the position words of a fixed set of rings. Rebuild it when the set changes.

    The readers must stay attached while the parker is used: it writes their hint words
    and waits on their position words by address.
    """

    def __init__(self, readers: list[RingReader], waitv: bool = HAVE_WAITV):
        lower_timer_slack()
        self.readers = list(readers)
        n = len(self.readers)
        self._waitv = waitv and n > 0
        self._futex = [0] * n              # address of each ring's position word (low half)
        self._hints: list[ctypes.c_int64] = []
        for i, r in enumerate(self.readers):
            base = r.records.ctypes.data - L.records_offset(r.max_readers, r.capacity)
            self._futex[i] = base + L.WRITER_POSITION_OFFSET  # little-endian: the low half
            self._hints.append(ctypes.c_int64.from_address(base + L.WAKE_HINT_OFFSET))
        self._vec = (_Waitv * max(n, 1))()
        for i, addr in enumerate(self._futex):
            self._vec[i].uaddr = addr
            self._vec[i].flags = _FUTEX2_SIZE_U32
        self._turn = 0
        self.parks = 0   # parks so far (statistics)

    def tokens(self) -> list[int]:
        """Every ring's writer position: take them before looking for work."""
        return [r.writer_position() for r in self.readers]

    def read_up_to(self) -> list[int]:
        """Every ring's read position: tokens after a round that read all it could.

        A ring whose writer is past it (published since, or more than one batch) ends
        the park at once; so no idle round is needed to take tokens before parking.
        """
        return [r.position for r in self.readers]

    def park(self, tokens: list[int], timeout_ns: int) -> None:
        """Sleep until a ring's position differs from its token, a wake, or `timeout_ns`."""
        if timeout_ns <= 0:
            return
        self.parks += 1
        if not self.readers or _syscall is None or _SYS_FUTEX is None:
            time.sleep(timeout_ns / 1e9)
            return
        if self._waitv:
            for i, t in enumerate(tokens):
                self._vec[i].val = t & 0xFFFFFFFF
                self._hints[i].value = 1  # one aligned 8-byte store: "somebody sleeps"
            deadline = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + timeout_ns
            ts = _Timespec(deadline // 1_000_000_000, deadline % 1_000_000_000)
            _syscall(_SYS_FUTEX_WAITV, self._vec, len(tokens), 0, ctypes.byref(ts),
                     _CLOCK_MONOTONIC)
            return
        i = self._turn = (self._turn + 1) % len(self.readers)  # one ring, in turn
        self._hints[i].value = 1
        ts = _Timespec(timeout_ns // 1_000_000_000, timeout_ns % 1_000_000_000)
        _syscall(_SYS_FUTEX, ctypes.c_void_p(self._futex[i]), _FUTEX_WAIT,
                 ctypes.c_int32(tokens[i] & 0xFFFFFFFF).value, ctypes.byref(ts), None, 0)
