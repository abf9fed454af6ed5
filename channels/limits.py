"""Per-consumer request budgets: token buckets keyed by name, bounded in number.

`RateLimit(rate_per_s, burst)`: `allow(name, now_ns)` takes one token from `name`'s
bucket (refilled at `rate_per_s`, holding at most `burst`) and says whether there was
one. The clock is injected; at most `max_keys` buckets are kept (the least recently
used goes first), so a stream of new names costs bounded memory.
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimit:
    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 4096):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst >= 1: rate_per_s={rate_per_s}, burst={burst}")
        self.rate_per_ns = rate_per_s / 1e9
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, list] = OrderedDict()  # name -> [tokens, last_ns]

    def allow(self, name: str, now_ns: int) -> bool:
        b = self._buckets.get(name)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            b = self._buckets[name] = [self.burst, now_ns]
        else:
            self._buckets.move_to_end(name)
            b[0] = min(self.burst, b[0] + (now_ns - b[1]) * self.rate_per_ns)
            b[1] = now_ns
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        return False

    def forget(self, name: str) -> None:
        self._buckets.pop(name, None)
