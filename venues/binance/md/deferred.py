"""Binance bookTicker and trade frames: kept as parsed, written to the stage together.

bookTicker frames are three quarters of a Binance feed (58,758 of the 79,743 frames
of the 24 h ETHUSDT recording) and trades most of the rest; neither touches a book.
So for a combined-stream frame of a carried symbol's bookTicker or trade stream the
adapter keeps, right after orjson parsed it, only the payload's fields (one C-level
itemgetter tuple), claims the frame's stage row (frame order is kept), and `fill`
later checks and converts a run of up to `RUN` of them at once with C-level
`map`s, one C call per column of prices or sizes (marketdata.decimals.column) and numpy column writes
instead of ~40 Python steps per frame:

  {"stream":"ethusdt@bookTicker","data":{"u":35346513501,"s":"ETHUSDT","b":"2683.80000000",
   "B":"3.02920000","a":"2683.81000000","A":"31.43950000"}}          (futures add "e", "E", "T")
  {"stream":"ethusdt@trade","data":{"e":"trade","E":1723161255612,"s":"ETHUSDT","t":1520538925,
   "p":"2683.80000000","q":"0.00200000","T":1723161255611,"m":true,"M":true}}   (futures: aggTrade, "a")

Same checks, same records as the per-frame path (`ticker_values`, `trade_values`,
shared with it): every run is first checked as a whole (payload keys, symbol,
event type, integer ids, boolean `m`, event times, every price and size converted
exactly; fields beyond the ones read are ignored, as on the per-frame path); a run that fails any check, or a short one (fewer than `MIN_RUN` rows,
where numpy's fixed cost exceeds the per-row one), is written row by row with
exactly the per-frame path's checks, and a bad frame goes to the DLQ with its row
given back. A frame under a bookTicker / trade stream name whose payload is
something else is bad input. Records reach the ring at the flush, as before: no
record waits longer than it did.
"""

from __future__ import annotations

import logging
import struct
from operator import itemgetter

import numpy as np

from events import BadInput, Kind, Side
from events.fixed import INT64_MAX

from marketdata.decimals import column

_SELL, _BUY = int(Side.SELL), int(Side.BUY)
_TICKER, _TRADE = int(Kind.TICKER), int(Kind.TRADE)
_MAX_MS = INT64_MAX // 1_000_000
MIN_RUN = 16
RUN = 256          # frames kept before a run is written (keeps the kept values in cache)
# (channel, futures) -> the payload fields kept. A payload must carry them; any other
# field is ignored, so fields Binance adds (USD-M aggTrade "nq" since the RPI orders,
# "st", "ps") keep a frame on this path (PROTOCOL.md).
FIELDS = {
    ("bookTicker", False): ("u", "s", "b", "B", "a", "A"),
    ("bookTicker", True): ("u", "s", "b", "B", "a", "A", "e", "E"),               # + "T"
    ("trade", False): ("e", "E", "s", "t", "p", "q", "m"),                        # + "T", "M"
    ("trade", True): ("e", "E", "s", "t", "p", "q", "m"),
    ("aggTrade", False): ("e", "E", "s", "a", "p", "q", "m"),                     # + "f", "l", "T", "M"
    ("aggTrade", True): ("e", "E", "s", "a", "p", "q", "m"),                      # + "nq", "f", "l", "T"
}
# A spot bookTicker payload is exactly its six fields: the per-frame path would read an
# "E" or "e" there, which this path does not, so a longer one goes the per-frame way.
MAX_KEYS = {("bookTicker", False): 6}
ANY_KEYS = 1 << 30
_INPUT_ERRORS = (BadInput, KeyError, TypeError, ValueError, IndexError, AttributeError,
                 OverflowError, struct.error)
log = logging.getLogger("ingest.binance")


def ticker_values(stream, data: dict) -> tuple:
    """(u, event_ns, bid_px, bid_sz, ask_px, ask_sz) of one bookTicker payload of `stream`."""
    u = data["u"]
    if type(u) is not int:
        raise BadInput(f"bookTicker update id must be an integer: u={u!r}")
    px, sz = stream.px, stream.sz
    bp, bs, ap, az = px(data["b"]), sz(data["B"]), px(data["a"]), sz(data["A"])
    E = data.get("E", 0)
    return u, E * 1_000_000 if type(E) is int else 0, bp, bs, ap, az


def trade_values(stream, d: dict, e: str) -> tuple:
    """(trade_id, event_ns, px, sz, side) of one trade / aggTrade payload of `stream`."""
    tid = d["t"] if e == "trade" else d["a"]
    m = d["m"]
    if type(tid) is not int or type(m) is not bool:
        raise BadInput(f"trade id must be an integer and m a boolean: id={tid!r} m={m!r}")
    E = d.get("E", 0)
    return (tid, E * 1_000_000 if type(E) is int else 0, stream.px(d["p"]), stream.sz(d["q"]),
            _SELL if m else _BUY)


