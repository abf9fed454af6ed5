"""Binance frames -> canonical records: the adapter of one Binance connection.

Combined-stream frames are {"stream": "<sym>@<channel>", "data": <payload>}; raw
`/ws` frames are the payload itself. Payloads (spot, as recorded):

  depthUpdate  {"e":"depthUpdate","E":1723161255308,"s":"ETHUSDT","U":35346513499,
                "u":35346513505,"b":[["2683.80000000","3.02920000"]],"a":[["2733.70000000",
                "0.00000000"]]}                       (futures add "T" and "pu")
  trade        {"e":"trade","E":1723161255612,"s":"ETHUSDT","t":1520538925,
                "p":"2683.80000000","q":"0.00200000","T":1723161255611,"m":true,"M":true}
  aggTrade     {"e":"aggTrade","E":1626992741065,"s":"SUSHIUSDT","a":57871185,"p":"7.6110",
                "q":"2","f":..,"l":..,"T":1626992741011,"m":true}
  bookTicker   {"u":35346513501,"s":"ETHUSDT","b":"2683.80000000","B":"3.02920000",
                "a":"2683.81000000","A":"31.43950000"}  (futures: "e":"bookTicker", "T", "E")

seq_provider: depth -> u, trade -> t, aggTrade -> a, bookTicker -> u. event_ts_ns:
"E" in ns, or 0 when the venue sends no event time (spot bookTicker). Trade side is
the taker's: "m" (buyer is maker) true -> SELL. Fields beyond the ones read are
ignored (USD-M aggTrade "nq", ...). Frames of other channels (kline, markPrice, ...)
are counted as ignored; `serverShutdown` ({"e":"serverShutdown","E":..}, spot since
2026-05-08) asks the process to reconnect (`io.reconnect`); anything unparseable goes
to the DLQ.

Combined-stream bookTicker and trade frames of a carried symbol ("stream":
"ethusdt@bookTicker") keep their payload fields and are written at the flush, a run
at a time (`deferred`); every other frame is handled here.
"""

from __future__ import annotations

import struct
import time

import orjson

from events import BadInput, Kind, UnknownInstrument
from marketdata.book import book_view

from ...snapshots import SnapshotRequests
from .deferred import RUN, Deferred, ticker_values, trade_values
from ...base import KINDS
from ..markets import MARKETS
from .sync import DepthSync

# kind (venues.base.KINDS) -> the stream of each carried symbol: "{sym}@<channel>"
CHANNELS = {"book": "depth@100ms", "ticker": "bookTicker"}   # trade: @trade / @aggTrade
IGNORED_EVENTS = frozenset({"kline", "markPriceUpdate", "forceOrder", "24hrTicker",
                            "24hrMiniTicker", "depth", "indexPriceUpdate", "contractInfo"})


