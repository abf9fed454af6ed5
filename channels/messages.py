"""Control messages: typed requests, one reply shape, one table of error codes.

A request is one orjson object in one ZeroMQ frame, at most MAX_FRAME_BYTES; every
control socket sets ZMQ_MAXMSGSIZE to MAX_MSG_BYTES, so a larger frame costs its
sender the connection before anything of it is read. `parse(frame, COMMANDS)` turns
a frame into one of the dataclasses below or raises ProtocolError with a code of
CODES; every field has a type, a size bound and a range, and a field the command
does not know is an error (a typo must not pass silently).

    field            type                         bound
    request_id       int                          0 .. 2**63 - 1
    cmd              str                          a key of the server's COMMANDS
    consumer         str [A-Za-z0-9_-]            1 .. 48 characters
    key              str [0-9a-f]                 32 (channels.identity)
    pid              int                          0 .. 2**31 - 1
    symbol           str                          1 .. 32 characters
    providers, kinds list of str                  <= 8 items of <= 24 characters
    enabled, merged  bool
    client_order_id  str                          1 .. 64 characters (execution checks 40)
    venue            str [a-z0-9-]                1 .. 24 (a provider slug; new_order)
    side, type, tif, qty, price, ref_price
                     str <= 40 characters, or a JSON scalar (execution's validation
                     names what is wrong with it: "qty must be a decimal string");
                     amend: qty and/or price (the new total quantity, the new limit price);
                     tif: GTC, IOC, FOK or POST_ONLY (alias GTX)
    reduce_only      bool                         new_order, optional (false); futures and swaps only

Every request gets one result (dispatch sends an ack first), in one shape for both
servers:

    {"type": "result", "request_id": int | null, "cmd": str | null, "ok": bool,
     "code": str | null, "reason": str, ...the command's typed fields}

`ok` is false exactly when `code` is set. Typed fields by command:

    dispatch   register          consumer, consumer_id, rings {"md"}, namespace,
                                 ring_capacity, trading_enabled, routing_version
               (un)subscribe, merged_subscribe, unregister     changed, routing_version
               list_subscriptions subscriptions, merged, trading_enabled | consumers
               set_trading_mode  trading_enabled (execution's state), forward
                                 {"status": "ok" | "refused" | "timeout" | "absent"}
    execution  hello             consumer_id, trading_enabled, last_exec_seq
               new_order, cancel, amend, query   status ("accepted" | "duplicate" |
                                 "ok" | "rejected" | "busy"), order
               set_trading_mode  consumer, trading_enabled
               status            open_orders, last_exec_seq, published_seq, stream_up,
                                 venues {slug: {stream_up, down, open_orders}}

An amend's "accepted" means sent to the venue; its outcome comes on the exec channel, with
the status values of every report (an amend is not a status): a report carrying the new
`price` / `qty` (and `remaining`) with reason "amended"; or, refused, a report with the
order's unchanged figures, the venue's code in `reject_code` and reason "amend refused:
<code> <message>" ("amend not applied ..." when the venue never received it). A
cancel-replace amend that cancelled the order but could not place the new one ends with
a CANCELLED report after the refusal.

The trading switch has one owner, execution: dispatch forwards set_trading_mode and
answers with the state execution answered (`trading_enabled`, a bool); on the
consumer's ring the CONTROL_RESULT record carries it in `result.trading` (1 on, 0 off,
-1 not a switch result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import ClassVar

import orjson

from events import BadInput

MAX_FRAME_BYTES = 16 * 1024      # the largest request we parse (a real one is < 1 KiB)
MAX_MSG_BYTES = 1 << 20          # ZMQ_MAXMSGSIZE of every control socket (a list reply fits)
MAX_REASON = 512                 # characters of a reason quoted back
NAME_RE = re.compile(r"[A-Za-z0-9_\-]{1,48}")
KEY_RE = re.compile(r"[0-9a-f]{32}")

# One table for both servers; the number is what a ring record carries (`error_code`).
CODES = {
    "malformed": 1, "unknown_command": 2, "unknown_consumer": 3, "unknown_instrument": 4,
    "unknown_provider": 5, "bad_merge": 6, "bad_kind": 7, "name_in_use": 8, "capacity": 9,
    "internal": 10, "too_large": 11, "unauthorized": 12, "rate_limited": 13, "busy": 14,
    "validation": 15, "trading_disabled": 16, "unknown_order": 17, "order_closed": 18,
    "max_notional": 19, "max_open_orders": 20, "max_orders_per_s": 21,
    "venue_down": 22, "duplicate_order": 23,
    "order_busy": 24,  # a cancel or amend of the order is in flight, or the venue has not acked it
    "not_supported": 25,  # the venue's adapter cannot do this (yet): amend
    # answered by the SDK itself, never by a server
    "no_answer": 30, "execution_unreachable": 31,
}


class ProtocolError(BadInput):
    """A request that cannot be carried out; `code` is a key of CODES."""

    def __init__(self, code: str, reason: str):
        if code not in CODES:
            raise ValueError(f"unknown error code: code={code!r}")
        super().__init__(reason)
        self.code = code


# -- field checks ------------------------------------------------------------------------

def _bad(name: str, what: str, value) -> ProtocolError:
    text = repr(value)
    return ProtocolError("malformed", f"{name} must be {what}: {name}={text[:80]}{'...' if len(text) > 80 else ''}")


def _int(lo: int, hi: int):
    def check(name, v):
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise _bad(name, f"an integer in {lo}..{hi}", v)
        return v
    return check


def _match(regex: re.Pattern, what: str):
    def check(name, v):
        if not isinstance(v, str) or not regex.fullmatch(v):
            raise _bad(name, what, v)
        return v
    return check


def _text(max_len: int):
    def check(name, v):
        if not isinstance(v, str) or not 0 < len(v) <= max_len:
            raise _bad(name, f"a string of 1..{max_len} characters", v)
        return v
    return check


def _scalar(max_len: int):
    """A JSON scalar, strings bounded: the server's own validation judges the value."""
    def check(name, v):
        if isinstance(v, str) and len(v) > max_len:
            raise _bad(name, f"at most {max_len} characters", v)
        if isinstance(v, (list, dict)):
            raise _bad(name, "a string", v)
        return v
    return check


