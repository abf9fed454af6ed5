"""The Binance USD-M order adapter: the engine's `Venue`, over worker threads (../base.py:
the jobs, the workers, REST or WebSocket order entry, as the spot adapter has them; a
modify, like a cancel, never overtakes its own order's placement). Every placement that
left is told to telemetry as the spot adapter does (`exec.order.send_us`, `exec.order.sent`).

Order entry (`order_entry`): "rest" (default), or "ws": place, modify, cancel and query over
the USD-M WebSocket API (wsapi.py) while its session is up, REST while it is down.

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

from events import BadInput, OrderType, PeerGone, Provider, Registry, TimeInForce, UnknownInstrument, to_decimal
from venues.trading import Order, VenueAccountFailed, VenueOutcomeUnknown, VenueRequestRefused
from venues.workers import ask_until_up

from ..base import UNREADABLE, BinanceAdapter
from ..rest import BinanceRefused, NotSent
from . import parse
from .rest import DUPLICATE_CLIENT_ORDER_ID, FuturesRest
from .stream import FuturesUserStream
from .wsapi import UsdmWsEntry, ws_api_url

SIDES = {1: "BUY", 2: "SELL"}
TIFS = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.POST_ONLY: "GTX"}


def fetch_registry(rest_url: str, *, timeout_s: float = 2.0, deadline_s: float = 30.0,
                   registry: Registry | None = None) -> Registry:
    """Instruments from GET /fapi/v1/exchangeInfo, retrying until `deadline_s` (venue starting)."""
    return ask_until_up(FuturesRest(rest_url, timeout_s=timeout_s),
                        lambda rest: parse.load_registry(rest.exchange_info(), registry), deadline_s)


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


class BinanceUsdmAdapter(BinanceAdapter):
    provider = Provider.BINANCE_USDM
    fee_scale = parse.FEE_SCALE
    # Request weight (USD-M REST): GET /fapi/v1/openOrders 1 with a symbol, 40 without; one
    # request without a symbol is cheaper from 40 symbols with open orders on.
    list_all_from = 40
    rest_class, ws_entry_class = FuturesRest, UsdmWsEntry
    venue, workers_name = "binance-usdm", "usdm-rest"

    def __init__(self, *args, **kw):   # the arguments of BinanceAdapter
        self.quotes = parse.Quotes()
        self._account_asked = threading.Event()   # query_account was called: pass ACCOUNT_UPDATE on
        super().__init__(*args, **kw)

    def _user_stream(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, *, recv_window_ms: int,
                     timeout_s: float, lifetime_s: float) -> FuturesUserStream:
        return FuturesUserStream(rest_url, ws_url, api_key, api_secret, self._on_event, self._on_bad, self.emit,
                                 timeout_s=timeout_s, lifetime_s=lifetime_s, dlq=self.dlq, telemetry=self.tel)

    def _ws_api_url(self, ws_url: str) -> str:
        return ws_api_url(ws_url)

    def _order_reports(self, resp, action: str, source: str) -> list:
        report = parse.order_response(resp, self.registry, self.quotes, source)
        if action == "amend" and report.status is not None and not report.status.terminal:
            report.amended = True     # (a modify that cancels the order is reported as the cancel)
        return [report]

    def _duplicate(self, e: BinanceRefused) -> bool:
        return e.code == DUPLICATE_CLIENT_ORDER_ID

    # -- the engine's Venue ------------------------------------------------------------

    def place(self, o: Order) -> None:
        symbol = self.registry.venue_symbol(self.provider, o.instrument.id)
        try:
            params = order_params(o, symbol)
        except BadInput as e:
            self.emit(VenueRequestRefused(o.venue_client_order_id, "place", 0, f"not sent: {e}"))
            return
        self._submit_place(o, params)

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
        except UNREADABLE as e:
            self.emit(VenueAccountFailed(f"unreadable reply: {type(e).__name__}: {e}"))

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
        except UNREADABLE as e:
            self._on_bad(raw, f"{type(e).__name__}: {e}")
