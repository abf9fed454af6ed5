"""Canonical record layouts (LM-02): one fixed-size numpy record for every kind.

Every record is 768 bytes: the 64-byte HEADER, then the payload of its kind. The
payloads overlap at offset 64 (a union), so one ring carries every kind and a batch
of mixed kinds is one array: select rows by `rec["kind"]`, then read `rec["book"]`,
`rec["trade"]`, ... Field names state their units: `*_ns` are integer nanoseconds
since the Unix epoch; `*_px` and `*_sz` are int64 mantissas at the scale in the
payload's `px_scale` / `sz_scale` (the instrument's scale).

The exec channel carries EXEC_REPORT and ACCOUNT records in one gap-free `exec_seq`
order; both payloads start with `exec_seq`, so `rec["exec"]["exec_seq"]` reads it from
either. An ACCOUNT record is state: one balance (asset, free, locked at `scale`) or one
position (the header's instrument; size, entry_px, unrealized_pnl) of the venue in the
header's `provider`; the newest per (provider, asset) or (provider, instrument) replaces
the older ones, and a zero balance / zero size means "none". `consumer_id` is 0 (the
account is every consumer's); header flag SNAPSHOT marks records of a REST snapshot.

    header (64 bytes)
    0   schema_version u2   2  kind u2   4  provider u2   6  flags u2
    8   instrument u4       12 consumer_id u4 (0: not consumer-specific)
    16  seq_provider i8     24 ingest_ts_ns i8   32 event_ts_ns i8
    40  event_id u8         48 routing_version u8   56 trace_id u8

This module is the one statement of the layout: offsets, `struct` packers and raw
copies (`concat`, `words`) are derived from these dtypes in `events.codec`.

Pitfalls: `np.concatenate` and `astype` of EVENT arrays repack the union into another
dtype (use `events.concat`, or copy through `events.codec.words`); `memoryview(arr)`
refuses the overlapping fields (use `arr.view(np.uint8)`).

Bump `SCHEMA_VERSION` (events.kinds) on any change here: rings check the dtype on
attach, so a process built against another layout fails loudly.
"""

from __future__ import annotations

import numpy as np

from .kinds import SCHEMA_VERSION, Kind

BOOK_DEPTH = 20         # levels per side in a BOOK record
MAX_MERGE_LEGS = 8      # providers in one MERGED record
RECORD_BYTES = 768
HEADER_BYTES = 64
CLIENT_ORDER_ID_BYTES = 40
TEXT_BYTES = 224

HEADER = np.dtype([
    ("schema_version", "<u2"), ("kind", "<u2"), ("provider", "<u2"), ("flags", "<u2"),
    ("instrument", "<u4"), ("consumer_id", "<u4"),
    ("seq_provider", "<i8"), ("ingest_ts_ns", "<i8"), ("event_ts_ns", "<i8"),
    ("event_id", "<u8"), ("routing_version", "<u8"), ("trace_id", "<u8"),
])

BOOK = np.dtype([
    ("depth", "<u2"), ("n_bids", "<u2"), ("n_asks", "<u2"), ("px_scale", "i1"), ("sz_scale", "i1"),
    ("last_update_id", "<i8"),
    ("bid_px", "<i8", (BOOK_DEPTH,)), ("bid_sz", "<i8", (BOOK_DEPTH,)),
    ("ask_px", "<i8", (BOOK_DEPTH,)), ("ask_sz", "<i8", (BOOK_DEPTH,)),
])

TRADE = np.dtype([
    ("trade_id", "<i8"), ("px", "<i8"), ("sz", "<i8"),
    ("side", "u1"), ("px_scale", "i1"), ("sz_scale", "i1"), ("_pad", "V5"),
])

TICKER = np.dtype([
    ("bid_px", "<i8"), ("bid_sz", "<i8"), ("ask_px", "<i8"), ("ask_sz", "<i8"),
    ("update_id", "<i8"), ("px_scale", "i1"), ("sz_scale", "i1"), ("_pad", "V6"),
])

MERGE_LEG = np.dtype([
    ("provider", "<u2"), ("_pad", "V6"), ("seq_provider", "<i8"), ("event_ts_ns", "<i8"),
    ("bid_px", "<i8"), ("bid_sz", "<i8"), ("ask_px", "<i8"), ("ask_sz", "<i8"),
])

MERGED = np.dtype([
    ("merge_id", "<u8"), ("window_open_ns", "<i8"), ("window_close_ns", "<i8"),
    ("event_count", "<u4"), ("n_legs", "u1"), ("px_scale", "i1"), ("sz_scale", "i1"), ("_pad", "V1"),
    ("legs", MERGE_LEG, (MAX_MERGE_LEGS,)),
])

