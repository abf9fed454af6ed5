"""Fault injection: what can go wrong on a venue, armed at start or at run time.

Market-data faults (every venue):
  gap             symbol?, count=1      drop the next `count` book diffs (ids advance)
  duplicate       symbol?, count=1      send the next diff twice
  reorder         symbol?, count=1      swap the next diff with the one after it
  malformed       symbol?, count=1, kind="json"|"shape"
                                        insert a frame that is not JSON / not the schema
                                        before the next diff (sequence ids untouched)
  stale_snapshot  symbol?, count=1, lag=1000
                                        the next snapshot (Binance REST depth, OKX
                                        REST books or WS snapshot) is `lag` diffs old;
                                        not Kraken
  checksum        symbol?, count=1      OKX and Kraken: the next book message carries
                                        a wrong checksum (book content unchanged)
  seq_reset       symbol?, count=1      OKX: the next books update restarts its seqId
                                        lower, as after OKX maintenance
  stall           symbol?, seconds=5, drop=false, category=""
                                        stop sending on every open market-data socket
                                        (binance-usdm: of that category only, "public"
                                        or "market") without closing it; pings are still
                                        answered; held frames are sent after the stall,
                                        or discarded with drop=true
  server_shutdown_streams  seconds=10   binance-spot: send serverShutdown on every
                                        market-data (WebSocket Streams) socket, close
                                        them `seconds` later
  disconnect      abrupt=false          close every market-data socket (abrupt: drop
                                        TCP without a close frame)
Order-path faults (binance-spot; okx: the same on its order API and private WebSocket,
server_shutdown as the notice 64008, delay_subscribe holding the login answer):
  drop_response   count=1, hang=false   carry out the next order request (new or
                                        cancel), then close the HTTP connection without
                                        an answer (hang: keep it open, never answer)
  delay_response  count=1, seconds=1    carry out the next order requests at once,
                                        answer them `seconds` late
  disconnect_userstream  abrupt=false   close every user-data (WebSocket API) connection
  duplicate_report       count=1        send the next executionReport twice
  reorder_report         count=1        okx, binance-usdm: hold the next `orders` push
                                        (ORDER_TRADE_UPDATE) and send it after the one that
                                        follows (or 1 s later if none does)
  server_shutdown        seconds=1      send `serverShutdown` on every WebSocket API
                                        connection, close them `seconds` later
  delay_subscribe        count=1, seconds=1
                                        hold the next userDataStream.subscribe.signature
                                        `seconds` before carrying it out and answering

`symbol` accepts the canonical name ("BTC-USDT") or the venue symbol ("BTCUSDT",
"btcusdt"); without it a fault hits the next matching message of any symbol.
Faults with a count are one-shot: each use decrements them; immediate faults
(stall, disconnect, server_shutdown_streams, disconnect_userstream, server_shutdown) act
when injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# name -> default parameters
COUNTED = {
    "gap": {},
    "duplicate": {},
    "reorder": {},
    "malformed": {"kind": "json"},
    "stale_snapshot": {"lag": 1000},
    "checksum": {},
    "seq_reset": {},
    "drop_response": {"hang": False},
    "delay_response": {"seconds": 1.0},
    "duplicate_report": {},
    "reorder_report": {},
    "delay_subscribe": {"seconds": 1.0},
}
IMMEDIATE = {
    "stall": {"seconds": 5.0, "drop": False, "category": ""},
    "server_shutdown_streams": {"seconds": 10.0},
    "disconnect": {"abrupt": False},
    "disconnect_userstream": {"abrupt": False},
    "server_shutdown": {"seconds": 1.0},
}
SYMBOL_FAULTS = {"gap", "duplicate", "reorder", "malformed", "stale_snapshot", "checksum", "stall",
                 "seq_reset"}
ORDER_FAULTS = {"drop_response", "delay_response", "disconnect_userstream", "duplicate_report",
                "server_shutdown", "delay_subscribe"}
ALL_FAULTS = set(COUNTED) | set(IMMEDIATE)


class FaultError(ValueError):
    """The fault request was bad: unknown name, bad parameter, unknown symbol."""


@dataclass
class Armed:
    """A counted fault waiting for its messages."""

    name: str
    symbol: str | None
    remaining: int
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Return the fault as a JSON-able dict."""
        return {"fault": self.name, "symbol": self.symbol, "count": self.remaining, **self.params}


