"""Saturation: dispatch finds by itself that it cannot keep up, and sets a fan-out budget.

The signal is the input: after each round of reads the process reports how many
records still wait on its ingest rings (`observe`), and how many the rings' writers
overwrote unread (lapped: lost before dispatch saw them). A loop that keeps up leaves
only what arrived during its round, and some round of an interval leaves little; one
that cannot leaves ever more. Every `interval_ns` the governor decides:

- behind (no round of the interval left fewer than `behind_records` waiting, or
  records were lapped): the budget becomes `decrease` x (the budget, or the fan-out
  rate measured over the interval when there was none yet), never below `min_share`
  x `headroom` x the total demand, so that every consumer keeps at least `min_share`
  of what it subscribed to (the headroom absorbs the error of the measured demand);
- caught up while a budget is set: the budget grows by `increase`; once it covers
  the demand (with `margin`), it is lifted and nothing is metered any more.

Fan-out is what the budget trims: records over it are coalesced latest-wins (books,
tickers, merged), dropped and counted (trades), never for critical kinds
(`dispatch.fanout.FairShare` applies it per consumer). Fewer copies into consumer
rings leave the loop time to drain its input. Time comes from the caller (the core's
clock), so every decision replays in a test.
"""

from __future__ import annotations


class Saturation:
    """The fan-out budget (records/s, None: unlimited) from input backlog. One thread."""

    def __init__(self, interval_ns: int = 100_000_000, min_share: float = 0.25,
                 behind_records: int = 1024, decrease: float = 0.7, increase: float = 1.1,
                 margin: float = 1.05, headroom: float = 1.1):
        if not 0 < min_share <= 1:
            raise ValueError(f"min_share must be in (0, 1]: min_share={min_share}")
        self.interval_ns = interval_ns
        self.min_share = min_share
        self.behind_records = behind_records
        self.headroom = headroom
        self.decrease = decrease
        self.increase = increase
        self.margin = margin
        self.budget: float | None = None
        self.saturated_ns = 0       # time spent with a budget set
        self.intervals_behind = 0   # intervals found behind so far
        self._start_ns: int | None = None
        self._least_waiting: int | None = None  # fewest records left waiting after a round
        self._lost = 0                          # input records lapped in this interval
        self._delivered0 = 0

    @property
    def saturated(self) -> bool:
        return self.budget is not None

    def observe(self, waiting: int, lost: int = 0) -> None:
        """After a round of reads: records still waiting on the inputs, records lapped."""
        if self._least_waiting is None or waiting < self._least_waiting:
            self._least_waiting = waiting
        self._lost += lost

    def update(self, now_ns: int, delivered: int, demand: float) -> float | None:
        """Decide at the end of each interval; return the budget (None: unlimited).

        `delivered`: records fanned out so far (a counter); `demand`: records/s
        offered to all consumers together (measured by FairShare).
        """
        if self._start_ns is None:
            self._start_ns, self._delivered0 = now_ns, delivered
            return self.budget
        dt = now_ns - self._start_ns
        if dt < self.interval_ns:
            return self.budget
        if self.budget is not None:
            self.saturated_ns += dt
        rate = (delivered - self._delivered0) * 1e9 / dt
        behind = self._lost > 0 or (self._least_waiting or 0) >= self.behind_records
        floor = min(1.0, self.min_share * self.headroom) * demand
        if behind and demand > 0:  # without demand there is no fan-out to trim
            self.intervals_behind += 1
            start = rate if self.budget is None else self.budget
            self.budget = max(floor, self.decrease * start, 1.0)
        elif self.budget is not None:
            self.budget = max(floor, self.budget * self.increase)
            if self.budget >= self.margin * demand:
                self.budget = None  # the demand fits again: stop metering
        self._start_ns, self._delivered0 = now_ns, delivered
        self._least_waiting, self._lost = None, 0
        return self.budget
