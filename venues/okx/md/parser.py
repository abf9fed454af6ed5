"""OKX v5 public frames -> canonical records: the adapter of one OKX connection.

Frames (as recorded, 2022-05-13):
  books    {"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[
            {"asks":[["30249.4","0","0","0"]],"bids":[["30182.6","452","0","1"]],
             "ts":"1652459225464","checksum":-914047754}]}      (newer: "seqId","prevSeqId")
  trades   {"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":
            "BTC-USD-220527","tradeId":"7849","px":"30218.8","sz":"1","side":"buy",
            "ts":"1652459199958"}]}
  tickers  {"arg":{"channel":"tickers","instId":"BTC-USD-220527"},"data":[{"instType":
            "FUTURES","instId":"BTC-USD-220527","last":"30218.8","lastSz":"1","askPx":
            "30220.1","askSz":"3","bidPx":"30210.4","bidSz":"4",...,"ts":"1652459223003"}]}
  events   {"event":"subscribe","arg":{...}} / {"event":"error","code":"60012","msg":..}
  "pong"   the answer to our "ping" text frame (keep-alive)

Books sync per OKX's documented procedure (`sync`): REST snapshots of one instrument
(GET /api/v5/market/books?instId=..&sz=400, `on_snapshot`) chained to the stream by
seqId/prevSeqId; a resync fetches a snapshot of that instrument alone and never
resubscribes (OKX caps subscribe/unsubscribe requests per connection).

seq_provider: books -> seqId (or ts_ms * 1000 + k), trades -> tradeId, tickers ->
ts_ms * 1000 + k, k counting that stream's messages within the same millisecond (see
`seq`: ts alone repeats, and equal seq_provider means equal event_id). event_ts_ns:
"ts" in ns. Trade side: "buy"/"sell" (the taker's), any other value is bad input.
"""

from __future__ import annotations

import struct
import time

import orjson

from events import BadInput, Kind, Side, UnknownInstrument
from marketdata.book import book_view

from ..markets import WS_PATH
from ...snapshots import SnapshotRequests
from ..seq import next_seq
from .sync import LOADED, BooksSync

SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
_MAX_MS = ((1 << 63) - 1) // 1_000_000


def _ms(ts) -> int:
    if type(ts) is not str or not (ts.isascii() and ts.isdigit()) or int(ts) > _MAX_MS:
        raise BadInput(f"ts must be a string of digits: ts={ts!r}")
    return int(ts)


