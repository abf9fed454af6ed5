"""Wait strategies: what a reader (or a blocked lossless writer) does while it waits.

Named for their trade-off, after the LMAX Disruptor and Agrona's idle strategies:

    BusySpin       lowest latency; burns a whole core. Only with a core to spare.
    SpinYield      spins, then `sched_yield()`: low latency, still ~a core when idle.
    BackoffSleep   spins, yields, then sleeps with growing naps: cheap when idle, its
                   latency is the nap length (the default for lossless writers).
    SpinPark       spins briefly, then parks in the kernel on the ring's writer position
                   (a futex) until the writer publishes or a bounded timeout passes:
                   cheap when idle AND woken within microseconds. The default for readers.
    PacedPark      for a steady stream: learns the gap between records, parks until
                   just before the next one is due, spins across its expected arrival,
                   parks again if it is late. A spinning reader's latency for a fraction
                   of a core (the spin window over the gap).

A strategy is called in a loop: `reset()` each time work is found, `idle(wake, token)` when
none was. `wake` is the ring's `Wake` (or None), `token` its value read *before* the
caller last looked for work: a publish after that look changes the value, so parking
returns at once instead of missing the wake-up. Lost wake-ups are still possible in
theory (Python cannot emit the StoreLoad fence a futex protocol needs), which is why
every park is bounded: a miss costs at most `max_park_ns`, never a hang.

Sleeping strategies lower the process's timer slack (Linux `PR_SET_TIMERSLACK`) to
1 us, so that a 10 us nap is 10 us and not the default 50 us slack.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time

_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_PR_SET_TIMERSLACK = 29

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _syscall = _libc.syscall
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux: no futex, no timer slack
    _syscall = None
    _prctl = None


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_slack_lowered = False


def lower_timer_slack(slack_ns: int = 1000) -> None:
    """Make this process's sleeps and timeouts precise to `slack_ns` (once per process)."""
    global _slack_lowered
    if _prctl is not None and not _slack_lowered:
        _prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0)
        _slack_lowered = True


