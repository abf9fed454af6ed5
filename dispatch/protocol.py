"""Dispatch's side of the control contract: typed requests to routing keys, replies to ring records.

The requests, the reply shape and the error codes are `channels.messages` (read there
first); a registered consumer also finds its ack and result on its ring, as
CONTROL_ACK / CONTROL_RESULT records (`error_code` is CODES[code]; `trading` the switch
a set_trading_mode result reports). An unsubscribe of some providers or kinds of a
wildcard subscription narrows it to the explicit rest (`dispatch.routing`); a subscribe
that adds book or ticker streams puts their current state on the ring (before the
result), flagged REPLAYED (`dispatch.state`).
"""

from __future__ import annotations

import numpy as np

from channels.messages import CODES, ProtocolError
from events import EVENT, SCHEMA_VERSION, BadInput, Command, Kind, Provider, ResultStatus
from events.instruments import instrument_id, split_symbol
from events.records import TEXT_BYTES

COMMANDS = {c.name.lower(): c for c in Command}
KIND_NAMES = {"book": Kind.BOOK, "trade": Kind.TRADE, "ticker": Kind.TICKER}


def symbol_of(symbol: str) -> tuple[str, int]:
    """(symbol, instrument id) of a canonical symbol; ProtocolError("unknown_instrument") if not one."""
    try:
        split_symbol(symbol)
    except BadInput as e:
        raise ProtocolError("unknown_instrument", str(e)) from None
    return symbol, instrument_id(symbol)


def providers_of(slugs: tuple[str, ...] | None) -> tuple[int, ...] | None:
    """Provider ids of `slugs` (sorted, distinct); None (all) for none."""
    if slugs is None:
        return None
    out = []
    for slug in slugs:
        try:
            out.append(int(Provider.from_slug(slug)))
        except ValueError as e:
            raise ProtocolError("unknown_provider", str(e)) from None
    return tuple(sorted(set(out))) or None


def kinds_of(names: tuple[str, ...] | None) -> tuple[int, ...] | None:
    if names is None:
        return None
    bad = [k for k in names if k not in KIND_NAMES]
    if bad:
        raise ProtocolError("bad_kind", f"unknown kinds {bad}; known: {', '.join(KIND_NAMES)}")
    return tuple(sorted({int(KIND_NAMES[k]) for k in names})) or None


# -- ring records ----------------------------------------------------------------------

def ack_record(rid: int | None, cmd: str | None) -> np.ndarray:
    rec = _header(Kind.CONTROL_ACK)
    rec["ack"]["request_id"] = rid or 0
    rec["ack"]["command"] = int(COMMANDS[cmd]) if cmd in COMMANDS else 0
    return rec


def result_record(reply: dict) -> np.ndarray:
    """The ring form of a result (channels.messages.reply)."""
    rec = _header(Kind.CONTROL_RESULT)
    r = rec["result"]
    r["request_id"] = reply["request_id"] or 0
    r["command"] = int(COMMANDS[reply["cmd"]]) if reply["cmd"] in COMMANDS else 0
    r["status"] = ResultStatus.OK if reply["ok"] else ResultStatus.ERROR
    r["error_code"] = CODES[reply["code"]] if reply["code"] else 0
    switch = reply.get("trading_enabled") if reply["cmd"] == "set_trading_mode" else None
    r["trading"] = -1 if switch is None else int(bool(switch))
    r["routing_version"] = reply.get("routing_version", 0)
    r["message"] = reply["reason"].encode("utf-8")[:TEXT_BYTES]
    return rec


def _header(kind: Kind) -> np.ndarray:
    rec = np.zeros(1, EVENT)
    rec["schema_version"] = SCHEMA_VERSION
    rec["kind"] = kind
    return rec