EXEC_REPORT = np.dtype([
    ("exec_seq", "<u8"), ("venue_order_id", "<i8"), ("venue_trade_id", "<i8"),
    ("venue_update_id", "<i8"),
    ("price", "<i8"), ("qty", "<i8"), ("filled", "<i8"), ("remaining", "<i8"),
    ("last_px", "<i8"), ("last_qty", "<i8"), ("cum_quote", "<i8"), ("fee", "<i8"),
    ("status", "u1"), ("side", "u1"), ("order_type", "u1"), ("tif", "u1"),
    ("px_scale", "i1"), ("sz_scale", "i1"), ("reject_code", "<i2"),
    ("quote_scale", "i1"), ("fee_scale", "i1"), ("_pad", "V6"),  # scales of cum_quote / fee
    ("client_order_id", f"S{CLIENT_ORDER_ID_BYTES}"),
    ("fee_asset", "S16"),
    ("reason", "S96"),
])

ACCOUNT = np.dtype([
    # Where the exec payload has it: every record of the exec channel (exec journal, exec
    # ring) carries its gap-free exec_seq at `exec.exec_seq`, whatever its kind.
    ("exec_seq", "<u8"),
    ("free", "<i8"), ("locked", "<i8"),                         # BALANCE, at `scale`
    ("size", "<i8"), ("entry_px", "<i8"), ("unrealized_pnl", "<i8"),  # POSITION: size signed (long > 0)
    ("entry", "u1"), ("source", "u1"),                          # AccountEntry, AccountSource
    ("scale", "i1"), ("px_scale", "i1"), ("sz_scale", "i1"), ("pnl_scale", "i1"), ("_pad", "V2"),
    ("asset", "S16"),    # BALANCE: the asset; POSITION: the asset unrealized_pnl is in
    ("symbol", "S32"),   # POSITION: the instrument's canonical symbol (the header names its id)
])

CONTROL_ACK = np.dtype([
    ("request_id", "<u8"), ("command", "u1"), ("_pad", "V7"),
])

CONTROL_RESULT = np.dtype([
    ("request_id", "<u8"), ("command", "u1"), ("status", "u1"), ("error_code", "<u2"),
    ("trading", "i1"),  # the trading switch a set_trading_mode result reports: 1 on, 0 off, -1 none
    ("_pad", "V3"), ("routing_version", "<u8"),
    ("message", f"S{TEXT_BYTES}"),
])

PAYLOADS = {
    Kind.BOOK: ("book", BOOK),
    Kind.TRADE: ("trade", TRADE),
    Kind.TICKER: ("ticker", TICKER),
    Kind.MERGED: ("merged", MERGED),
    Kind.EXEC_REPORT: ("exec", EXEC_REPORT),
    Kind.CONTROL_ACK: ("ack", CONTROL_ACK),
    Kind.CONTROL_RESULT: ("result", CONTROL_RESULT),
    Kind.ACCOUNT: ("account", ACCOUNT),
}


def _event_dtype() -> np.dtype:
    names = list(HEADER.names)
    formats = [HEADER.fields[n][0] for n in names]
    offsets = [HEADER.fields[n][1] for n in names]
    for field, payload in PAYLOADS.values():
        assert HEADER_BYTES + payload.itemsize <= RECORD_BYTES, field
        names.append(field)
        formats.append(payload)
        offsets.append(HEADER_BYTES)
    # Cover every byte with some field: numpy copies structured records field by field,
    # so bytes under no field would be left undefined in copies (rings, journals).
    names.append("_tail")
    formats.append(np.dtype((np.void, RECORD_BYTES - HEADER_BYTES)))
    offsets.append(HEADER_BYTES)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": RECORD_BYTES})


EVENT = _event_dtype()
"""The record of every Meltica ring: header fields at top level, payloads by kind."""

assert HEADER.itemsize == HEADER_BYTES
assert ACCOUNT.fields["exec_seq"][1] == EXEC_REPORT.fields["exec_seq"][1] == 0  # see ACCOUNT


def empty(n: int) -> np.ndarray:
    """A zeroed batch of `n` records (preallocate once, reuse)."""
    return np.zeros(n, EVENT)


def stamp_header(rec, kind: Kind, provider: int, instrument: int, *, seq_provider: int = 0,
                 ingest_ts_ns: int = 0, event_ts_ns: int = 0, event_id: int = 0,
                 routing_version: int = 0, trace_id: int = 0, flags: int = 0,
                 consumer_id: int = 0) -> None:
    """Fill the header of one record in place (a row of an EVENT array)."""
    rec["schema_version"] = SCHEMA_VERSION
    rec["kind"] = kind
    rec["provider"] = provider
    rec["flags"] = flags
    rec["instrument"] = instrument
    rec["consumer_id"] = consumer_id
    rec["seq_provider"] = seq_provider
    rec["ingest_ts_ns"] = ingest_ts_ns
    rec["event_ts_ns"] = event_ts_ns
    rec["event_id"] = event_id
    rec["routing_version"] = routing_version
    rec["trace_id"] = trace_id
