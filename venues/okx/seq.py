"""seq_provider for OKX channels that carry only a millisecond time (`ts`).

OKX `tickers` messages, and `books` messages of feeds without `seqId`, have no
sequence number; `ts` alone repeats within a millisecond, so two messages of one
stream would get the same seq_provider, hence the same event_id, and dispatch's
de-dup would drop the second. They get

    seq_provider = ts_ms * 1000 + k

k counting the messages of that stream within the same millisecond (0 for the
first), so seq_provider is strictly increasing per stream while ts_ms =
seq_provider // 1000 stays readable (the venue time itself is in event_ts_ns). A
ts that goes backwards, or a thousandth message in one millisecond, continues at
last + 1: still strictly increasing (the Kraken adapter does the same with
microseconds).
"""

from __future__ import annotations

SUB_MS = 1000


def next_seq(ts_ms: int, last: int) -> int:
    """The seq_provider of a message stamped `ts_ms`, after `last` on the same stream."""
    seq = ts_ms * SUB_MS
    return seq if seq > last else last + 1
