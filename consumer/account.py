"""Balances and positions per venue, as the exec channel's ACCOUNT records state them.

    with OrderClient(consumer) as oc:
        oc.poll_reports()                          # reads the exec channel, ACCOUNT records too
        acct = oc.account("binance-spot")          # AccountView: kept current by poll_reports
        acct.balances["USDT"].free                 # Decimal("9500.25"); .free_m: the int64 mantissa
        acct.positions["BTC-USDT-SWAP"].size       # signed: long > 0

    follower = AccountFollower(run)                # no orders: follow the exec journal alone
    follower.poll(); follower.account("okx")       # (the live view does this)

Execution publishes one ACCOUNT record (events.records) per balance or position whose value
changed, in the gap-free exec_seq order of the exec reports (execution/account.py): from a
REST snapshot of the venue (on start and on every user-stream reconnect) or a user-stream
update. The newest record per (venue, asset) or (venue, instrument) is the state; a zero
balance or a zero-size position is dropped from the view.

An `OrderClient` hands its own exec reports out of `poll_reports` and applies every ACCOUNT
record it reads to its `AccountBook` (every consumer sees the account: the records carry
consumer_id 0). A client that resumes from a cursor first reads the ACCOUNT records before
it from the journal (`backfill`: one pass over the journal, at 768 bytes a record).
`AccountFollower` reads the journal file only: it holds no slot of the lossless exec ring,
so a slow display never holds execution back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from channels.journal import JournalError, JournalReader
from channels.names import journal_path
from core.run import RunContext
from events import AccountEntry, Provider, to_decimal
from events.account import latest


@dataclass(frozen=True, slots=True)
class BalanceView:
    """One asset: `free_m` / `locked_m` mantissas at `scale`; `free` / `locked` as Decimals."""

    asset: str
    free_m: int
    locked_m: int
    scale: int
    event_ts_ns: int

    @property
    def free(self) -> Decimal:
        return Decimal(to_decimal(self.free_m, self.scale))

    @property
    def locked(self) -> Decimal:
        return Decimal(to_decimal(self.locked_m, self.scale))

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class PositionView:
    """One position as the venue reports it: `size_m` signed (long > 0) at `sz_scale`, in base
    units; `entry_px_m` at `px_scale`; `unrealized_pnl_m` at `pnl_scale`, in `pnl_asset`."""

    symbol: str
    instrument_id: int
    size_m: int
    entry_px_m: int
    unrealized_pnl_m: int
    px_scale: int
    sz_scale: int
    pnl_scale: int
    pnl_asset: str
    event_ts_ns: int

    @property
    def size(self) -> Decimal:
        return Decimal(to_decimal(self.size_m, self.sz_scale))

    @property
    def entry_px(self) -> Decimal:
        return Decimal(to_decimal(self.entry_px_m, self.px_scale))

    @property
    def unrealized_pnl(self) -> Decimal:
        return Decimal(to_decimal(self.unrealized_pnl_m, self.pnl_scale))


@dataclass(slots=True)
class AccountView:
    """One venue's account: nonzero balances by asset, open positions by canonical symbol."""

    venue: str
    balances: dict[str, BalanceView] = field(default_factory=dict)
    positions: dict[str, PositionView] = field(default_factory=dict)
    last_exec_seq: int = 0       # the exec_seq of the last ACCOUNT record applied


def _text(b) -> str:
    return bytes(b).rstrip(b"\0").decode("utf-8", "replace")


def _slug(venue) -> str:
    return venue.slug if isinstance(venue, Provider) else Provider.from_slug(str(venue)).slug


class AccountBook:
    """Every venue's AccountView, from ACCOUNT records applied in exec_seq order. One thread."""

    def __init__(self):
        self._views: dict[str, AccountView] = {}
        self.applied = 0    # ACCOUNT records applied so far

    def account(self, venue) -> AccountView:
        """The account of `venue` (a provider slug or Provider); empty until a record came."""
        slug = _slug(venue)
        view = self._views.get(slug)
        if view is None:
            view = self._views[slug] = AccountView(slug)
        return view

    def venues(self) -> list[str]:
        return sorted(self._views)

    def apply(self, recs: np.ndarray) -> int:
        """Apply the ACCOUNT records among `recs` (EVENT records, exec_seq order): the newest
        of each key (events.account.latest); return how many were applied."""
        if not len(recs):
            return 0
        acct = latest(recs)
        for rec in acct:
            try:
                view = self.account(Provider(int(rec["provider"])))
            except ValueError:
                continue  # a provider this SDK does not know: newer than us
            a = rec["account"]
            ts = int(rec["event_ts_ns"])
            entry = int(a["entry"])
            if entry == AccountEntry.BALANCE:
                asset = _text(a["asset"])
                b = BalanceView(asset, int(a["free"]), int(a["locked"]), int(a["scale"]), ts)
                if b.free_m or b.locked_m:
                    view.balances[asset] = b
                else:
                    view.balances.pop(asset, None)
            elif entry == AccountEntry.POSITION:
                p = PositionView(_text(a["symbol"]), int(rec["instrument"]), int(a["size"]), int(a["entry_px"]),
                                 int(a["unrealized_pnl"]), int(a["px_scale"]), int(a["sz_scale"]),
                                 int(a["pnl_scale"]), _text(a["asset"]), ts)
                if p.size_m or p.unrealized_pnl_m:
                    view.positions[p.symbol] = p
                else:
                    view.positions.pop(p.symbol, None)
            else:
                continue
            view.last_exec_seq = int(a["exec_seq"])
        self.applied += len(acct)
        return len(acct)

    def backfill(self, journal: JournalReader, last_seq: int, chunk: int = 4096) -> int:
        """Apply the ACCOUNT records of exec_seq 1..last_seq from `journal`; return how many."""
        n, seq = 0, 1
        while seq <= last_seq:
            recs = journal.read(seq, min(chunk, last_seq - seq + 1))
            if not len(recs):
                break
            n += self.apply(recs)
            seq += len(recs)
        return n


class AccountFollower:
    """Follows a run's exec journal and keeps an AccountBook of it (reads the file only)."""

    def __init__(self, run: RunContext):
        self.run = run
        self.book = AccountBook()
        self.next_seq = 1
        self._journal: JournalReader | None = None

    def poll(self, max_n: int = 4096) -> int:
        """Read the records journaled since the last call (at most `max_n`) and apply their
        ACCOUNT records; return how many records were read (0: none new, or no journal yet)."""
        if self._journal is None:
            try:
                self._journal = JournalReader(journal_path(self.run.run_dir))
            except (FileNotFoundError, JournalError):
                return 0
        recs = self._journal.read(self.next_seq, max_n)
        if not len(recs):
            return 0
        self.next_seq += len(recs)
        self.book.apply(recs)
        return len(recs)

    def account(self, venue) -> AccountView:
        return self.book.account(venue)

    def venues(self) -> list[str]:
        return self.book.venues()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
