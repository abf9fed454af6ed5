"""Account state per venue: balances and positions as the venue last reported them, and the
ACCOUNT records that tell consumers what changed.

Adapters report `VenueAccountReported` (venues.trading): `full` snapshots by REST
(`query_account`: when a venue is started or attached, and on every user-stream
(re)connect, so nothing the stream missed while down stays wrong) and partial updates
from the user stream. A full snapshot replaces the venue's state: what it lacks is zero
now (Binance's `omitZeroBalances`, a closed position). A partial update replaces only
what it names. Each balance or position whose value changed becomes one ACCOUNT record
(events.records), published through the engine's one path: journal (gap-free exec_seq,
the same sequence as exec reports, so a reconnecting or remote consumer replays them)
-> exec ring. Records are queued with the exec reports in the order the venue events
arrive, so a fill's report comes before the balance it moved when the venue sends them
in that order (Binance: executionReport, then outboundAccountPosition).

Order between REST and stream: a snapshot can be answered after a stream update it
predates. Each entry keeps the venue time of its last update (`event_ts_ns`: Binance's
"time of last account update"); a report older than that (both times known) leaves the
entry alone.

A failed query (`VenueAccountFailed`) is counted, put in the DLQ and asked again after
a backoff (doubling, the engine's query backoff min..max); a query whose answer never
comes is asked again after 4 x the longest backoff. Adapters without `query_account`
have no account state here (skipped).

On a restart, execution rebuilds the state from the journal's ACCOUNT records
(`restore`) before the first snapshot, so what went to zero meanwhile is published as
zero. One thread (the engine's).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from events import AccountEntry, AccountSource, HeaderFlag, Kind, Provider
from events.account import latest
from events.ids import event_id, mix64
from events.records import stamp_header
from venues.trading import Balance, VenueAccountFailed, VenueAccountReported

if TYPE_CHECKING:
    from .engine import Engine
    from .slots import VenueSlot


@dataclass(frozen=True, slots=True)
class PositionState:
    """A position as execution keeps it: the instrument by id, symbol and scales (enough to
    publish its zero once it is gone, even after a restart)."""

    instrument_id: int
    symbol: str
    px_scale: int
    sz_scale: int
    size: int
    entry_px: int
    unrealized_pnl: int
    pnl_scale: int
    pnl_asset: str

    def zero(self) -> "PositionState":
        return PositionState(self.instrument_id, self.symbol, self.px_scale, self.sz_scale, 0, 0, 0,
                             self.pnl_scale, self.pnl_asset)

    @property
    def empty(self) -> bool:
        return self.size == 0 and self.unrealized_pnl == 0


@dataclass(frozen=True, slots=True)
class Change:
    """One balance or position to publish as an ACCOUNT record."""

    provider: Provider
    balance: Balance | None
    position: PositionState | None
    source: AccountSource
    snapshot: bool
    event_ts_ns: int


def _position(p) -> PositionState:
    inst = p.instrument
    return PositionState(inst.id, inst.symbol, inst.px_scale, inst.sz_scale, p.size, p.entry_px,
                         p.unrealized_pnl, p.pnl_scale, p.pnl_asset)


def _zero(b: Balance) -> Balance:
    return Balance(b.asset, 0, 0, b.scale)


class Accounts:
    """Balances and positions of every venue; which changed. No I/O."""

    def __init__(self):
        self.balances: dict[Provider, dict[str, tuple[Balance, int]]] = {}         # asset -> (value, ts)
        self.positions: dict[Provider, dict[int, tuple[PositionState, int]]] = {}  # instrument id -> ...
        self.retry: dict[Provider, tuple[int, int]] = {}  # venue -> (ask again at ns, backoff ns)

    def apply(self, provider: Provider, ev: VenueAccountReported) -> list[Change]:
        """Apply one report of venue `provider`; return what changed, in the report's order
        (gone entries of a full snapshot last)."""
        provider = Provider(provider)
        ts = ev.event_ts_ns
        source = AccountSource.REST if ev.source == "rest" else AccountSource.STREAM
        out: list[Change] = []
        bals = self.balances.setdefault(provider, {})
        poss = self.positions.setdefault(provider, {})
        seen_b: set[str] = set()
        seen_p: set[int] = set()
        for b in ev.balances:
            seen_b.add(b.asset)
            if _newer(bals.get(b.asset), ts) and _set(bals, b.asset, b, ts):
                out.append(Change(provider, b, None, source, ev.full, ts))
        for p in ev.positions:
            ps = _position(p)
            seen_p.add(ps.instrument_id)
            if _newer(poss.get(ps.instrument_id), ts) and _set(poss, ps.instrument_id, ps, ts):
                out.append(Change(provider, None, ps, source, ev.full, ts))
        if ev.full:
            for asset, (b, _) in list(bals.items()):
                if asset not in seen_b and _newer(bals[asset], ts) and _set(bals, asset, _zero(b), ts):
                    out.append(Change(provider, _zero(b), None, source, True, ts))
            for iid, (p, _) in list(poss.items()):
                if iid not in seen_p and _newer(poss[iid], ts) and _set(poss, iid, p.zero(), ts):
                    out.append(Change(provider, None, p.zero(), source, True, ts))
        return out

    def restore(self, recs: np.ndarray) -> int:
        """Take the state that ACCOUNT records among `recs` (journal order) state; return how
        many records were applied (the newest of each key: events.account.latest)."""
        acct = latest(recs)
        for rec in acct:
            a = rec["account"]
            provider = Provider(int(rec["provider"]))
            ts = int(rec["event_ts_ns"])
            asset = bytes(a["asset"]).rstrip(b"\0").decode()
            if int(a["entry"]) == AccountEntry.BALANCE:
                self.balances.setdefault(provider, {})[asset] = (
                    Balance(asset, int(a["free"]), int(a["locked"]), int(a["scale"])), ts)
            elif int(a["entry"]) == AccountEntry.POSITION:
                iid = int(rec["instrument"])
                self.positions.setdefault(provider, {})[iid] = (PositionState(
                    iid, bytes(a["symbol"]).rstrip(b"\0").decode(), int(a["px_scale"]), int(a["sz_scale"]),
                    int(a["size"]), int(a["entry_px"]), int(a["unrealized_pnl"]), int(a["pnl_scale"]), asset), ts)
        return len(acct)

    def restore_journal(self, journal, chunk: int = 4096) -> int:
        """`restore` from every record of exec journal `journal` (execution.journal.Journal);
        a pass over the file (events.account: about 1 s per 200,000 records)."""
        n, seq = 0, 1
        while seq <= journal.last_seq:
            recs = journal.read(seq, chunk)
            if not len(recs):
                break
            n += self.restore(recs)
            seq += len(recs)
        return n

    def view(self, provider: Provider) -> dict:
        """The venue's nonzero balances and open positions (status, tests)."""
        p = Provider(provider)
        return {"balances": {a: b for a, (b, _) in self.balances.get(p, {}).items() if b.free or b.locked},
                "positions": {s.symbol: s for s, _ in self.positions.get(p, {}).values() if not s.empty}}


