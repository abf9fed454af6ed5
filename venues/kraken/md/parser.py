"""Kraken spot WS v1 frames -> canonical records: the adapter of one Kraken connection.

Frames (as recorded, 2021-04-17):
  book snapshot  [3648,{"as":[["0.00756500","2.18055889","1618678126.203124"],...],
                  "bs":[...]},"book-1000","KSM/XBT"]
  book update    [992,{"b":[["354.15000000","5.00000000","1618678133.365913"]],
                  "c":"2583817756"},"book-1000","XMR/USD"]   (or {"a":..} {"b":..,"c":..})
  trade          [0,[["5541.20000","0.15850568","1534614057.321597","s","l",""]],"trade","XBT/USD"]
  spread         [0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],
                  "spread","XBT/USD"]
  events         {"event":"heartbeat"} / {"event":"subscriptionStatus",...} / {"event":"pong"}

seq_provider: no sequence numbers in v1: book -> newest level timestamp (us), trade and
spread -> their timestamp (us); each made strictly increasing per pair and kind.
event_ts_ns: those timestamps in ns. Trade side: "b"/"s" (the taker's).
"""

from __future__ import annotations

import struct
import time

import orjson

from events import BadInput, Kind, Side, UnknownInstrument
from ...resubscribe import ResubscribingAdapter

from ..markets import DEFAULT_BOOK_DEPTH, WS_PATH
from .sync import KrakenBookSync, micros

SIDES = {"b": int(Side.BUY), "s": int(Side.SELL)}


class KrakenAdapter(ResubscribingAdapter):
    """Adapter for one Kraken WS v1 public connection. One owner thread."""

    BOOK_CHANNEL = "book"

    def __init__(self, provider, streams, publisher, report, io, *, timers=None,
                 clock=time.monotonic_ns, ignore=(), book_depth: int = DEFAULT_BOOK_DEPTH):
        self.provider = provider
        self.pub = publisher
        # sparse sequences: every sequence here is a timestamp
        publisher.declare_sparse((Kind.BOOK, Kind.TICKER, Kind.TRADE))
        self.report = report
        self.io = io
        self.timers = timers
        self.clock = clock
        self.book_depth = book_depth
        self.streams = {s.venue_symbol: s for s in streams}
        self.syncs = {s.venue_symbol: KrakenBookSync(s, report, self, book_depth) for s in streams}
        self.ignore = frozenset(ignore)
        self.last_seq: dict[tuple[str, str], int] = {}   # (pair, "trade"|"spread") -> seq
        self.resubscribed: dict[str, int] = {}

    # -- connection ----------------------------------------------------------------

    def ws_path(self) -> str:
        return WS_PATH

    def _sub(self, event: str, name: str, pairs: list[str]) -> str:
        sub = {"name": name, "depth": self.book_depth} if name == "book" else {"name": name}
        return orjson.dumps({"event": event, "pair": pairs, "subscription": sub}).decode()

    def subscribe_frames(self) -> list[str]:
        pairs = list(self.streams)
        return [self._sub("subscribe", name, pairs) for name in ("book", "trade", "spread")]

    def on_connected(self, first: bool) -> None:
        now = self.clock()
        for sync in self.syncs.values():
            if not first:
                sync.reset()
                self.report.resync(sync.stream.symbol, "reconnect", "websocket reconnected")
                sync.stream.resync_reason = "reconnect"
            sync.stream.resync_started_ns = now
            self.resubscribed[sync.stream.venue_symbol] = now

    # -- frames --------------------------------------------------------------------

    def on_frame(self, frame, recv_ns: int) -> None:
        self.report.messages += 1
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self.report.bad_frame(frame, "not_json", exc)
            return
        try:
            if type(msg) is dict:
                event = msg["event"]
                if event in ("heartbeat", "pong", "systemStatus") or \
                        (event == "subscriptionStatus" and msg.get("status") != "error"):
                    self.report.ignored += 1
                else:
                    self.report.bad_frame(frame, "venue_error")
                return
            if type(msg) is not list or len(msg) < 4:
                raise BadInput("a Kraken data frame is [channelID, payload.., channelName, pair]")
            pair, channel, parts = msg[-1], msg[-2], msg[1:-2]
            stream = self.streams.get(pair)
            if stream is None:
                if type(pair) is str and pair in self.ignore:
                    self.report.filtered += 1
                    return
                raise UnknownInstrument(f"unknown pair {pair!r} on kraken")
            stream.messages += 1
            if type(channel) is not str:
                raise BadInput(f"channel name must be a string: {channel!r}")
            if channel.startswith("book-"):
                stream.last_book_ns = self.clock()
                sync = self.syncs[pair]
                if "as" in parts[0] or "bs" in parts[0]:
                    sync.on_snapshot(parts[0], recv_ns)
                else:
                    sync.on_update(parts, recv_ns)
            elif channel == "trade":
                for t in parts[0]:
                    self._trade(stream, t, recv_ns)
            elif channel == "spread":
                self._spread(stream, parts[0], recv_ns)
            else:
                self.report.ignored += 1
        except BadInput as exc:
            self.report.bad_frame(frame, "bad_input", exc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                struct.error) as exc:
            self.report.bad_frame(frame, "malformed", exc)

    def _seq(self, pair: str, kind: str, us: int) -> int:
        last = self.last_seq.get((pair, kind), 0)
        seq = us if us > last else last + 1
        self.last_seq[(pair, kind)] = seq
        return seq

    def _trade(self, stream, t: list, recv_ns: int) -> None:
        side = SIDES.get(t[3]) if type(t[3]) is str else None
        if side is None:
            raise BadInput(f"unknown trade side: {t[3]!r}")
        us = micros(t[2])
        seq = self._seq(stream.venue_symbol, "trade", us)
        self.pub.trade(stream.iid, stream.px_scale, stream.sz_scale, seq, recv_ns, us * 1000, seq,
                       stream.px(t[0]), stream.sz(t[1]), side)

    def _spread(self, stream, s: list, recv_ns: int) -> None:
        us = micros(s[2])
        seq = self._seq(stream.venue_symbol, "spread", us)
        self.pub.ticker(stream.iid, stream.px_scale, stream.sz_scale, seq, recv_ns, us * 1000,
                        stream.px(s[0]), stream.sz(s[3]), stream.px(s[1]), stream.sz(s[4]), seq)

    def resubscribe_frames(self, pair: str) -> list[str]:
        """Unsubscribe and subscribe `book` again: Kraken answers with a fresh snapshot."""
        return [self._sub("unsubscribe", "book", [pair]), self._sub("subscribe", "book", [pair])]