def normalize(spec: dict[str, Any], supported: set[str],
              resolve: Callable[[str], str | None]) -> dict[str, Any]:
    """Check a fault request and return it with defaults filled in.

    `resolve` maps a user-given symbol to the venue's key, or None if unknown.
    """
    if not isinstance(spec, dict):
        raise FaultError(f"fault request must be an object: {spec!r}")
    spec = dict(spec)
    name = spec.pop("fault", None)
    if name not in ALL_FAULTS:
        raise FaultError(f"unknown fault: fault={name!r}; known: {sorted(ALL_FAULTS)}")
    if name not in supported:
        raise FaultError(f"fault not supported by this venue: fault={name!r}")
    defaults = COUNTED.get(name, IMMEDIATE.get(name, {}))
    out: dict[str, Any] = {"fault": name}
    symbol = spec.pop("symbol", None)
    if symbol is not None:
        if name not in SYMBOL_FAULTS:
            raise FaultError(f"fault does not take a symbol: fault={name!r}")
        key = resolve(str(symbol))
        if key is None:
            raise FaultError(f"unknown symbol: symbol={symbol!r}")
        out["symbol"] = key
    if name in COUNTED:
        count = spec.pop("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultError(f"count must be a positive integer: count={count!r}")
        out["count"] = count
    for key, default in defaults.items():
        value = spec.pop(key, default)
        out[key] = _coerce(name, key, value, default)
    if spec:
        raise FaultError(f"unknown parameters for fault {name!r}: {sorted(spec)}")
    return out


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise FaultError(f"{name}.{key} must be true or false: {key}={value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FaultError(f"{name}.{key} must be a non-negative number: {key}={value!r}")
        return type(default)(value)
    if key == "kind" and value not in ("json", "shape"):
        raise FaultError(f"malformed.kind must be 'json' or 'shape': kind={value!r}")
    if key == "category" and value not in ("", "public", "market"):
        raise FaultError(f"stall.category must be 'public' or 'market': category={value!r}")
    return value


class FaultBox:
    """Armed counted faults of one venue, and counters of what was applied.

    Only the venue's event loop may call `arm` and `take`.
    """

    def __init__(self) -> None:
        self.armed: list[Armed] = []
        self.injected: dict[str, int] = {}
        self.applied: dict[str, int] = {}

    def arm(self, spec: dict[str, Any]) -> None:
        """Record a normalized counted fault."""
        params = {k: v for k, v in spec.items() if k not in ("fault", "symbol", "count")}
        self.armed.append(Armed(spec["fault"], spec.get("symbol"), spec["count"], params))
        self.count_injected(spec["fault"])

    def apply(self, spec: dict[str, Any], hub, disconnects: dict | None = None) -> None:
        """Apply a normalized fault: the immediate ones on the venue's connections
        ("disconnect", "stall" on `hub`; each of `disconnects`, a fault name -> another hub,
        closes that hub's connections), or arm a counted one."""
        name = spec["fault"]
        if name == "disconnect":
            self.count_injected(name)
            self.count_applied(name, hub.close_all(spec["abrupt"]))
        elif name == "stall":
            self.count_injected(name)
            self.count_applied(name, hub.stall_all(spec["seconds"], spec.get("symbol"), spec["drop"],
                                                   spec.get("category") or None))
        elif disconnects and name in disconnects:
            self.count_injected(name)
            self.count_applied(name, disconnects[name].close_all(spec["abrupt"]))
        else:
            self.arm(spec)

    def count_injected(self, name: str) -> None:
        """Count one injection (immediate faults count here too)."""
        self.injected[name] = self.injected.get(name, 0) + 1

    def count_applied(self, name: str, n: int = 1) -> None:
        """Count an applied fault effect."""
        self.applied[name] = self.applied.get(name, 0) + n

    def take(self, name: str, symbol: str | None = None) -> Armed | None:
        """Use one shot of the oldest matching armed fault, or return None."""
        if not self.armed:
            return None
        for armed in self.armed:
            if armed.name == name and (armed.symbol is None or armed.symbol == symbol):
                armed.remaining -= 1
                if not armed.remaining:
                    self.armed.remove(armed)
                self.count_applied(name)
                return armed
        return None

    def pending(self, name: str, symbol: str | None = None) -> bool:
        """Tell whether a matching fault is armed, without using it."""
        return any(a.name == name and (a.symbol is None or a.symbol == symbol) for a in self.armed)

    def clear(self) -> int:
        """Disarm everything; return how many faults were armed."""
        n = len(self.armed)
        self.armed = []
        return n

    def stats(self) -> dict[str, Any]:
        """Return counters and armed faults."""
        return {
            "injected": dict(self.injected),
            "applied": dict(self.applied),
            "armed": [a.describe() for a in self.armed],
        }


class DiffRouter:
    """Apply gap / duplicate / reorder / malformed to one venue's diff frames.

    `route(key, frame, emit, bad_frame)` calls `emit` with the frames to send, in
    order; `bad_frame(kind)` builds the malformed frame for this venue.
    """

    def __init__(self, box: FaultBox) -> None:
        self.box = box
        self._held: dict[str, bytes] = {}

    def route(self, key: str, frame: bytes, emit: Callable[[bytes], None],
              bad_frame: Callable[[str], bytes]) -> None:
        """Send one diff frame through the armed faults."""
        box = self.box
        if not box.armed and not self._held:
            emit(frame)
            return
        if box.take("gap", key):
            return
        bad = box.take("malformed", key)
        if bad:
            emit(bad_frame(bad.params["kind"]))
        held = self._held.pop(key, None)
        if held is not None:
            emit(frame)
            emit(held)
            return
        if box.take("reorder", key):
            self._held[key] = frame
            return
        emit(frame)
        if box.take("duplicate", key):
            emit(frame)