def _newer(known, ts: int) -> bool:
    """A report at venue time `ts` may replace `known` (value, its ts): not older than it."""
    return known is None or not (ts and known[1] and ts < known[1])


def _set(table: dict, key, value, ts: int) -> bool:
    """Store `value` at `key`; True when it differs from what was there (zero: nothing there)."""
    known = table.get(key)
    old = known[0] if known else None
    table[key] = (value, ts or (known[1] if known else 0))
    if old is None:
        return not _is_zero(value)
    return old != value


def _is_zero(v) -> bool:
    return (v.free == 0 and v.locked == 0) if isinstance(v, Balance) else v.empty


# -- the engine's route ------------------------------------------------------------------

def query(eng: Engine, slot: VenueSlot) -> bool:
    """Ask venue `slot` for its whole account (REST); False: its adapter has no accounts."""
    ask = getattr(slot.adapter, "query_account", None)
    if ask is None:
        eng.accounts.retry.pop(slot.provider, None)
        return False
    _, backoff = eng.accounts.retry.get(slot.provider, (0, eng.backoff_min // 2))
    eng.accounts.retry[slot.provider] = (eng.clock() + 4 * eng.backoff_max, backoff)  # until it is answered
    eng.inc("exec.account.queries", venue=slot.provider.slug)
    ask()
    return True


def on_reported(eng: Engine, slot: VenueSlot, ev: VenueAccountReported) -> None:
    if ev.full:
        eng.accounts.retry.pop(slot.provider, None)
    eng.inc("exec.account.reports", venue=slot.provider.slug, source=ev.source)
    bad = [x for x in (*ev.balances, *ev.positions) if not _fits(x)]
    if bad:  # a record could not hold it: leave the entry as it was, say so
        for _ in bad:
            eng.inc("exec.account.bad", venue=slot.provider.slug)
        if eng.dlq is not None:
            eng.dlq.put("account_value_out_of_range", priority="high", venue=slot.provider.slug,
                        entries=[repr(x) for x in bad])
        ev = VenueAccountReported(tuple(b for b in ev.balances if _fits(b)),
                                  tuple(p for p in ev.positions if _fits(p)), ev.full, ev.event_ts_ns, ev.source)
    for c in eng.accounts.apply(slot.provider, ev):
        eng.publish_account(c)


def on_failed(eng: Engine, slot: VenueSlot, ev: VenueAccountFailed) -> None:
    eng.inc("exec.account.failed", venue=slot.provider.slug)
    if eng.dlq is not None:
        eng.dlq.put("account_query_failed", venue=slot.provider.slug, error=ev.reason)
    _, backoff = eng.accounts.retry.get(slot.provider, (0, eng.backoff_min // 2))
    backoff = min(max(backoff * 2, eng.backoff_min), eng.backoff_max)
    eng.accounts.retry[slot.provider] = (eng.clock() + backoff, backoff)


def _fits(x) -> bool:
    """Its values fit an ACCOUNT record: int64 mantissas, int8 scales."""
    if isinstance(x, Balance):
        values, scales = (x.free, x.locked), (x.scale,)
    else:
        values, scales = (x.size, x.entry_px, x.unrealized_pnl), (x.pnl_scale,)
    return all(-(1 << 63) <= v < (1 << 63) for v in values) and all(-128 <= sc <= 127 for sc in scales)


def run_due(eng: Engine, now: int) -> int:
    """Ask again the venues whose account query failed or went unanswered; return how many."""
    work = 0
    for p, (due, _) in list(eng.accounts.retry.items()):
        if due <= now:
            slot = eng.slots.get(p)
            if slot is None or not query(eng, slot):
                eng.accounts.retry.pop(p, None)
                continue
            eng.inc("exec.account.retries", venue=p.slug)
            work += 1
    return work


def fill(rec, seq: int, c: Change, now_ns: int) -> None:
    """Write change `c` as the ACCOUNT record of exec_seq `seq` into `rec` (zeroed)."""
    pos = c.position
    inst = pos.instrument_id if pos is not None else 0
    key = (pos.symbol if pos is not None else c.balance.asset).encode()
    stamp_header(rec, Kind.ACCOUNT, int(c.provider), inst, seq_provider=seq, ingest_ts_ns=now_ns,
                 event_ts_ns=c.event_ts_ns or now_ns, event_id=event_id(int(c.provider), Kind.ACCOUNT, inst, seq),
                 trace_id=mix64(zlib.crc32(key)), flags=HeaderFlag.SNAPSHOT if c.snapshot else 0)
    a = rec["account"]
    a["exec_seq"] = seq
    a["source"] = c.source
    if pos is None:
        b = c.balance
        a["entry"], a["asset"], a["free"], a["locked"], a["scale"] = (
            AccountEntry.BALANCE, b.asset.encode()[:16], b.free, b.locked, b.scale)
    else:
        a["entry"], a["symbol"] = AccountEntry.POSITION, pos.symbol.encode()[:32]
        a["asset"] = pos.pnl_asset.encode()[:16]
        a["size"], a["entry_px"], a["unrealized_pnl"] = pos.size, pos.entry_px, pos.unrealized_pnl
        a["px_scale"], a["sz_scale"], a["pnl_scale"] = pos.px_scale, pos.sz_scale, pos.pnl_scale
