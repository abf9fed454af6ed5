"""Canonical, versioned event layouts (LM-02) and the vocabulary around them.

    from events import EVENT, Kind, Provider, to_mantissa, to_decimal, Registry, Instrument
    batch = events.empty(64)                 # preallocated records, reused
    rec = batch[0]
    events.stamp_header(rec, Kind.TRADE, Provider.OKX, inst.id, seq_provider=42)
    rec["trade"]["px"] = to_mantissa("30123.5", inst.px_scale)

Modules: `records` (dtypes: the one statement of the layout), `codec` (offsets, struct
packers and raw copies derived from it), `kinds` (enums), `fixed` (decimal <-> fixed point),
`instruments` (registry), `ids` (event / trace ids), `render` (debug dict / JSON),
`errors` (the MelticaError tree). No I/O here.
"""

from . import codec
from .codec import concat
from .errors import (BadInput, Closed, DecimalError, Desync, InUse, MelticaError, PeerGone,
                     UnknownInstrument, VenueRefused)
from .fixed import rescale, to_decimal, to_decimal_fixed, to_mantissa
from .ids import IdSource, event_id, event_ids, trace_ids
from .instruments import Instrument, Registry, instrument_id, split_symbol
from .kinds import (SCHEMA_VERSION, AccountEntry, AccountSource, Command, ExecStatus, HeaderFlag, Kind, OrderType,
                    Provider, ResultStatus, Side, TimeInForce)
from .records import (ACCOUNT, BOOK, BOOK_DEPTH, CONTROL_ACK, CONTROL_RESULT, EVENT, EXEC_REPORT, HEADER,
                      MAX_MERGE_LEGS, MERGED, PAYLOADS, RECORD_BYTES, TICKER, TRADE, empty, stamp_header)
from .render import to_dict, to_json

__all__ = [
    "MelticaError", "BadInput", "DecimalError", "UnknownInstrument", "PeerGone", "Closed",
    "VenueRefused", "Desync", "InUse",
    "to_mantissa", "to_decimal", "to_decimal_fixed", "rescale",
    "event_id", "event_ids", "IdSource", "trace_ids",
    "Instrument", "Registry", "instrument_id", "split_symbol",
    "SCHEMA_VERSION", "AccountEntry", "AccountSource", "Kind", "Provider", "HeaderFlag", "Side", "OrderType",
    "TimeInForce",
    "ExecStatus", "Command", "ResultStatus",
    "EVENT", "HEADER", "BOOK", "TRADE", "TICKER", "MERGED", "EXEC_REPORT", "CONTROL_ACK",
    "CONTROL_RESULT", "ACCOUNT", "PAYLOADS", "BOOK_DEPTH", "MAX_MERGE_LEGS", "RECORD_BYTES",
    "codec", "concat", "empty", "stamp_header", "to_dict", "to_json",
]
