"""What the Binance spot and USD-M trading adapters share: the engine's `Venue` over REST
worker threads, with WebSocket order entry when asked for.

`place`, `cancel`, `query` and `list_open` are called by the engine's thread; they only
queue a job. Jobs of one order always go to the same worker (by a hash of its client order
id), so a cancel never overtakes its own order's placement; each worker owns one keep-alive
REST connection (venues/workers.py). Outcomes come back through `emit(event)` (thread-safe,
provided by the process). Both venues sign and answer alike (rest.py, wsapi.py), so a job
turns a reply into the same events on either:

    order object                      the venue's reports (`_order_reports`; unreadable:
                                      VenueOutcomeUnknown, the reply to the DLQ)
    BinanceRefused                    VenueRequestRefused (query -2013: VenueOrderNotFound;
                                      place: `duplicate` as `_duplicate` says)
    NotSent (place)                   VenueRequestRefused(code 0, "not sent: ...")
    PeerGone                          VenueOutcomeUnknown (place: with the signed timestamp)

Order entry (`order_entry`): "rest" (default), or "ws": place, cancel and query (and what
the subclass adds) over the venue's WebSocket API while its session is up, REST while it is
down; the same events either way, and a request handed to the WebSocket is never sent again
on REST (no answer is an unknown outcome, resolved by a query). Every placement that left
is told to telemetry (`tell_sent`, with its `path`).

A subclass says what is its venue's: `provider`, `rest_class` (the endpoints), `venue` and
`workers_name` (telemetry, thread names), `ws_entry_class` and `_ws_api_url` (WebSocket
order entry), `_user_stream`, `_order_reports`, `_duplicate`, and its own `amend`,
`query_account` and user-stream events (`_on_event`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import orjson

from events import BadInput, Instrument, PeerGone, Provider, Registry, UnknownInstrument
from venues.trading import (
    Order, VenueOpenOrdersFailed, VenueOpenOrdersListed, VenueOrderNotFound, VenueOutcomeUnknown,
    VenueRequestRefused)
from venues.workers import RestWorkers, tell_sent

from .rest import NO_SUCH_ORDER, BinanceRefused, BinanceRest, NotSent
from .userstream import LIFETIME_S
from .wsapi import WsApiSession, WsOrderEntry

UNREADABLE = (BadInput, KeyError, TypeError, ValueError, AttributeError)   # a reply we cannot read


class BinanceAdapter(ABC):
    """The engine's `Venue` for one Binance market (see the module docstring)."""

    provider: Provider
    order_entries = ("rest", "ws")   # the order-entry paths this adapter offers (`order_entry`)
    rest_class: type[BinanceRest] = BinanceRest
    ws_entry_class: type[WsOrderEntry] = WsOrderEntry
    venue = workers_name = ""

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, registry: Registry, emit, *,
                 workers: int = 2, timeout_s: float = 2.0, recv_window_ms: int = 5000, dlq=None,
                 telemetry=None, stream_lifetime_s: float = LIFETIME_S, order_entry: str = "rest"):
        if order_entry not in self.order_entries:
            raise ValueError(f"order_entry must be one of {self.order_entries}: order_entry={order_entry!r}")
        self.rest_url, self.ws_url = rest_url, ws_url
        self.registry = registry
        self.emit = emit
        self.recv_window_ms = recv_window_ms
        self.dlq = dlq
        self.tel = telemetry
        mk = lambda: self.rest_class(rest_url, api_key, api_secret, timeout_s=timeout_s,  # noqa: E731
                                     recv_window_ms=recv_window_ms)
        self.workers = RestWorkers(mk, workers, self.workers_name, dlq=dlq, venue=self.venue)
        self._submit = self.workers.submit
        self.stream = self._user_stream(rest_url, ws_url, api_key, api_secret, recv_window_ms=recv_window_ms,
                                        timeout_s=timeout_s, lifetime_s=stream_lifetime_s)
        self.order_entry = order_entry    # may be set before start (the process does)
        self._ws_args = (self._ws_api_url(ws_url), api_key, api_secret,
                         dict(recv_window_ms=recv_window_ms, timeout_s=timeout_s, lifetime_s=stream_lifetime_s,
                              dlq=dlq, telemetry=telemetry))
        self.wsapi: WsApiSession | None = None
        self.ws_entry: WsOrderEntry | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rest_url})"

    # -- what the subclass says ------------------------------------------------------------

    @abstractmethod
    def _user_stream(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, *, recv_window_ms: int,
                     timeout_s: float, lifetime_s: float):
        """The user-data stream (started and stopped with the adapter); it calls `_on_event`,
        `_on_bad` and `emit` (its connection states)."""

    def _ws_api_url(self, ws_url: str) -> str:
        """The WebSocket API URL of order entry for user-stream URL `ws_url`."""
        return ws_url

    @abstractmethod
    def _order_reports(self, resp, action: str, source: str) -> list:
        """The venue reports of an order object replied to `action` (reports sourced `source`)."""

    @abstractmethod
    def _duplicate(self, e: BinanceRefused) -> bool:
        """A placement refused as `e`: its client order id is taken (an earlier placement landed)."""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self.order_entry == "ws":   # set before start: by the constructor or the process
            url, key, secret, kw = self._ws_args
            self.wsapi = WsApiSession(url, key, secret, **kw)
            self.ws_entry = self.ws_entry_class(self.wsapi, self.emit, self._reports, self._sent)
            self.wsapi.start()
            self.wsapi.wait_up(self.wsapi.timeout_s)   # the first orders need not take REST
        self.workers.start()
        self.stream.start()

    def stop(self) -> None:
        self.workers.stop()
        self.stream.stop()
        if self.wsapi is not None:
            self.wsapi.stop()
        self.workers.join()

    # -- the engine's Venue ------------------------------------------------------------

    def _submit_place(self, o: Order, params: dict) -> None:
        stamps = (o.consumer_id, o.client_order_id, o.created_ns, time.time_ns())
        self._submit(o.venue_client_order_id, self._place, o.venue_client_order_id, params, stamps)

    def cancel(self, o: Order) -> None:
        vs = self.registry.venue_symbol(self.provider, o.instrument.id)
        self._submit(o.venue_client_order_id, self._cancel, o.venue_client_order_id, vs)

    def query(self, o: Order) -> None:
        vs = self.registry.venue_symbol(self.provider, o.instrument.id)
        self._submit(o.venue_client_order_id, self._query, o.venue_client_order_id, vs)

    def list_open(self, instrument: Instrument | None, request_id: int) -> None:
        vs = self.registry.venue_symbol(self.provider, instrument.id) if instrument is not None else None
        self._submit(vs or "*", self._list_open, request_id, vs)

    # -- jobs (worker threads) ---------------------------------------------------------

    def _reports(self, vcoid: str, action: str, resp, source: str) -> None:
        """Emit the reports of an order object replied to `action` (REST or WebSocket)."""
        self._read_reply(vcoid, action, resp, self._order_reports, action, source)

    def _read_reply(self, vcoid: str, action: str, resp, read, *args) -> None:
        """Emit the reports `read(resp, *args)` makes of a reply to `action`; one it cannot read
        is an unknown outcome, and goes to the DLQ."""
        try:
            reports = read(resp, *args)
        except UNREADABLE as e:
            if self.dlq is not None:
                self.dlq.put("bad_order_reply", priority="high", raw=orjson.dumps(resp), error=str(e))
            self.emit(VenueOutcomeUnknown(vcoid, action, f"unreadable reply: {e}"))
            return
        for r in reports:
            self.emit(r)

    def _place(self, rest: BinanceRest, vcoid: str, params: dict, stamps: tuple) -> None:
        if self.ws_entry is not None and self.ws_entry.place(vcoid, params, stamps):
            return
        sent_ms = time.time_ns() // 1_000_000
        try:
            resp = rest.new_order(**params)
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "place", e.code, e.msg, self._duplicate(e)))
        except NotSent as e:
            self.emit(VenueRequestRefused(vcoid, "place", 0, f"not sent: {e}"))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "place", str(e), sent_ms))
        else:
            self._reports(vcoid, "place", resp, "rest")
        self._sent(vcoid, stamps, rest.sent_ns, rest.replied_ns)

    def _sent(self, vcoid: str, stamps: tuple, sent_ns: int, replied_ns: int, path: str = "rest") -> None:
        tell_sent(self.tel, vcoid, stamps, sent_ns, replied_ns, path)

    def _cancel(self, rest: BinanceRest, vcoid: str, symbol: str) -> None:
        if self.ws_entry is not None and self.ws_entry.cancel(vcoid, symbol):
            return
        try:
            resp = rest.cancel_order(symbol, vcoid)
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "cancel", e.code, e.msg))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "cancel", str(e)))
            return
        self._reports(vcoid, "cancel", resp, "rest")

    def _query(self, rest: BinanceRest, vcoid: str, symbol: str) -> None:
        if self.ws_entry is not None and self.ws_entry.query(vcoid, symbol):
            return
        try:
            resp = rest.get_order(symbol, vcoid)
        except BinanceRefused as e:
            if e.code == NO_SUCH_ORDER:
                self.emit(VenueOrderNotFound(vcoid))
            else:
                self.emit(VenueRequestRefused(vcoid, "query", e.code, e.msg))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "query", str(e)))
            return
        self._reports(vcoid, "query", resp, "query")

    def _list_open(self, rest: BinanceRest, request_id: int, symbol: str | None) -> None:
        try:
            resp = rest.open_orders(symbol)
        except BinanceRefused as e:
            self.emit(VenueOpenOrdersFailed(request_id, f"refused: {e.code} {e.msg}"))
            return
        except PeerGone as e:
            self.emit(VenueOpenOrdersFailed(request_id, str(e)))
            return
        if not isinstance(resp, list):
            self.emit(VenueOpenOrdersFailed(request_id, f"unreadable reply: not a list: {type(resp).__name__}"))
            return
        reports = []
        for item in resp:
            try:
                reports.extend(self._order_reports(item, "list_open", "open_orders"))
            except UnknownInstrument:  # a symbol we do not trade (another client of the account)
                if self.tel is not None:
                    self.tel.inc("exec.reconcile.foreign")
            except UNREADABLE as e:
                # left out: if the order is ours, it is then queried on its own
                if self.dlq is not None:
                    self.dlq.put("bad_open_order", priority="high", raw=orjson.dumps(item),
                                 error=f"{type(e).__name__}: {e}")
        self.emit(VenueOpenOrdersListed(tuple(reports), request_id))

    # -- the user stream (its thread) ------------------------------------------------------

    def _on_bad(self, raw: bytes, error: str) -> None:
        if self.dlq is not None:
            self.dlq.put("bad_user_stream_frame", priority="high", raw=raw, error=error)
        if self.tel is not None:
            self.tel.inc("exec.stream.bad_frames")
