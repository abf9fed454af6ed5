"""The routing table: who receives which stream, as one uint64 consumer mask per stream.

A consumer owns a bit (its slot; `consumer_id` = slot + 1). A plain subscription is
(instrument, provider or ANY, kind or ANY); a merged subscription is a merge key
(instrument, providers) with its own bit mask of consumers. Every change that alters
what somebody receives increments `version`, which fan-out stamps on every delivered
record; a command that changes nothing (a repeated subscribe) leaves it alone, which
is what makes commands idempotent. An unsubscribe that covers part of a wildcard entry
narrows it to the explicit entries left (`_narrow`). Masks are recomputed for every
stream on a change (there are hundreds of streams, and changes are rare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from events import Kind, Provider

from .streams import Streams

ANY = 0
MD_KINDS = (Kind.BOOK, Kind.TRADE, Kind.TICKER)
PROVIDERS = tuple(int(p) for p in Provider)  # what a provider wildcard stands for


@dataclass
class Subscriber:
    slot: int
    name: str
    plain: set = field(default_factory=set)    # (instrument, provider|ANY, kind|ANY)
    merged: set = field(default_factory=set)   # merge key indexes
    symbols: dict = field(default_factory=dict)  # instrument id -> symbol, for listings

    @property
    def bit(self) -> int:
        return 1 << self.slot

    @property
    def consumer_id(self) -> int:
        return self.slot + 1


class RoutingTable:
    """Subscriptions of every consumer and the masks derived from them. One thread."""

    def __init__(self, streams: Streams, max_consumers: int = 64, max_merge_keys: int = 64):
        self.streams = streams
        self.max_consumers = max_consumers
        self.max_merge_keys = max_merge_keys
        self.version = 1
        self.subs: dict[int, Subscriber] = {}           # slot -> subscriber
        self.merge_keys: dict[tuple, int] = {}          # (instrument, providers) -> key index
        self.merge_consumers: dict[int, int] = {}       # key index -> consumer mask
        self.route = np.zeros(256, np.uint64)           # stream -> consumer mask
        self.merge_feed = np.zeros(256, np.uint64)      # stream -> merge key mask
        streams.on_new = self._on_new_stream

    # -- consumers -------------------------------------------------------------------

    def add_consumer(self, name: str) -> Subscriber:
        used = set(self.subs)
        free = next((i for i in range(self.max_consumers) if i not in used), None)
        if free is None:
            raise OverflowError(f"every consumer slot is taken: max_consumers={self.max_consumers}")
        sub = self.subs[free] = Subscriber(free, name)
        return sub

    def remove_consumer(self, slot: int) -> list[int]:
        """Drop a consumer and its subscriptions; return merge keys nobody uses any more."""
        sub = self.subs.pop(slot)
        orphans = []
        for k in list(sub.merged):
            orphans += self._unmerge(sub, k)
        if sub.plain or sub.merged or orphans:
            self._changed()
        return orphans

    # -- plain subscriptions ---------------------------------------------------------

    def subscribe(self, sub: Subscriber, instrument: int, providers, kinds) -> bool:
        """Add (instrument, each provider, each kind); True when something changed.

        An entry an existing one already covers (okx books under "all of BTC") changes
        nothing; a wider entry replaces the narrower ones it covers, so a listing shows
        each thing received once."""
        entries = {(instrument, p, k) for p in (providers or (ANY,)) for k in (kinds or (ANY,))}
        new = {e for e in entries if not any(_covers(x, e) for x in sub.plain)}
        if not new:
            return False
        sub.plain = {x for x in sub.plain if not any(_covers(e, x) for e in new)} | new
        self._changed()
        return True

    def unsubscribe(self, sub: Subscriber, instrument: int, providers, kinds) -> bool:
        """Stop (instrument, each provider, each kind); without providers/kinds: all of them.

        An entry the removal covers only in part is narrowed to what is left of it, as
        explicit entries (`_narrow`): (BTC, *, *) minus okx is (BTC, p, *) for every other
        provider. So a listing shows, and the consumer SDK replays after a dispatch
        restart, exactly what is still received. True when something stopped; the same
        unsubscribe again finds nothing to stop (False, version unchanged).
        """
        narrowed: set = set()
        gone: set = set()
        for e in sub.plain:
            if e[0] == instrument:
                rest = _narrow(e, providers, kinds)
                if rest is not None:
                    gone.add(e)
                    narrowed |= rest
        if not gone:
            return False
        sub.plain -= gone
        sub.plain |= narrowed
        self._changed()
        return True

    # -- merged subscriptions --------------------------------------------------------

    def merged_subscribe(self, sub: Subscriber, instrument: int, providers) -> tuple[bool, int]:
        """Subscribe to merge key (instrument, providers); (changed, key index)."""
        mk = (instrument, tuple(sorted(set(providers))))
        k = self.merge_keys.get(mk)
        if k is None:
            used = set(self.merge_keys.values())
            k = next((i for i in range(self.max_merge_keys) if i not in used), None)
            if k is None:
                raise OverflowError(f"every merge key is taken: max_merge_keys={self.max_merge_keys}")
            self.merge_keys[mk] = k
            self.merge_consumers[k] = 0
        if k in sub.merged:
            return False, k
        sub.merged.add(k)
        self.merge_consumers[k] |= sub.bit
        self._changed()
        return True, k

    def merged_unsubscribe(self, sub: Subscriber, instrument: int, providers) -> tuple[bool, list[int]]:
        mk = (instrument, tuple(sorted(set(providers))))
        k = self.merge_keys.get(mk)
        if k is None or k not in sub.merged:
            return False, []
        orphans = self._unmerge(sub, k)
        self._changed()
        return True, orphans

    def _unmerge(self, sub: Subscriber, k: int) -> list[int]:
        sub.merged.discard(k)
        self.merge_consumers[k] &= ~sub.bit
        if self.merge_consumers[k]:
            return []
        del self.merge_consumers[k]
        mk = next(m for m, i in self.merge_keys.items() if i == k)
        del self.merge_keys[mk]
        return [k]

    def merge_key(self, k: int) -> tuple[int, tuple[int, ...]]:
        return next(m for m, i in self.merge_keys.items() if i == k)

    # -- masks -----------------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1
        self._recompute()

    def _recompute(self) -> None:
        n = len(self.streams)
        if len(self.route) < max(n, 1):
            size = max(2 * len(self.route), n)
            self.route = np.zeros(size, np.uint64)
            self.merge_feed = np.zeros(size, np.uint64)
        for s in range(n):
            self._mask_stream(s)

    def _on_new_stream(self, s: int) -> None:
        if s >= len(self.route):
            self._recompute()  # grows, then covers s
        else:
            self._mask_stream(s)

    def _mask_stream(self, s: int) -> None:
        st = self.streams
        p, i, k = int(st.provider[s]), int(st.instrument[s]), int(st.kind[s])
        mask = 0
        for sub in self.subs.values():
            for (ei, ep, ek) in sub.plain:
                if ei == i and ep in (ANY, p) and ek in (ANY, k):
                    mask |= sub.bit
                    break
        feed = 0
        if k in (Kind.BOOK, Kind.TICKER):
            for (mi, mp), key in self.merge_keys.items():
                if mi == i and p in mp:
                    feed |= 1 << key
        self.route[s] = mask
        self.merge_feed[s] = feed

    def listing(self, sub: Subscriber) -> dict:
        """A subscriber's subscriptions in plain words (slugs, kind names)."""
        def sym(i):
            return sub.symbols.get(i, str(i))

        plain = sorted({(sym(i), Provider(p).slug if p else "*", Kind(k).name.lower() if k else "*")
                        for i, p, k in sub.plain})
        merged = []
        for k in sorted(sub.merged):
            inst, provs = self.merge_key(k)
            merged.append({"symbol": sym(inst), "providers": [Provider(p).slug for p in provs]})
        return {"subscriptions": [{"symbol": s, "provider": p, "kind": k} for s, p, k in plain],
                "merged": merged}


