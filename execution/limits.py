"""Pre-trade limits per consumer: max order notional, max open orders, max order rate.

Configured as a mapping {"default": {...}, "consumers": {name: {...}}}; each entry may
hold `max_notional` (a decimal string in quote units), `max_open_orders` (int) and
`max_orders_per_s` (int, a sliding one-second window of accepted orders). A missing
key means no limit. Every violation is a `LimitBreached` (a BadInput) naming the limit.
The clock is injected (integer nanoseconds), so tests need no sleeps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import orjson

from events import BadInput

KEYS = ("max_notional", "max_open_orders", "max_orders_per_s")


def exact(text: str) -> tuple[int, int]:
    """(mantissa, scale) of a non-negative decimal string, as unbounded Python ints (exact)."""
    whole, _, frac = text.strip().partition(".")
    if not (whole or frac) or not (whole or "0").isdigit() or (frac and not frac.isdigit()):
        raise BadInput(f"not a non-negative decimal string: {text!r}")
    return int(whole or "0") * 10 ** len(frac) + int(frac or "0"), len(frac)


def exceeds(mantissa: int, scale: int, cap: tuple[int, int]) -> bool:
    """mantissa / 10**scale > cap, exactly."""
    cm, cs = cap
    s = max(scale, cs)
    return mantissa * 10 ** (s - scale) > cm * 10 ** (s - cs)


class LimitBreached(BadInput):
    """An order would break a pre-trade limit; `limit` names which one."""

    def __init__(self, limit: str, message: str):
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limits:
    max_notional: str | None = None
    max_open_orders: int | None = None
    max_orders_per_s: int | None = None


def parse_limits(text: str) -> dict:
    """`--limits`: a JSON file path, or inline `key=value,...` for the default entry."""
    text = text.strip()
    if text.startswith("{"):
        return orjson.loads(text)
    if "=" not in text:
        with open(text, "rb") as f:
            return orjson.loads(f.read())
    entry = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in KEYS:
            raise BadInput(f"unknown limit {key!r}; known: {', '.join(KEYS)}")
        entry[key] = value.strip() if key == "max_notional" else int(value)
    return {"default": entry}


def _limits(entry: dict) -> Limits:
    unknown = set(entry) - set(KEYS)
    if unknown:
        raise BadInput(f"unknown limit keys {sorted(unknown)}; known: {', '.join(KEYS)}")
    notional = entry.get("max_notional")
    if notional is not None:
        notional = str(notional)
        exact(notional)  # a bad decimal fails at start-up
    return Limits(notional, entry.get("max_open_orders"), entry.get("max_orders_per_s"))


class LimitBook:
    """The configured limits and each consumer's recent order times."""

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.default = _limits(config.get("default", {}))
        self.per_consumer = {name: _limits({**config.get("default", {}), **entry})
                             for name, entry in config.get("consumers", {}).items()}
        self._recent: dict[str, deque] = {}

    def for_consumer(self, name: str) -> Limits:
        return self.per_consumer.get(name, self.default)

    def check(self, consumer: str, *, notional: int | None, notional_scale: int, open_orders: int,
              now_ns: int) -> None:
        """Raise LimitBreached if one more order of `notional` would break a limit.

        `notional` is a mantissa at `notional_scale`; None when it is not known (a
        market order without a reference price).
        """
        lim = self.for_consumer(consumer)
        if lim.max_notional is not None:
            if notional is None:
                raise LimitBreached("max_notional", "market order without ref_price: the notional limit "
                                    f"({lim.max_notional}) cannot be checked; send ref_price")
            if exceeds(notional, notional_scale, exact(lim.max_notional)):
                raise LimitBreached("max_notional", f"order notional exceeds max_notional={lim.max_notional} "
                                    f"for consumer {consumer!r}")
        if lim.max_open_orders is not None and open_orders >= lim.max_open_orders:
            raise LimitBreached("max_open_orders", f"consumer {consumer!r} has {open_orders} open orders, "
                                f"max_open_orders={lim.max_open_orders}")
        if lim.max_orders_per_s is not None:
            q = self._recent.setdefault(consumer, deque())
            while q and now_ns - q[0] >= 1_000_000_000:
                q.popleft()
            if len(q) >= lim.max_orders_per_s:
                raise LimitBreached("max_orders_per_s", f"consumer {consumer!r} sent {len(q)} orders in the "
                                    f"last second, max_orders_per_s={lim.max_orders_per_s}")

    def record(self, consumer: str, now_ns: int) -> None:
        """Count an accepted order against the rate limit."""
        if self.for_consumer(consumer).max_orders_per_s is not None:
            self._recent.setdefault(consumer, deque()).append(now_ns)