def _bool(name, v):
    if not isinstance(v, bool):
        raise _bad(name, "true or false", v)
    return v


def _names(name, v):
    """A list of up to 8 short strings (provider slugs, kind names), or null."""
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or len(v) > 8 or not all(isinstance(x, str) and 0 < len(x) <= 24 for x in v):
        raise _bad(name, "a list of at most 8 names of 1..24 characters", v)
    return tuple(v)


REQUEST_ID = _int(0, 2**63 - 1)
CONSUMER = _match(NAME_RE, "1..48 of [A-Za-z0-9_-]")
KEY = _match(KEY_RE, "the consumer's key (32 hex digits, channels.identity)")
PID = _int(0, 2**31 - 1)
SYMBOL = _text(32)
COID = _text(64)
FIELD = _scalar(40)
VENUE = _match(re.compile(r"[a-z0-9\-]{1,24}"), "a provider name (e.g. binance-spot, okx)")


# -- requests ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Request:
    """Fields every request has; `consumer` / `key` are None where the command takes none."""

    CMD: ClassVar[str] = ""
    SPEC: ClassVar[dict] = {}

    request_id: int
    consumer: str | None = None
    key: str | None = None


def _command(cmd: str, **spec):
    """Register a request class: its cmd and its fields' checks (name -> (check, required))."""
    def wrap(cls):
        cls.CMD = cmd
        cls.SPEC = {"request_id": (REQUEST_ID, True), **spec}
        unset = {f.name for f in fields(cls)} - set(cls.SPEC)
        assert unset <= {"consumer", "key"}, (cmd, unset)
        return cls
    return wrap


_OWNER = {"consumer": (CONSUMER, True), "key": (KEY, True)}


@_command("register", **_OWNER, pid=(PID, False))
@dataclass(frozen=True, slots=True)
class Register(Request):
    pid: int = 0


@_command("subscribe", **_OWNER, symbol=(SYMBOL, True), providers=(_names, False), kinds=(_names, False))
@dataclass(frozen=True, slots=True)
class Subscribe(Request):
    symbol: str = ""
    providers: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None


@_command("unsubscribe", **_OWNER, symbol=(SYMBOL, True), providers=(_names, False), kinds=(_names, False),
          merged=(_bool, False))
@dataclass(frozen=True, slots=True)
class Unsubscribe(Request):
    symbol: str = ""
    providers: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    merged: bool = False


@_command("merged_subscribe", **_OWNER, symbol=(SYMBOL, True), providers=(_names, True))
@dataclass(frozen=True, slots=True)
class MergedSubscribe(Request):
    symbol: str = ""
    providers: tuple[str, ...] | None = None


@_command("set_trading_mode", **_OWNER, enabled=(_bool, True))
@dataclass(frozen=True, slots=True)
class SetTradingMode(Request):
    enabled: bool = False


@_command("list_subscriptions", consumer=(CONSUMER, False), key=(KEY, False))
@dataclass(frozen=True, slots=True)
class ListSubscriptions(Request):
    pass


@_command("unregister", **_OWNER)
@dataclass(frozen=True, slots=True)
class Unregister(Request):
    pass


@_command("heartbeat", **_OWNER)
@dataclass(frozen=True, slots=True)
class Heartbeat(Request):
    pass


@_command("hello", **_OWNER)
@dataclass(frozen=True, slots=True)
class Hello(Request):
    pass