class BinanceAdapter:
    """Adapter for one Binance connection (spot, US, USD-M or COIN-M). One owner thread.

    `streams`: the instruments carried (ingest.stream.Stream); `ignore`: venue symbols
    that may appear but are not carried (replay --symbol), counted as filtered.
    """

    def __init__(self, provider, streams, publisher, report, io, *, timers=None,
                 clock=time.monotonic_ns, ignore=()):
        self.provider = provider
        self.market = MARKETS[provider]
        self.pub = publisher
        # sparse sequences: depth and bookTicker carry the update id `u`, which skips
        # (trade / aggTrade ids count up by one)
        publisher.declare_sparse((Kind.BOOK, Kind.TICKER))
        self.report = report
        self.io = io
        self.timers = timers
        self.clock = clock
        self.streams = {s.venue_symbol: s for s in streams}
        self.syncs = {s.venue_symbol: DepthSync(s, self.market.futures, report, self)
                      for s in streams}
        self.ignore = frozenset(ignore)
        trades = "aggTrade" if self.market.futures else "trade"
        self.waiting = [Deferred(s, ch, self.market.futures) for s in streams
                        for ch in ("bookTicker", trades)]
        self._waiting = {q.name: q for q in self.waiting}   # combined-stream name -> Deferred
        publisher.fillers.append(self._fill)
        self.snapshots = SnapshotRequests(io, report, timers, clock, stale_what="diff")

    # -- connection ----------------------------------------------------------------

    def ws_path(self, kinds=KINDS) -> str:
        """Combined-stream path of the `kinds` (book: depth, trade, ticker: bookTicker) of
        every carried instrument (the category path of a split market comes before it)."""
        channels = {**CHANNELS, "trade": "aggTrade" if self.market.futures else "trade"}
        names = [f"{vs.lower()}@{channels[k]}" for vs in self.streams
                 for k in ("book", "trade", "ticker") if k in kinds]
        return "/stream?streams=" + "/".join(names)

    def subscribe_frames(self, kinds=KINDS) -> list[str]:
        return []  # the combined-stream URL carries the subscription

    def on_connected(self, first: bool) -> None:
        """After a (re)connect: every book starts over from a new snapshot."""
        for sync in self.syncs.values():
            if first:
                self._request(sync.stream.venue_symbol)
                sync.stream.resync_started_ns = self.clock()
            else:
                sync.lose("reconnect", "websocket reconnected")

    # -- frames --------------------------------------------------------------------

    def on_frame(self, frame, recv_ns: int) -> None:
        """One WebSocket frame as received; never raises for bad input (DLQ instead)."""
        self.report.messages += 1
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self.report.bad_frame(frame, "not_json", exc)
            return
        if type(msg) is dict:
            name = msg.get("stream")
            q = self._waiting.get(name) if type(name) is str else None
            if q is not None:    # a bookTicker or trade of a carried symbol: written at flush
                data = msg.get("data")
                try:
                    v = q.getter(data) if type(data) is dict and len(data) <= q.max_keys else None
                except KeyError:
                    v = None
                if v is None:
                    q.odd[len(q.values)] = msg
                q.values.append(v)
                q.frames.append(frame)
                q.recv.append(recv_ns)
                rows = q.rows
                self.pub.claim(rows)
                if len(rows) >= RUN:
                    q.fill(self.pub, self.report)
                return
        try:
            data = msg.get("data", msg)
            if "A" in data and data.get("e", "bookTicker") == "bookTicker":
                stream = self.streams.get(data["s"]) or self._unknown(data["s"])
                if stream is None:
                    return
                stream.messages += 1
                u, ens, bp, bs, ap, az = ticker_values(stream, data)
                self.pub.ticker(stream.iid, stream.px_scale, stream.sz_scale, u, recv_ns, ens,
                                bp, bs, ap, az, u)
                return
            e = data.get("e")
            if e == "depthUpdate":
                stream = self.streams.get(data["s"]) or self._unknown(data["s"])
                if stream is not None:
                    stream.messages += 1
                    stream.last_book_ns = self.clock()
                    self.syncs[stream.venue_symbol].on_diff(data, recv_ns)
            elif e == "trade" or e == "aggTrade":
                self._trade(data, e, recv_ns)
            elif e == "serverShutdown":
                # {"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}:
                # the server closes this connection soon; open a new one now (spot, 2026-05-08)
                self.report.ignored += 1
                self.io.reconnect("serverShutdown")
            elif e in IGNORED_EVENTS or ("result" in data and "id" in data):
                self.report.ignored += 1
            else:
                raise BadInput(f"unknown Binance event: e={e!r}")
        except BadInput as exc:
            self.report.bad_frame(frame, "bad_input", exc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                struct.error) as exc:
            self.report.bad_frame(frame, "malformed", exc)

    def _unknown(self, venue_symbol):
        """None for a symbol this process does not carry (counted); else UnknownInstrument."""
        if type(venue_symbol) is str and venue_symbol in self.ignore:
            self.report.filtered += 1
            return None
        raise UnknownInstrument(f"unknown venue symbol {venue_symbol!r} on {self.provider.slug}")

    def _trade(self, d: dict, e: str, recv_ns: int) -> None:
        stream = self.streams.get(d["s"]) or self._unknown(d["s"])
        if stream is None:
            return
        stream.messages += 1
        tid, ens, px, sz, side = trade_values(stream, d, e)
        self.pub.trade(stream.iid, stream.px_scale, stream.sz_scale, tid, recv_ns, ens, tid, px, sz, side)

    def _fill(self) -> None:
        """The publisher's filler: the waiting bookTicker and trade frames into their rows."""
        for q in self.waiting:
            if q.rows:
                q.fill(self.pub, self.report)

    # -- snapshots -----------------------------------------------------------------

    def on_snapshot(self, venue_symbol: str, payload, recv_ns: int) -> None:
        """A REST depth response for `venue_symbol` (bytes as received, or parsed)."""
        self.snapshots.answered(venue_symbol)
        sync = self.syncs.get(venue_symbol)
        if sync is None:
            if venue_symbol in self.ignore:
                self.report.filtered += 1
                return
            self.report.bad_frame(payload, "bad_input", UnknownInstrument(
                f"snapshot for unknown venue symbol {venue_symbol!r}"))
            return
        try:
            if isinstance(payload, (bytes, bytearray, memoryview, str)):
                payload = orjson.loads(payload)
            sync.on_snapshot(payload, recv_ns)
        except (BadInput, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            self.report.bad_frame(payload, "bad_snapshot", exc)
            if not sync.synced:
                self.restart(sync, "snapshot_failed", str(exc))

    def on_snapshot_error(self, venue_symbol: str, error: str) -> None:
        """The REST request for `venue_symbol` failed (HTTP error, timeout, refused)."""
        self.snapshots.answered(venue_symbol)
        sync = self.syncs.get(venue_symbol)
        if sync is not None and not sync.synced:
            self.restart(sync, "snapshot_failed", error)

    # -- owner callbacks from DepthSync ----------------------------------------------

    def publish(self, sync: DepthSync, flags: int, event_ns: int, recv_ns: int) -> None:
        s = sync.stream
        self.pub.book(s.iid, s.px_scale, s.sz_scale, sync.last_u, recv_ns, event_ns, sync.book,
                      s.depth, flags)

    def synced(self, sync: DepthSync) -> None:
        self.snapshots.synced(sync)

    def restart(self, sync: DepthSync, reason: str, detail: str) -> None:
        self.snapshots.restart(sync, reason, detail)

    def _request(self, venue_symbol: str) -> None:
        self.snapshots.request(venue_symbol)

    # -- timers --------------------------------------------------------------------

    def check_timers(self, now: int) -> None:
        """Staleness, periodic refresh, snapshot timeouts and delayed requests."""
        self.snapshots.check(now, self.syncs)

    # -- state ---------------------------------------------------------------------

    def books(self) -> dict:
        """Final state per canonical symbol: top-N bids/asks as decimal strings."""
        return {sync.stream.symbol: book_view(sync.stream, sync.book, sync.last_u, sync.synced)
                for sync in self.syncs.values()}
