"""Stop on SIGTERM / SIGINT without deadlocking, however many signals come.

`threading.Event.set()` takes the Event's lock. A second signal that lands while the
first handler holds that lock runs the handler again on the same thread, which then
waits for itself forever (several SIGTERMs in a row are ordinary: an operator's double
Ctrl-C, a supervisor repeating its stop, PR_SET_PDEATHSIG firing per exiting thread).
`StopFlag.set()` takes no lock: it sets a boolean and writes one byte to a pipe, which
wakes every `wait()` (a `select` on the pipe); the byte is never read, so the pipe stays
readable and later waits return at once.

    stop = StopFlag()
    stop_on_signals(stop)
    while not stop.is_set():
        do_work()
        stop.wait(0.1)
"""

from __future__ import annotations

import os
import select
import signal


class StopFlag:
    """A stop request: `set()` is safe in signal handlers; Event-like `is_set` / `wait`."""

    def __init__(self):
        self._flag = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            try:
                os.write(self._w, b"x")
            except (BlockingIOError, OSError):
                pass

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or `timeout` seconds; return whether it is set."""
        if not self._flag:
            try:
                select.select([self._r], [], [], timeout)
            except InterruptedError:
                pass
        return self._flag

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


def stop_on_signals(stop, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """Make each of `signals` set `stop` (a StopFlag) instead of killing the process."""
    for sig in signals:
        signal.signal(sig, lambda *_: stop.set())