class Wake:
    """Park on and wake through a 32-bit word of shared memory (Linux futex).

    The word is the low half of the writer's position: every publish changes it, so
    readers wait for "the position is no longer what I saw". Readers raise the hint
    word before parking; the writer wakes only when the hint is up (a system call
    only when somebody sleeps).
    """

    def __init__(self, word_address: int, words, hint_index: int):
        self._addr = ctypes.c_void_p(word_address)
        self._words = words  # int64 memoryview over the header
        self._hint = hint_index
        self.can_park = _syscall is not None and _SYS_FUTEX is not None

    def park(self, token: int, timeout_ns: int) -> None:
        """Sleep until the word differs from `token` (low 32 bits), a wake, or timeout."""
        self._words[self._hint] = 1
        ts = _Timespec(timeout_ns // 1_000_000_000, timeout_ns % 1_000_000_000)
        val = ctypes.c_int32(token & 0xFFFFFFFF).value
        _syscall(_SYS_FUTEX, self._addr, _FUTEX_WAIT, val, ctypes.byref(ts), None, 0)

    def wake_all(self) -> None:
        """Called by the writer after a publish when the hint is up."""
        self._words[self._hint] = 0
        if self.can_park:
            _syscall(_SYS_FUTEX, self._addr, _FUTEX_WAKE, 0x7FFFFFFF, None, None, 0)


class WaitStrategy:
    """Base: `reset()` after work, `idle(wake, token)` after none."""

    def reset(self) -> None:
        pass

    def idle(self, wake: Wake | None = None, token: int = 0) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BusySpin(WaitStrategy):
    """Never leave the CPU: lowest latency, one full core while waiting."""

    def idle(self, wake=None, token=0) -> None:
        pass


class SpinYield(WaitStrategy):
    """Spin `spins` times, then give the CPU away with `sched_yield()` on each idle."""

    def __init__(self, spins: int = 100):
        self.spins = spins
        self._n = 0

    def reset(self) -> None:
        self._n = 0

    def idle(self, wake=None, token=0) -> None:
        if self._n < self.spins:
            self._n += 1
        else:
            os.sched_yield()


class BackoffSleep(WaitStrategy):
    """Spin, then yield, then sleep with naps doubling from `min_sleep_ns` to `max_sleep_ns`."""

    def __init__(self, spins: int = 20, yields: int = 5, min_sleep_ns: int = 10_000,
                 max_sleep_ns: int = 1_000_000):
        self.spins, self.yields = spins, yields
        self.min_sleep_ns, self.max_sleep_ns = min_sleep_ns, max_sleep_ns
        self._n = 0
        self._nap = min_sleep_ns
        lower_timer_slack()

    def reset(self) -> None:
        self._n = 0
        self._nap = self.min_sleep_ns

    def idle(self, wake=None, token=0) -> None:
        self._n += 1
        if self._n <= self.spins:
            return
        if self._n <= self.spins + self.yields:
            os.sched_yield()
            return
        time.sleep(self._nap / 1e9)
        self._nap = min(self._nap * 2, self.max_sleep_ns)


class SpinPark(WaitStrategy):
    """Spin `spins` times, then park on the ring's futex for at most `max_park_ns`."""

    def __init__(self, spins: int = 50, max_park_ns: int = 2_000_000):
        self.spins = spins
        self.max_park_ns = max_park_ns
        self._n = 0
        self._fallback = BackoffSleep(spins=0, yields=0)
        lower_timer_slack()

    def reset(self) -> None:
        self._n = 0
        self._fallback.reset()

    def idle(self, wake=None, token=0) -> None:
        if self._n < self.spins:
            self._n += 1
            return
        if wake is not None and wake.can_park:
            wake.park(token, self.max_park_ns)
        else:
            self._fallback.idle()


class PacedPark(WaitStrategy):
    """Park through the expected gap, spin across the expected arrival, park when it is late.

    Made for a reader fed at a steady pace (a venue's stream at N records/s). It learns
    the pace from the ring's writer position (records per nanosecond over windows of at
    least `window` records, so batches do not fool it) and the phase (when the next
    record is due), then on each idle:

      1. before `due - lead_ns`: park on the ring's futex until then (a publish wakes it
         early, so an early record costs one futex wake-up, as with SpinPark);
      2. from `due - lead_ns` to `due + late`: spin (return; the caller looks again);
      3. later than that: park, bounded by `max_park_ns`, until the writer wakes it.

    The timed park of step 1 takes the scheduler's wake-up latency off the record's
    path: the reader is already on a CPU, spinning, when the record is published. It
    learns how late its timed parks return (a loaded machine wakes it tens of
    microseconds late) and parks that much shorter, which costs no CPU: the spin
    still starts about `lead_ns` before the record. Its cost is the spin window,
    `spin_share` of the gap (`late` is what is left of that share after `lead_ns`). The phase follows the records found while spinning (exact
    to a poll); one found after the early park moves the window earlier, one found
    after the late park moves it a little later, so the window settles where the
    records come. Until it has learned the pace, and without a futex, it behaves like
    SpinPark; a stream slower than one record per `max_gap_ns` gets SpinPark too. A
    bursty, irregular stream gets about SpinPark's latency for a little more CPU.
    """

    def __init__(self, lead_ns: int = 12_000, spin_share: float = 0.2, max_gap_ns: int = 2_000_000,
                 max_park_ns: int = 2_000_000, spins: int = 50, window: int = 16, learn: int = 2):
        self.lead_ns, self.spin_share, self.max_gap_ns = lead_ns, spin_share, max_gap_ns
        self.max_park_ns, self.window, self.learn = max_park_ns, window, learn
        self._fallback = SpinPark(spins=spins, max_park_ns=max_park_ns)
        self._found = 0      # when the last batch was found (reset)
        self._how = ""       # what the last idle before it did: spin / early / late / ""
        self._tok = -1       # writer position at the last learning step
        self._ref = (0, -1)  # (time, writer position) the pace is measured from
        self._gap = 0.0      # learned gap between records, ns
        self._seen = 0       # pace windows learned
        self._due = 0        # when the next record is expected
        self._late = 0       # spin this long after `_due`
        self._park_end = 0   # when the running timed park was asked to end
        self._oversleep = 0  # how late a timed park returns (rises fast, falls slowly)
        lower_timer_slack()

    def reset(self) -> None:
        self._found = time.monotonic_ns()
        self._park_end = 0
        self._fallback.reset()

    def _learn(self, token: int) -> None:
        """Called at the first idle after records were found: update pace and phase."""
        t, k = self._found, token - self._tok
        how, self._how, self._tok = self._how, "", token
        ref_t, ref_p = self._ref
        if k <= 0 or ref_p < 0 or ref_p > token or t - ref_t > self.max_gap_ns * max(1, token - ref_p):
            self._ref, self._seen, self._due = (t, token), 0, 0  # silence or a new ring: start over
            return
        if token - ref_p >= self.window:
            g = (t - ref_t) / (token - ref_p)
            self._gap = g if self._seen == 0 else self._gap + (g - self._gap) / 4
            self._seen += 1
            self._ref = (t, token)
        if self._seen < self.learn:
            return
        gap, lead = int(self._gap), self.lead_ns
        e = self._due + (k - 1) * gap  # when the last of these k records was expected
        if not self._due or abs(t - e) > gap:
            e = t                                   # no phase yet, or lost: from this batch
        elif how == "spin":
            e += (t - e) >> 2                       # found while spinning: exact, follow it
        elif how == "early":
            e += (min(t, e - lead) - e) >> 1        # came before the window: open it earlier
        elif how == "late":
            e += min(t - e, 2 * lead) >> 3          # came after it: a little later
        self._due = e + gap
        self._late = max(0, int(self.spin_share * gap) - lead)

    def idle(self, wake=None, token=0) -> None:
        if token != self._tok:
            self._learn(token)
        if self._seen < self.learn or not self._due or wake is None or not wake.can_park:
            self._fallback.idle(wake, token)
            return
        now = time.monotonic_ns()
        if self._park_end:
            if now >= self._park_end:  # the timed park ran out: learn how late it returns
                over, est = now - self._park_end, self._oversleep
                self._oversleep = est + ((over - est) // 4 if over > est else (over - est) // 32)
            self._park_end = 0
        start = self._due - self.lead_ns
        wake_at = start - min(self._oversleep, int(self._gap) // 2)
        if now < wake_at:
            self._how = "early"
            self._park_end = wake_at
            wake.park(token, wake_at - now)
        elif now <= self._due + self._late:
            self._how = "spin"
        else:
            self._how = "late"
            wake.park(token, self.max_park_ns)


def default_reader_strategy() -> WaitStrategy:
    return SpinPark()


def default_writer_strategy() -> WaitStrategy:
    return BackoffSleep()