def _covers(wide: tuple, entry: tuple) -> bool:
    """Plain entry `wide` receives everything plain entry `entry` does."""
    return wide[0] == entry[0] and wide[1] in (ANY, entry[1]) and wide[2] in (ANY, entry[2])


def _narrow(entry: tuple, providers, kinds) -> set | None:
    """What is left of plain entry (instrument, provider|ANY, kind|ANY) once (each of
    `providers`, each of `kinds`) is removed (None or empty: all); None if it covers none
    of that.

    Set algebra on (provider, kind) pairs: an entry covers Pe x Ke, the removal Pr x Kr,
    and what is left is (Pe - Pr) x Ke plus (Pe & Pr) x (Ke - Kr). A wildcard stands for
    every `Provider` (a provider that starts publishing later is still received) and
    every market-data kind (MD_KINDS).
    """
    i, ep, ek = entry
    rp = set(providers) if providers else None
    rk = set(kinds) if kinds else None
    if (rp is not None and ep != ANY and ep not in rp) or \
            (rk is not None and ek != ANY and ek not in rk):
        return None
    left: set = set()
    if rp is not None and ep == ANY:  # (Pe - Pr) x Ke
        left |= {(i, p, ek) for p in PROVIDERS if p not in rp}
    if rk is not None and ek == ANY:  # (Pe & Pr) x (Ke - Kr)
        kept = [int(k) for k in MD_KINDS if int(k) not in rk]
        both = [ep] if ep != ANY or rp is None else sorted(rp)
        left |= {(i, p, k) for p in both for k in kept}
    return left