class OkxAdapter:
    """Adapter for one OKX public connection. One owner thread."""

    def __init__(self, provider, streams, publisher, report, io, *, timers=None,
                 clock=time.monotonic_ns, ignore=()):
        self.provider = provider
        self.pub = publisher
        # sparse sequences: books seqId and the ts-based ones skip (tradeId: dispatch finds out)
        publisher.declare_sparse((Kind.BOOK, Kind.TICKER))
        self.report = report
        self.io = io
        self.timers = timers
        self.clock = clock
        self.streams = {s.venue_symbol: s for s in streams}
        self.syncs = {s.venue_symbol: BooksSync(s, report, self) for s in streams}
        self.ignore = frozenset(ignore)
        self.snapshots = SnapshotRequests(io, report, timers, clock, stale_what="books message",
                                          before_request=self._before_request)
        self.loaded: dict[str, int] = {}      # instId -> monotonic ns of its last REST snapshot
        self.ticker_seq: dict[str, int] = {}     # instId -> last tickers seq_provider
        self.venue_errors = 0

    # -- connection ----------------------------------------------------------------

    def ws_path(self) -> str:
        return WS_PATH

    def subscribe_frames(self) -> list[str]:
        args = []
        for inst_id in self.streams:
            args += ({"channel": "books", "instId": inst_id}, {"channel": "trades", "instId": inst_id},
                     {"channel": "tickers", "instId": inst_id})
        return [orjson.dumps({"op": "subscribe", "args": args[i:i + 60]}).decode()
                for i in range(0, len(args), 60)]

    def on_connected(self, first: bool) -> None:
        """After a (re)connect: every book starts over from a REST snapshot (the stream is
        buffered meanwhile; a WS snapshot, where OKX still sends one, syncs it sooner)."""
        now = self.clock()
        for sync in self.syncs.values():
            if first:
                sync.stream.resync_started_ns = now
                self._request(sync.stream.venue_symbol)
            else:
                sync.lose("reconnect", "websocket reconnected")

    # -- frames --------------------------------------------------------------------

    def on_frame(self, frame, recv_ns: int) -> None:
        """One WebSocket frame as received; never raises for bad input (DLQ instead)."""
        self.report.messages += 1
        if frame == b"pong" or frame == "pong":
            self.report.ignored += 1
            return
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self.report.bad_frame(frame, "not_json", exc)
            return
        try:
            arg = msg.get("arg")
            data = msg.get("data")
            if data is not None:
                channel = arg["channel"]
                stream = self._stream(arg["instId"])
                if stream is None:
                    return
                stream.messages += 1
                if channel == "books":
                    self._books(stream, msg["action"], data, recv_ns)
                elif channel == "trades":
                    for t in data:
                        self._trade(stream, t, recv_ns)
                elif channel == "tickers":
                    for t in data:
                        self._ticker(stream, t, recv_ns)
                else:
                    self.report.ignored += 1
            elif "event" in msg:
                if msg["event"] == "error":
                    self.venue_errors += 1
                    self.report.bad_frame(frame, "venue_error")
                else:
                    self.report.ignored += 1
            else:
                raise BadInput("neither data nor event in an OKX frame")
        except BadInput as exc:
            self.report.bad_frame(frame, "bad_input", exc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                struct.error) as exc:
            self.report.bad_frame(frame, "malformed", exc)

    def _stream(self, inst_id):
        stream = self.streams.get(inst_id)
        if stream is None:
            if inst_id in self.ignore:
                self.report.filtered += 1
                return None
            raise UnknownInstrument(f"unknown instId {inst_id!r} on okx")
        return stream

    def _books(self, stream, action, data, recv_ns: int) -> None:
        sync = self.syncs[stream.venue_symbol]
        stream.last_book_ns = self.clock()
        for d in data:
            if action == "update":
                sync.on_update(d, recv_ns)
            elif action == "snapshot":
                sync.on_ws_snapshot(d, recv_ns)
            else:
                raise BadInput(f"unknown books action: {action!r}")

    def _trade(self, stream, t: dict, recv_ns: int) -> None:
        tid = t["tradeId"]
        if type(tid) is not str or not (tid.isascii() and tid.isdigit()) or len(tid) > 18:
            raise BadInput(f"tradeId must be a string of at most 18 digits: {tid!r}")
        tid = int(tid)
        side = SIDES.get(t["side"]) if type(t["side"]) is str else None
        if side is None:
            raise BadInput(f"unknown trade side: {t['side']!r}")
        self.pub.trade(stream.iid, stream.px_scale, stream.sz_scale, tid, recv_ns,
                       _ms(t["ts"]) * 1_000_000, tid, stream.px(t["px"]), stream.sz(t["sz"]), side)

    def _ticker(self, stream, t: dict, recv_ns: int) -> None:
        ts = _ms(t["ts"])
        px, sz = stream.px, stream.sz
        bp, bs, ap, az = t["bidPx"], t["bidSz"], t["askPx"], t["askSz"]
        bp, bs = px(bp) if bp else 0, sz(bs) if bs else 0
        ap, az = px(ap) if ap else 0, sz(az) if az else 0
        vs = stream.venue_symbol
        seq = self.ticker_seq[vs] = next_seq(ts, self.ticker_seq.get(vs, 0))
        self.pub.ticker(stream.iid, stream.px_scale, stream.sz_scale, seq, recv_ns, ts * 1_000_000,
                        bp, bs, ap, az, seq)

    # -- snapshots -----------------------------------------------------------------

    def on_snapshot(self, venue_symbol: str, payload, recv_ns: int) -> None:
        """A GET /api/v5/market/books answer for `venue_symbol` (bytes as received, or parsed):
        {"code": "0", "msg": "", "data": [{"asks": [..], "bids": [..], "ts": "..", "seqId": S}]}."""
        self.snapshots.answered(venue_symbol)
        sync = self.syncs.get(venue_symbol)
        if sync is None:
            if venue_symbol in self.ignore:
                self.report.filtered += 1
                return
            self.report.bad_frame(payload, "bad_input", UnknownInstrument(
                f"snapshot for unknown instId {venue_symbol!r}"))
            return
        try:
            if isinstance(payload, (bytes, bytearray, memoryview, str)):
                payload = orjson.loads(payload)
            code = payload.get("code")
            if code != "0":
                raise BadInput(f"books answered code={code!r} msg={str(payload.get('msg'))[:120]!r}")
            data = payload["data"]
            if type(data) is not list or len(data) != 1:
                raise BadInput(f"books data must hold one book: {len(data) if type(data) is list else data!r}")
            book = data[0]
            seq = book.get("seqId") if type(book) is dict else None
            if type(seq) is str and seq.isascii() and seq.isdigit():   # REST numbers may come as text
                book["seqId"] = int(seq)
            sync.on_rest_snapshot(book, recv_ns)
            self.loaded[venue_symbol] = self.clock()
        except (BadInput, KeyError, TypeError, ValueError, IndexError, AttributeError,
                orjson.JSONDecodeError) as exc:
            self.report.bad_frame(payload, "bad_snapshot", exc)
            if not sync.synced:
                self.restart(sync, "snapshot_failed", str(exc))

    def on_snapshot_error(self, venue_symbol: str, error: str) -> None:
        """The REST request for `venue_symbol` failed (HTTP error, timeout, refused)."""
        self.snapshots.answered(venue_symbol)
        sync = self.syncs.get(venue_symbol)
        if sync is not None and not sync.synced:
            self.restart(sync, "snapshot_failed", error)

    # -- owner callbacks from BooksSync -----------------------------------------------

    def publish(self, sync, flags: int, event_ns: int, recv_ns: int) -> None:
        s = sync.stream
        self.pub.book(s.iid, s.px_scale, s.sz_scale, sync.seq, recv_ns, event_ns, sync.book,
                      s.depth, flags)

    def synced(self, sync) -> None:
        self.snapshots.synced(sync)

    def restart(self, sync, reason: str, detail: str) -> None:
        """The book of `sync` was dropped: a REST snapshot of that instrument alone."""
        self.snapshots.restart(sync, reason, detail)

    def _request(self, venue_symbol: str) -> None:
        self.snapshots.request(venue_symbol)

    def _before_request(self, venue_symbol: str) -> None:
        self.syncs[venue_symbol].reset_seen = False   # this request is after any reset seen

    # -- timers and state ------------------------------------------------------------

    def check_timers(self, now: int) -> None:
        """Staleness, the periodic refresh, snapshot timeouts, delayed requests, and a
        snapshot that no update confirmed."""
        for sync in self.snapshots.check(now, self.syncs):
            vs = sync.stream.venue_symbol
            if sync.state == LOADED and now - self.loaded.get(vs, now) > self.timers.snapshot_timeout_ns:
                sync.lose("stale", "no books update confirmed the snapshot")

    def books(self) -> dict:
        """Final state per canonical symbol: top-N bids/asks as decimal strings."""
        return {sync.stream.symbol: book_view(sync.stream, sync.book, sync.seq, sync.synced)
                for sync in self.syncs.values()}
