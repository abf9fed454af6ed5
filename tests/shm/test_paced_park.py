"""PacedPark (shm/wait.py) on a simulated clock: where it parks, where it spins.

No real time is measured: the strategy's clock is a counter the test advances, the
ring's futex is a stand-in that records each park and wakes at the next publish or at
the timeout, whichever comes first.
"""

from __future__ import annotations

import pytest

from shm import wait as wait_mod
from shm.wait import PacedPark

GAP = 100_000  # ns: 10k records/s
POLL = 1_000   # ns one look at the ring costs while spinning


class Clock:
    def __init__(self):
        self.now = 0

    def monotonic_ns(self) -> int:
        return self.now


class FakeWake:
    can_park = True

    def __init__(self, clock: Clock):
        self.clock = clock
        self.next_publish = 0
        self.parks: list[tuple[int, int]] = []  # (at, timeout)

    def park(self, token: int, timeout_ns: int) -> None:
        self.parks.append((self.clock.now, timeout_ns))
        self.clock.now = min(self.clock.now + timeout_ns, max(self.next_publish, self.clock.now))


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(wait_mod, "time", c)
    return c


def feed(strategy: PacedPark, clock: Clock, wake: FakeWake, arrivals: list[int], start: int = 0) -> list[str]:
    """Replay `arrivals` (publish times) through a reader loop; return how each was found.

    `start`: the writer position before the first of them."""
    how, pos = [], start
    for i, t in enumerate(arrivals, start=start):
        wake.next_publish = t
        last = "ready"
        while clock.now < t:
            before = len(wake.parks)
            strategy.idle(wake, pos)   # token: the writer position the reader last saw
            if len(wake.parks) > before:
                last = "park"
            else:
                last = "spin"
                clock.now += POLL
        pos = i + 1
        strategy.reset()
        how.append(last)
        clock.now += 2_000  # the reader's own work on the record
    return how


def test_a_steady_stream_is_found_spinning_inside_a_window_of_its_share(clock):
    s = PacedPark(lead_ns=12_000, spin_share=0.2)
    wake = FakeWake(clock)
    clock.now = 1_000_000
    how = feed(s, clock, wake, [1_000_000 + i * GAP for i in range(200)])
    assert how[-100:] == ["spin"] * 100  # learned: every record found while spinning
    assert abs(s._gap - GAP) < GAP / 100
    # before each window it parked until `lead_ns` ahead of the record
    tail = wake.parks[-50:]
    assert all(at + timeout <= 1_000_000 + 199 * GAP for at, timeout in tail)
    # and it spun at most its share of the gap per record
    spins = sum(1 for h in how[-100:] if h == "spin")
    assert spins == 100


def test_spin_time_per_record_stays_within_the_share(clock):
    s = PacedPark(lead_ns=12_000, spin_share=0.2)
    wake = FakeWake(clock)
    clock.now = 1_000_000
    arrivals = [1_000_000 + i * GAP for i in range(300)]
    feed(s, clock, wake, arrivals[:200])
    polls = 0
    for i, t in enumerate(arrivals[200:], start=200):
        wake.next_publish = t
        while clock.now < t:
            before = len(wake.parks)
            s.idle(wake, i)
            if len(wake.parks) == before:
                polls += 1
                clock.now += POLL
        s.reset()
        clock.now += 2_000
    assert polls * POLL / 100 <= 0.2 * GAP


def test_a_late_record_is_awaited_parked_and_does_not_shift_the_window_far(clock):
    s = PacedPark(lead_ns=12_000, spin_share=0.2)
    wake = FakeWake(clock)
    clock.now = 1_000_000
    arrivals = [1_000_000 + i * GAP for i in range(200)]
    arrivals[150] += 60_000  # one record 60 us late (a writer preempted)
    how = feed(s, clock, wake, arrivals)
    assert how[150] == "park"            # the window closed: it parked until the publish
    assert how[160:] == ["spin"] * 40    # and the steady records after it are caught again


def test_without_a_learned_pace_it_is_spin_park(clock):
    s = PacedPark(spins=3, max_park_ns=2_000_000)
    wake = FakeWake(clock)
    wake.next_publish = 10**12
    for _ in range(3):
        s.idle(wake, 0)
    assert wake.parks == []
    s.idle(wake, 0)
    assert wake.parks == [(0, 2_000_000)]


def test_a_long_silence_starts_the_learning_over(clock):
    s = PacedPark()
    wake = FakeWake(clock)
    clock.now = 1_000_000
    feed(s, clock, wake, [1_000_000 + i * GAP for i in range(100)])
    assert s._seen >= s.learn
    clock.now += 50_000_000  # 50 ms without a record
    feed(s, clock, wake, [clock.now + 10_000], start=100)
    s.idle(wake, 101)
    assert s._seen == 0 and s._due == 0


class OversleepingWake(FakeWake):
    """A loaded machine: a timed park that runs out returns `late` ns after its timeout."""

    def __init__(self, clock: Clock, late: int):
        super().__init__(clock)
        self.late = late

    def park(self, token: int, timeout_ns: int) -> None:
        self.parks.append((self.clock.now, timeout_ns))
        end = self.clock.now + timeout_ns
        woken = max(self.next_publish, self.clock.now)
        self.clock.now = woken if woken < end else end + self.late


def test_it_learns_that_timed_parks_return_late_and_parks_that_much_shorter(clock):
    s = PacedPark(lead_ns=12_000, spin_share=0.2)
    wake = OversleepingWake(clock, late=30_000)  # later than the whole lead
    clock.now = 1_000_000
    how = feed(s, clock, wake, [1_000_000 + i * GAP for i in range(300)])
    assert how[-100:] == ["spin"] * 100
    assert 25_000 <= s._oversleep <= 35_000