@_command("new_order", **_OWNER, client_order_id=(COID, True), symbol=(FIELD, False), side=(FIELD, False),
          type=(FIELD, False), tif=(FIELD, False), qty=(FIELD, False), price=(FIELD, False),
          ref_price=(FIELD, False), venue=(VENUE, False), reduce_only=(_bool, False))
@dataclass(frozen=True, slots=True)
class NewOrder(Request):
    client_order_id: str = ""
    symbol: str | None = None
    side: str | None = None
    type: str | None = None
    tif: str | None = None
    qty: str | None = None
    price: str | None = None
    ref_price: str | None = None
    venue: str | None = None       # provider slug; None: the only venue execution trades
    reduce_only: bool = False      # only reduce a position (futures, swaps)


@_command("cancel", **_OWNER, client_order_id=(COID, True))
@dataclass(frozen=True, slots=True)
class Cancel(Request):
    client_order_id: str = ""


@_command("amend", **_OWNER, client_order_id=(COID, True), qty=(FIELD, False), price=(FIELD, False))
@dataclass(frozen=True, slots=True)
class Amend(Request):
    """Change an open order's total quantity and/or limit price (decimal strings; absent: keep)."""

    client_order_id: str = ""
    qty: str | None = None
    price: str | None = None


@_command("query", **_OWNER, client_order_id=(COID, True))
@dataclass(frozen=True, slots=True)
class Query(Request):
    client_order_id: str = ""


@_command("status", consumer=(CONSUMER, False), key=(KEY, False))
@dataclass(frozen=True, slots=True)
class Status(Request):
    pass


def _table(*classes) -> dict[str, type]:
    return {c.CMD: c for c in classes}


DISPATCH_COMMANDS = _table(Register, Subscribe, Unsubscribe, MergedSubscribe, SetTradingMode,
                           ListSubscriptions, Unregister, Heartbeat)
EXECUTION_COMMANDS = _table(Hello, NewOrder, Cancel, Amend, Query, SetTradingMode, Status)


def parse(frame: bytes, commands: dict[str, type]) -> Request:
    """The typed request in `frame`; ProtocolError (never another exception) if it is not one."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"request of {len(frame)} bytes; at most {MAX_FRAME_BYTES}")
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise ProtocolError("malformed", f"not JSON: {e}; frame={bytes(frame[:80])!r}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("malformed", f"a request is a JSON object: frame={bytes(frame[:80])!r}")
    cmd = msg.pop("cmd", None)
    if not isinstance(cmd, str) or cmd not in commands:
        raise ProtocolError("unknown_command", f"unknown cmd {str(cmd)[:48]!r}; known: {', '.join(sorted(commands))}")
    cls = commands[cmd]
    spec = cls.SPEC
    extra = [k for k in msg if k not in spec]
    if extra:
        raise ProtocolError("malformed", f"{cmd} takes no field {str(extra[0])[:48]!r}; its fields: "
                                         f"{', '.join(spec)}")
    args = {}
    for name, (check, required) in spec.items():
        v = msg.get(name)
        if v is None:
            if required:
                raise ProtocolError("malformed", f"{cmd} needs {name}")
            continue
        args[name] = check(name, v)
    return cls(**args)


def request_id_of(frame: bytes) -> int | None:
    """Best-effort request id of a frame that failed to parse (None if it has none)."""
    if len(frame) > MAX_FRAME_BYTES:
        return None
    try:
        rid = orjson.loads(frame).get("request_id")
    except Exception:  # not JSON, not an object: no id to echo
        return None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**63 else None


def cmd_label(cmd) -> str:
    """A metrics label for `cmd` from a bounded set: the command, or "invalid"."""
    return cmd if isinstance(cmd, str) and (cmd in DISPATCH_COMMANDS or cmd in EXECUTION_COMMANDS) else "invalid"


# -- replies -----------------------------------------------------------------------------

def reply(request_id: int | None, cmd: str | None, *, code: str | None = None, reason: str = "",
          **typed) -> dict:
    """The one reply shape of both servers (see the module docstring)."""
    if code is not None and code not in CODES:
        raise ValueError(f"unknown error code: code={code!r}")
    return {"type": "result", "request_id": request_id, "cmd": cmd, "ok": code is None, "code": code,
            "reason": reason[:MAX_REASON], **typed}


def error_reply(request_id: int | None, cmd: str | None, err: ProtocolError, **typed) -> dict:
    return reply(request_id, cmd, code=err.code, reason=str(err), **typed)


def ack(request_id: int | None, cmd: str | None) -> dict:
    """Dispatch's immediate acknowledgement of a request."""
    return {"type": "ack", "request_id": request_id, "cmd": cmd}


def encode(msg: dict) -> bytes:
    return orjson.dumps(msg)
