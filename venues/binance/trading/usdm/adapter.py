"""The Binance USD-M order adapter: the engine's `Venue`, over worker threads.

`place`, `cancel`, `amend`, `query`, `list_open` and `query_account` are called by the
engine's thread; they only queue a job. Jobs of one order always go to the same worker (by
a hash of its client order id), so a cancel or a modify never overtakes its own order's
placement; each worker owns one keep-alive REST connection. Outcomes come back through
`emit(event)` (thread-safe, provided by the process). Every placement that left is told to
telemetry as the spot adapter does (`exec.order.send_us`, `exec.order.sent`).

Order entry (`order_entry`): "rest" (default), or "ws": place, modify, cancel and query over
the USD-M WebSocket API (wsapi.py) while its session is up, REST while it is down; the same
events either way, and a request handed to the WebSocket is never sent again on REST (no
answer is an unknown outcome, resolved by a query).

    request                    reply                           event
    POST   /fapi/v1/order      order object (ACK: NEW, nothing  VenueOrderReported (the fills come
                               filled yet)                      on the stream, one per trade)
    PUT    /fapi/v1/order      order object after the modify   VenueOrderReported(amended=True,
                                                                source "amend")
    DELETE / GET /fapi/v1/order  order object                  VenueOrderReported
    any    4xx {"code","msg"}                                  VenueRequestRefused (query -2013:
                                                                VenueOrderNotFound); GTX that would
                                                                take: -5022, FOK that cannot fill
                                                                at once: -5021 (not recorded)
    any    timeout, reset, 5xx, -1006/-1007                    VenueOutcomeUnknown
    GET /fapi/v1/openOrders    list                            VenueOpenOrdersListed / ...Failed
    GET /fapi/v3/balance + /fapi/v3/positionRisk               VenueAccountReported(full=True) /
                                                                VenueAccountFailed
    stream ORDER_TRADE_UPDATE                                  VenueOrderReported
    stream ACCOUNT_UPDATE                                      VenueAccountReported(full=False), once
                                                                the engine asked for the account
                                                                (`query_account`): a change before the
                                                                first whole snapshot has nothing to
                                                                apply to (and an engine that keeps no
                                                                account state never asks)
    stream TRADE_LITE                                          ignored (counted): it repeats the
                                                                TRADE of ORDER_TRADE_UPDATE
                                                                without the cumulative figures

Orders are placed in one-way position mode (no positionSide); `reduceOnly=true` is sent for
an order that carries `reduce_only` (the venue refuses one that would not reduce the
position: -2022 "ReduceOnly Order is rejected."), and `timeInForce=GTX` for POST_ONLY (the
venue refuses it if it would take: -5022). A placement refused with -4116 "ClientOrderId is
duplicated." is flagged `duplicate` (an earlier placement of ours landed: the engine queries).
"""

from __future__ import annotations

import threading
import time

import orjson

from events import (
    BadInput, Instrument, OrderType, PeerGone, Provider, Registry, TimeInForce, UnknownInstrument, to_decimal)
from venues.trading import (
    Order, VenueAccountFailed, VenueOpenOrdersFailed, VenueOpenOrdersListed, VenueOrderNotFound,
    VenueOutcomeUnknown, VenueRequestRefused)
from venues.workers import RestWorkers, tell_sent

from ..rest import NO_SUCH_ORDER, BinanceRefused, NotSent
from ..wsapi import WsApiSession
from . import parse
from .rest import DUPLICATE_CLIENT_ORDER_ID, FuturesRest
from .stream import LIFETIME_S, FuturesUserStream
from .wsapi import UsdmWsEntry, ws_api_url

SIDES = {1: "BUY", 2: "SELL"}
TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.POST_ONLY: "GTX"}


def fetch_registry(rest_url: str, *, timeout_s: float = 2.0, deadline_s: float = 30.0,
                   registry: Registry | None = None) -> Registry:
    """Instruments from GET /fapi/v1/exchangeInfo, retrying until `deadline_s` (venue starting)."""
    rest = FuturesRest(rest_url, timeout_s=timeout_s)
    end = time.monotonic() + deadline_s
    try:
        while True:
            try:
                return parse.load_registry(rest.exchange_info(), registry)
            except PeerGone:
                if time.monotonic() >= end:
                    raise
                time.sleep(0.1)
    finally:
        rest.close()