class Deferred:
    """The bookTicker or trade frames of one stream waiting for the flush. One owner thread.

    For each parsed frame of stream `name` the adapter appends to `values` the
    payload's `fields` as one C-level itemgetter tuple (the payload must carry
    them and at most `max_keys` keys; others are ignored), or None with the whole message in `odd`; then
    `frames`, `recv` and the claimed row (`publisher.claim(rows)`).
    `fill` (called by the flush, or by the adapter once `RUN` frames wait) writes
    their records. A run with an odd frame goes row by row.
    """

    __slots__ = ("stream", "name", "event", "fields", "max_keys", "getter", "values",
                 "frames", "recv", "rows", "odd")

    def __init__(self, stream, channel: str, futures: bool):
        self.stream = stream
        self.name = f"{stream.venue_symbol.lower()}@{channel}"     # the combined-stream name
        self.event = channel                                      # bookTicker, trade, aggTrade
        self.fields = FIELDS[(channel, futures)]
        self.max_keys = MAX_KEYS.get((channel, futures), ANY_KEYS)
        self.getter = itemgetter(*self.fields)
        self.values: list = []      # per frame: the `fields` tuple, or None (odd: see `odd`)
        self.frames: list = []
        self.recv: list = []
        self.rows: list = []
        self.odd: dict = {}         # index in this run -> the whole message

    def fill(self, pub, report) -> None:
        """Write every waiting frame's record into its claimed row."""
        if not self.rows:
            return
        ticker = self.event == "bookTicker"
        self.stream.messages += len(self.rows)
        try:
            try:
                done = len(self.rows) >= MIN_RUN and not self.odd and \
                    (self._tickers(pub) if ticker else self._trades(pub))
            except Exception:  # noqa: BLE001 - a bug here must not lose the run
                log.exception("%s: a run failed; writing it row by row", self.name)
                done = False
            if not done:
                self._one_by_one(pub, report, ticker)
        finally:
            self.values.clear()
            self.frames.clear()
            self.recv.clear()
            self.rows.clear()
            self.odd.clear()

    # -- a whole run at once ------------------------------------------------------------

    def _event_ns(self, es):
        """Event times in ns, or None when one would need the per-frame path."""
        if set(map(type, es)) != {int}:
            return None
        a = np.array(es, np.int64)
        if a.min() < -_MAX_MS or a.max() > _MAX_MS:
            return None
        return a * 1_000_000

    def _tickers(self, pub) -> bool:
        st = self.stream
        try:
            cols = list(zip(*self.values))
            if len(cols) == 6:                       # spot: u s b B a A, no event time
                u, s, b, B, a, A = cols
                ens = 0
            else:                                    # futures: u s b B a A e E
                u, s, b, B, a, A, e, E = cols
                ens = self._event_ns(E)
                if ens is None or set(e) != {"bookTicker"}:
                    return False
            if set(s) != {st.venue_symbol} or set(map(type, u)) != {int}:
                return False
            px, sz = st.px, st.sz
            pub.fill(_TICKER, self.rows, st.iid, st.px_scale, st.sz_scale, u, self.recv, ens,
                     column(px, b), column(sz, B), column(px, a), column(sz, A), u)
            return True
        except _INPUT_ERRORS:
            return False     # the row-by-row path finds the bad frame and says why

    def _trades(self, pub) -> bool:
        st = self.stream
        try:
            e, E, s, tid, p, q, m = zip(*self.values)
            if set(e) != {self.event} or set(s) != {st.venue_symbol} or \
                    set(map(type, tid)) != {int} or set(map(type, m)) != {bool}:
                return False
            ens = self._event_ns(E)
            if ens is None:
                return False
            side = np.where(np.array(m, bool), _SELL, _BUY)
            pub.fill(_TRADE, self.rows, st.iid, st.px_scale, st.sz_scale, tid, self.recv, ens, tid,
                     column(st.px, p), column(st.sz, q), side)
            return True
        except _INPUT_ERRORS:
            return False

    # -- row by row: the per-frame path's checks ------------------------------------------

    def _one_by_one(self, pub, report, ticker: bool) -> None:
        st = self.stream
        fields = self.fields
        for i, (v, frame, recv_ns, row) in enumerate(zip(self.values, self.frames, self.recv,
                                                         self.rows)):
            try:
                if v is not None:
                    data = dict(zip(fields, v))
                else:
                    data = self.odd[i]["data"]
                if data["s"] != st.venue_symbol:
                    raise BadInput(f"payload symbol {data['s']!r} under stream {self.name!r}")
                if ticker:
                    if "A" not in data or data.get("e", "bookTicker") != "bookTicker":
                        raise BadInput(f"no bookTicker payload under stream {self.name!r}")
                    u, ens, bp, bs, ap, az = ticker_values(st, data)
                    pub.ticker(st.iid, st.px_scale, st.sz_scale, u, recv_ns, ens, bp, bs, ap, az, u, row)
                else:
                    if data.get("e") != self.event:
                        raise BadInput(f"no {self.event} payload under stream {self.name!r}")
                    tid, ens, p, q, side = trade_values(st, data, self.event)
                    pub.trade(st.iid, st.px_scale, st.sz_scale, tid, recv_ns, ens, tid, p, q, side, row)
            except BadInput as exc:
                pub.drop(row)
                report.bad_frame(frame, "bad_input", exc)
            except _INPUT_ERRORS as exc:
                pub.drop(row)
                report.bad_frame(frame, "malformed", exc)
            except Exception as exc:  # noqa: BLE001 - a bug: the flush must go on for the other rows
                pub.drop(row)
                log.exception("%s: internal error on a deferred frame", self.name)
                report.bad_frame(frame, "internal_error", exc)
