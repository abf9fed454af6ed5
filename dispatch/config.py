"""Dispatch settings: every tunable of the core in one frozen record (times in ns)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DispatchConfig:
    """Knobs of the dispatch core. Defaults follow the spec (LM-03, LM-05)."""

    lateness_ns: int = 150_000_000        # a gap is waited for this long, then skipped
    flush_ns: int = 50_000_000            # how often held records are checked for expiry
    max_held: int = 200                   # records held per stream before a forced release
    order_mode: str = "auto"              # "auto" (probe each stream), "gapless", "monotonic"
    probe_records: int = 64               # auto: records a stream is watched for sparse seqs
    dedup_bits: int = 20                  # de-dup table of 2**bits event ids (8 MiB at 20)
    merge_window_ns: int = 10_000_000_000  # a merge window closes this long after it opens
    merge_max_events: int = 1000          # ... or after this many events
    consumer_ring_capacity: int = 1 << 14  # records in each consumer.<name>.md ring
    max_consumers: int = 64               # routing masks are one uint64 per stream
    fanout_rate: float = 0.0              # fan-out budget in records/s; 0: unlimited
    fair_min_share: float = 0.25          # floor of every consumer's share of its demand
    fair_burst_ns: int = 50_000_000       # token bucket depth, as time at the refill rate
    saturation_interval_ns: int = 100_000_000  # judge saturation this often; 0: never
    saturation_backlog: int = 1024        # input records left after every round: behind
    dlq_interval_ns: int = 100_000_000    # at most one drop record per consumer per interval

    def __post_init__(self):
        for name in ("lateness_ns", "flush_ns", "max_held", "merge_window_ns", "merge_max_events"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive: {name}={getattr(self, name)}")
        cap = self.consumer_ring_capacity
        if cap < 2 or cap & (cap - 1):
            raise ValueError(f"consumer_ring_capacity must be a power of two: capacity={cap}")
        if not 1 <= self.max_consumers <= 64:
            raise ValueError(f"max_consumers must be in 1..64: max_consumers={self.max_consumers}")
        if not 8 <= self.dedup_bits <= 26:
            raise ValueError(f"dedup_bits must be in 8..26: dedup_bits={self.dedup_bits}")