def order_params(o: Order, symbol: str) -> dict:
    """The POST /fapi/v1/order parameters of `o` (one-way mode, ACK reply)."""
    inst = o.instrument
    params = {"symbol": symbol, "side": SIDES[int(o.side)], "type": o.order_type.name,
              "quantity": to_decimal(o.qty, inst.sz_scale), "newClientOrderId": o.venue_client_order_id,
              "newOrderRespType": "ACK"}
    if o.order_type is OrderType.LIMIT:
        try:
            params["timeInForce"] = TIFS[o.tif]
        except KeyError:
            raise BadInput(f"time in force not supported on Binance USD-M: {o.tif.name}") from None
        params["price"] = to_decimal(o.price, inst.px_scale)
    if o.reduce_only:
        params["reduceOnly"] = "true"
    return params


class BinanceUsdmAdapter:
    provider = Provider.BINANCE_USDM
    order_entries = ("rest", "ws")   # the order-entry paths this adapter offers (`order_entry`)
    fee_scale = parse.FEE_SCALE
    # Request weight (USD-M REST): GET /fapi/v1/openOrders 1 with a symbol, 40 without; one
    # request without a symbol is cheaper from 40 symbols with open orders on.
    list_all_from = 40

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
        self.quotes = parse.Quotes()
        self._account_asked = threading.Event()   # query_account was called: pass ACCOUNT_UPDATE on
        self._stop = threading.Event()
        mk = lambda: FuturesRest(rest_url, api_key, api_secret, timeout_s=timeout_s,  # noqa: E731
                                 recv_window_ms=recv_window_ms)
        self.workers = RestWorkers(mk, workers, "usdm-rest", dlq=dlq, venue="binance-usdm")
        self._submit = self.workers.submit
        self.stream = FuturesUserStream(rest_url, ws_url, api_key, api_secret, self._on_event, self._on_bad, emit,
                                        timeout_s=timeout_s, lifetime_s=stream_lifetime_s, dlq=dlq,
                                        telemetry=telemetry)
        self.order_entry = order_entry    # may be set before start (the process does)
        self._ws_args = (ws_api_url(ws_url), api_key, api_secret,
                         dict(recv_window_ms=recv_window_ms, timeout_s=timeout_s, lifetime_s=stream_lifetime_s,
                              dlq=dlq, telemetry=telemetry))
        self.wsapi: WsApiSession | None = None
        self.ws_entry: UsdmWsEntry | None = None

    def __repr__(self) -> str:
        return f"BinanceUsdmAdapter({self.rest_url})"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self.order_entry == "ws":
            url, key, secret, kw = self._ws_args
            self.wsapi = WsApiSession(url, key, secret, **kw)
            self.ws_entry = UsdmWsEntry(self.wsapi, self.emit, self._reports, self._sent)
            self.wsapi.start()
            self.wsapi.wait_up(self.wsapi.timeout_s)   # the first orders need not take REST
        self.workers.start()
        self.stream.start()

    def stop(self) -> None:
        self._stop.set()
        self.workers.stop()
        self.stream.stop()
        if self.wsapi is not None:
            self.wsapi.stop()
        self.workers.join()

    # -- the engine's Venue ------------------------------------------------------------

    def place(self, o: Order) -> None:
        symbol = self.registry.venue_symbol(self.provider, o.instrument.id)
        try:
            params = order_params(o, symbol)
        except BadInput as e:
            self.emit(VenueRequestRefused(o.venue_client_order_id, "place", 0, f"not sent: {e}"))
            return
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

    def amend(self, o: Order, qty: int, price: int) -> None:
        """Modify (PUT /fapi/v1/order): both quantity and price are sent, as USD-M requires."""
        inst = o.instrument
        params = {"symbol": self.registry.venue_symbol(self.provider, inst.id),
                  "origClientOrderId": o.venue_client_order_id, "side": SIDES[int(o.side)],
                  "quantity": to_decimal(qty, inst.sz_scale), "price": to_decimal(price, inst.px_scale)}
        self._submit(o.venue_client_order_id, self._amend, o.venue_client_order_id, params)

    def query_account(self) -> None:
        self._account_asked.set()
        self._submit("*account", self._account)

    # -- jobs (worker threads) ---------------------------------------------------------

    def _reports(self, vcoid: str, action: str, resp, source: str) -> None:
        try:
            report = parse.order_response(resp, self.registry, self.quotes, source)
            if action == "amend" and report.status is not None and not report.status.terminal:
                report.amended = True     # (a modify that cancels the order is reported as the cancel)
        except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
            if self.dlq is not None:
                self.dlq.put("bad_order_reply", priority="high", raw=orjson.dumps(resp), error=str(e))
            self.emit(VenueOutcomeUnknown(vcoid, action, f"unreadable reply: {e}"))
            return
        self.emit(report)

    def _place(self, rest: FuturesRest, vcoid: str, params: dict, stamps: tuple) -> None:
        if self.ws_entry is not None and self.ws_entry.place(vcoid, params, stamps):
            return
        sent_ms = time.time_ns() // 1_000_000
        try:
            resp = rest.new_order(**params)
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "place", e.code, e.msg, e.code == DUPLICATE_CLIENT_ORDER_ID))
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

    def _cancel(self, rest: FuturesRest, vcoid: str, symbol: str) -> None:
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

    def _query(self, rest: FuturesRest, vcoid: str, symbol: str) -> None:
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

    def _amend(self, rest: FuturesRest, vcoid: str, params: dict) -> None:
        if self.ws_entry is not None and self.ws_entry.modify(vcoid, params):
            return
        try:
            resp = rest.modify_order(**params)
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "amend", e.code, e.msg))
            return
        except NotSent as e:
            self.emit(VenueRequestRefused(vcoid, "amend", 0, f"not sent: {e}"))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "amend", str(e)))
            return
        self._reports(vcoid, "amend", resp, "amend")

    def _account(self, rest: FuturesRest) -> None:
        try:
            balances, positions = rest.balances(), rest.position_risk()
            self.emit(parse.account(balances, positions, self.registry))
        except BinanceRefused as e:
            self.emit(VenueAccountFailed(f"refused: {e.code} {e.msg}"))
        except PeerGone as e:
            self.emit(VenueAccountFailed(str(e)))
        except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
            self.emit(VenueAccountFailed(f"unreadable reply: {type(e).__name__}: {e}"))

    def _list_open(self, rest: FuturesRest, request_id: int, symbol: str | None) -> None:
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
                reports.append(parse.order_response(item, self.registry, self.quotes, "open_orders"))
            except UnknownInstrument:  # a symbol we do not trade (another client of the account)
                if self.tel is not None:
                    self.tel.inc("exec.reconcile.foreign")
            except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
                if self.dlq is not None:
                    self.dlq.put("bad_open_order", priority="high", raw=orjson.dumps(item),
                                 error=f"{type(e).__name__}: {e}")
        self.emit(VenueOpenOrdersListed(tuple(reports), request_id))

    # -- the user stream (its thread) ------------------------------------------------------

    def _on_event(self, ev: dict, raw: bytes) -> None:
        kind = ev.get("e")
        try:
            if kind == "ORDER_TRADE_UPDATE":
                self.emit(parse.order_trade_update(ev, self.registry, self.quotes))
            elif kind == "ACCOUNT_UPDATE":
                if self._account_asked.is_set():
                    self.emit(parse.account_update(ev, self.registry))
                elif self.tel is not None:
                    self.tel.inc("exec.stream.ignored", event="ACCOUNT_UPDATE before a snapshot")
            elif self.tel is not None:   # TRADE_LITE, ACCOUNT_CONFIG_UPDATE, MARGIN_CALL, ...
                self.tel.inc("exec.stream.ignored", event=str(kind))
        except UnknownInstrument:          # an order of a symbol we do not trade
            if self.tel is not None:
                self.tel.inc("exec.stream.foreign")
        except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
            self._on_bad(raw, f"{type(e).__name__}: {e}")

    def _on_bad(self, raw: bytes, error: str) -> None:
        if self.dlq is not None:
            self.dlq.put("bad_user_stream_frame", priority="high", raw=raw, error=error)
        if self.tel is not None:
            self.tel.inc("exec.stream.bad_frames")
