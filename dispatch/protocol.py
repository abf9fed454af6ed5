"""The control protocol: request validation, error codes, reply frames and ring records.

Requests are one orjson frame (a DEALER sends [frame]; a REQ socket's empty delimiter
frame is accepted too):

    {"cmd": "register", "request_id": 1, "consumer": "alpha", "pid": 4242}
    {"cmd": "subscribe", "request_id": 2, "consumer": "alpha", "symbol": "BTC-USDT",
     "providers": ["binance-spot", "okx"] | null, "kinds": ["book", "trade", "ticker"] | null}
    {"cmd": "unsubscribe", ... same fields as subscribe ..., "merged": false}
    {"cmd": "merged_subscribe", "request_id": 3, "consumer": "alpha", "symbol": "BTC-USDT",
     "providers": ["binance-spot", "okx"]}
    {"cmd": "set_trading_mode", "request_id": 4, "consumer": "alpha", "enabled": true}
    {"cmd": "list_subscriptions" | "unregister" | "heartbeat", "request_id": 5, "consumer": "alpha"}

An unsubscribe of some providers or kinds of a wildcard subscription narrows it to
the explicit rest (`dispatch.routing`); a subscribe that adds book or ticker streams
puts their current state on the ring (before the result), flagged REPLAYED
(`dispatch.state`).

Every request gets two replies: {"type": "ack", "request_id", "cmd"} at once, then
{"type": "result", "request_id", "cmd", "ok", "error": {"code", "message"} | null,
"routing_version", ...command fields}. A registered consumer also finds both on its
ring as CONTROL_ACK / CONTROL_RESULT records (`error_code` is ERROR_CODES[code]).
"""

from __future__ import annotations

import re

import numpy as np
import orjson

from events import EVENT, SCHEMA_VERSION, BadInput, Command, Kind, Provider, ResultStatus
from events.instruments import instrument_id, split_symbol
from events.records import TEXT_BYTES

COMMANDS = {c.name.lower(): c for c in Command}
ERROR_CODES = {"malformed": 1, "unknown_command": 2, "unknown_consumer": 3,
               "unknown_instrument": 4, "unknown_provider": 5, "bad_merge": 6, "bad_kind": 7,
               "name_in_use": 8, "capacity": 9, "internal": 10}
KIND_NAMES = {"book": Kind.BOOK, "trade": Kind.TRADE, "ticker": Kind.TICKER}
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,48}$")


class ControlError(BadInput):
    """A command that cannot be carried out; `code` is a key of ERROR_CODES."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def parse(frame: bytes) -> dict:
    """Decode and check one request frame; ControlError("malformed"...) if it is not one."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise ControlError("malformed", f"not JSON: {e}; frame={frame[:80]!r}") from None
    if not isinstance(msg, dict):
        raise ControlError("malformed", f"request must be a JSON object: {frame[:80]!r}")
    rid = msg.get("request_id")
    if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
        raise ControlError("malformed", f"request_id must be a non-negative integer: request_id={rid!r}")
    cmd = msg.get("cmd")
    if cmd not in COMMANDS:
        raise ControlError("unknown_command",
                           f"unknown cmd {cmd!r}; known: {', '.join(sorted(COMMANDS))}")
    name = msg.get("consumer")
    if name is not None and (not isinstance(name, str) or not _NAME_RE.match(name)):
        raise ControlError("malformed", f"consumer must be 1-48 of [A-Za-z0-9_-]: consumer={name!r}")
    if name is None and cmd != "list_subscriptions":
        raise ControlError("malformed", f"{cmd} needs a consumer name")
    return msg


def request_id_of(frame: bytes) -> int:
    """Best-effort request id of a frame that failed to parse (0 if none)."""
    try:
        rid = orjson.loads(frame).get("request_id", 0)
        return rid if isinstance(rid, int) and rid >= 0 else 0
    except Exception:
        return 0


def symbol_of(msg: dict) -> tuple[str, int]:
    sym = msg.get("symbol")
    if not isinstance(sym, str):
        raise ControlError("malformed", f"symbol must be a canonical symbol string: symbol={sym!r}")
    try:
        split_symbol(sym)
    except BadInput as e:
        raise ControlError("unknown_instrument", str(e)) from None
    return sym, instrument_id(sym)


def providers_of(msg: dict, required: bool = False) -> tuple[int, ...] | None:
    raw = msg.get("providers")
    if raw is None and not required:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ControlError("malformed", f"providers must be a list of provider slugs: providers={raw!r}")
    out = []
    for slug in raw:
        try:
            out.append(int(Provider.from_slug(slug)))
        except ValueError as e:
            raise ControlError("unknown_provider", str(e)) from None
    return tuple(sorted(set(out))) or None


def kinds_of(msg: dict) -> tuple[int, ...] | None:
    raw = msg.get("kinds")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise ControlError("malformed", f"kinds must be a list of names: kinds={raw!r}")
    bad = [k for k in raw if k not in KIND_NAMES]
    if bad:
        raise ControlError("bad_kind", f"unknown kinds {bad}; known: {', '.join(KIND_NAMES)}")
    return tuple(sorted({int(KIND_NAMES[k]) for k in raw})) or None


# -- replies ---------------------------------------------------------------------------

def ack(rid: int, cmd: str | None) -> dict:
    return {"type": "ack", "request_id": rid, "cmd": cmd}


def result(rid: int, cmd: str | None, version: int, error: ControlError | None = None,
           **fields) -> dict:
    err = None if error is None else {"code": error.code, "message": str(error)}
    return {"type": "result", "request_id": rid, "cmd": cmd, "ok": error is None,
            "error": err, "routing_version": version, **fields}


def ack_record(rid: int, cmd: str | None) -> np.ndarray:
    rec = _header(Kind.CONTROL_ACK)
    rec["ack"]["request_id"] = rid
    rec["ack"]["command"] = int(COMMANDS[cmd]) if cmd in COMMANDS else 0
    return rec


def result_record(reply: dict, message: str = "") -> np.ndarray:
    """The ring form of a result; `message` defaults to the error message."""
    rec = _header(Kind.CONTROL_RESULT)
    r = rec["result"]
    r["request_id"] = reply["request_id"]
    r["command"] = int(COMMANDS[reply["cmd"]]) if reply["cmd"] in COMMANDS else 0
    r["status"] = ResultStatus.OK if reply["ok"] else ResultStatus.ERROR
    err = reply["error"]
    r["error_code"] = ERROR_CODES[err["code"]] if err else 0
    r["routing_version"] = reply["routing_version"]
    text = message or (err["message"] if err else "")
    r["message"] = text.encode("utf-8")[:TEXT_BYTES]
    return rec


def _header(kind: Kind) -> np.ndarray:
    rec = np.zeros(1, EVENT)
    rec["schema_version"] = SCHEMA_VERSION
    rec["kind"] = kind
    return rec
