"""Enumerations carried in records: kinds, providers, and the order vocabulary.

Venue values map to these through explicit tables in each venue package; an unknown
value is an error there, never a silent default.
"""

from __future__ import annotations

from enum import IntEnum

SCHEMA_VERSION = 3  # bump on any change of a record layout in `events.records`


class Kind(IntEnum):
    BOOK = 1            # full state of the best N levels per side
    TRADE = 2
    TICKER = 3          # best bid / ask
    MERGED = 4          # one closed multi-venue merge window
    EXEC_REPORT = 5
    CONTROL_ACK = 6
    CONTROL_RESULT = 7
    ACCOUNT = 8         # one balance or one position of a venue account (state: newest wins)

    @property
    def critical(self) -> bool:
        """Always delivered: never dropped, never coalesced, never filtered by version."""
        return self in _CRITICAL

    @property
    def coalescable(self) -> bool:
        """The newest record of a stream replaces older ones without loss of state."""
        return self in _COALESCABLE


_CRITICAL = frozenset({Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.CONTROL_RESULT, Kind.ACCOUNT})
_COALESCABLE = frozenset({Kind.BOOK, Kind.TICKER, Kind.MERGED})
CRITICAL_KINDS = tuple(sorted(_CRITICAL))
COALESCABLE_KINDS = tuple(sorted(_COALESCABLE))


class Provider(IntEnum):
    """A venue connection type; its `slug` is the name used on command lines and config."""

    BINANCE_SPOT = 1
    BINANCE_USDM = 2
    BINANCE_COINM = 3
    OKX = 4
    KRAKEN = 5
    BINANCE_US = 6

    @property
    def slug(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_slug(cls, slug: str) -> "Provider":
        try:
            return cls[slug.upper().replace("-", "_")]
        except KeyError:
            known = ", ".join(p.slug for p in cls)
            raise ValueError(f"unknown provider {slug!r}; known: {known}") from None


class HeaderFlag(IntEnum):
    """Bits of the header's `flags`."""

    SNAPSHOT = 1      # the book was just (re)built from a snapshot
    RESYNCED = 2      # first book after a resync
    REPLAYED = 4      # replayed from a recording or a journal, or state re-sent (dispatch: a stream's last book / ticker to a new subscriber, or after its own restart)
    SPARSE_SEQ = 8    # this stream's seq_provider skips values (venue update ids, timestamps): a gap is no loss


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3


class ExecStatus(IntEnum):
    """Canonical order state after an execution report (one transition table: execution/)."""

    ACK = 1          # accepted by the venue, open
    PARTIAL = 2      # partially filled, open
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    EXPIRED = 6
    PENDING = 7      # persisted, outcome at the venue not known yet

    @property
    def terminal(self) -> bool:
        return self in (ExecStatus.FILLED, ExecStatus.CANCELLED, ExecStatus.REJECTED,
                        ExecStatus.EXPIRED)


class AccountEntry(IntEnum):
    """What an ACCOUNT record holds (its payload's `entry`)."""

    BALANCE = 1      # one asset: free / locked
    POSITION = 2     # one derivatives position (the header's instrument): size / entry price / PnL


class AccountSource(IntEnum):
    """Where the venue said it (an ACCOUNT record's `source`)."""

    STREAM = 1       # a user-stream update: only what changed
    REST = 2         # a whole snapshot by REST (start, every user-stream reconnect)


class Command(IntEnum):
    """Control commands (dispatch and execution), echoed in ControlAck / ControlResult."""

    REGISTER = 1
    SUBSCRIBE = 2
    UNSUBSCRIBE = 3
    MERGED_SUBSCRIBE = 4
    SET_TRADING_MODE = 5
    LIST_SUBSCRIPTIONS = 6
    UNREGISTER = 7
    HEARTBEAT = 8


class ResultStatus(IntEnum):
    OK = 0
    ERROR = 1
