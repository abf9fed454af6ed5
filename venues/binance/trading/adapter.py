"""The Binance spot order adapter: the engine's `Venue`, over worker threads (base.py: the
jobs, the workers, REST or WebSocket order entry, as the USD-M adapter has them). Outcomes
come back through `emit(event)` as venue events (execution/model.py):

    reply                                   event
    order object (2xx)                      VenueOrderReported (one per FULL fill, then status)
    4xx {"code", "msg"}                     VenueRequestRefused  (query -2013: VenueOrderNotFound;
                                            place -2010 "Duplicate order sent.": duplicate=True)
    connection could not be opened          VenueRequestRefused(code 0, "not sent: ...")
    timeout, reset, 5xx, -1006/-1007        VenueOutcomeUnknown (with the signed timestamp)

Every placement that left is also told to telemetry, after its outcome was emitted (off
the order's path): histogram `exec.order.send_us` (the engine's receipt of the order ->
its bytes handed to the venue connection) and event `exec.order.sent` (consumer id,
client order id, venue client order id, the exec reports' `trace_id`, and `created_ns`
/ `placed_ns` / `sent_ns` / `replied_ns`: the engine's receipt, the order persisted and
queued to a worker, right before the send, its reply read (0: none)), so a tick-to-trade
figure can be joined per order and the venue's round trip told from ours.

    openOrders list (2xx)                   VenueOpenOrdersListed (orders of unknown symbols left out)
    openOrders: anything else               VenueOpenOrdersFailed
    account (2xx)                           VenueAccountReported(full=True), balances only
    account: anything else                  VenueAccountFailed

User stream: `executionReport` -> VenueOrderReported; `outboundAccountPosition` ->
VenueAccountReported (the balances it names); `balanceUpdate` (a deposit, withdrawal or
transfer: a delta) -> the account is asked for again (`query_account`).

Amend (PROTOCOL.md, "Amend"): a quantity decrease at the same price goes in place, keeping
queue priority (PUT /api/v3/order/amend/keepPriority, newQty = the venue order's new
quantity, newClientOrderId = its own id, so the id stays); anything else is a
cancel-replace (POST /api/v3/order/cancelReplace, cancelReplaceMode STOP_ON_FAILURE: the
new order is placed only if the cancel succeeded) whose new order, with the remainder
(new quantity - filled) at the new price, takes the id execution derived for it
(`Order.amend_coid`). Replies: the amended order, or the cancelled order then the new
one, as VenueOrderReported (source "amend"); refusals (-2038, -2022 cancel failed, -2021
cancelled but the new order failed, filters) as VenueRequestRefused(action "amend").

Order entry (`order_entry`): "rest" (default), or "ws": place, cancel and query over the
WebSocket API (wsapi.py) while its session is up, REST while it is down (base.py). A
placement on the WebSocket does not hold its worker for the answer; the order's later
requests wait for that answer (`WsOrderEntry.settle`). The `exec.order.sent` event names
the `path`.
"""

from __future__ import annotations

import time

import orjson

from events import OrderType, PeerGone, Provider, Registry, TimeInForce, to_decimal
from venues.trading import Order, VenueAccountFailed, VenueOutcomeUnknown, VenueRequestRefused
from venues.workers import ask_until_up

from . import parse
from .base import UNREADABLE, BinanceAdapter
from .rest import BinanceRefused, BinanceRest, NotSent, duplicate_refusal
from .userstream import UserStream

SIDES = {1: "BUY", 2: "SELL"}
TIFS = {1: "GTC", 2: "IOC", 3: "FOK"}


def limit_params(o: Order) -> dict:
    """`type` and `timeInForce` of limit order `o`: post-only is its own order type on spot,
    LIMIT_MAKER, which takes no timeInForce (refused with -2010 "Order would immediately
    match and take." when it would)."""
    if o.tif is TimeInForce.POST_ONLY:
        return {"type": "LIMIT_MAKER"}
    return {"type": "LIMIT", "timeInForce": TIFS[int(o.tif)]}


def fetch_registry(rest_url: str, *, timeout_s: float = 2.0, deadline_s: float = 30.0,
                   registry: Registry | None = None) -> Registry:
    """Instruments from GET /api/v3/exchangeInfo, retrying until `deadline_s` (venue starting)."""
    return ask_until_up(BinanceRest(rest_url, timeout_s=timeout_s),
                        lambda rest: parse.load_registry(rest.exchange_info(), registry), deadline_s)


class BinanceSpotAdapter(BinanceAdapter):
    provider = Provider.BINANCE_SPOT
    fee_scale = parse.FEE_SCALE  # scale of the `fee` mantissas this adapter reports
    # Request weight (Binance spot REST): GET /api/v3/order 4 per order; GET /api/v3/openOrders
    # 6 for one symbol, 80 without a symbol (every symbol, and every order of the account).
    # Listing symbol by symbol costs 6 x symbols: less than 80 up to 13 symbols, so one
    # request without a symbol is cheaper from 14 symbols with open orders on.
    list_all_from = 14
    venue, workers_name = "binance-spot", "binance-rest"

    def _user_stream(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, *, recv_window_ms: int,
                     timeout_s: float, lifetime_s: float) -> UserStream:
        return UserStream(ws_url, api_key, api_secret, self._on_event, self._on_bad, self.emit,
                          recv_window_ms=recv_window_ms, timeout_s=timeout_s, lifetime_s=lifetime_s,
                          dlq=self.dlq, telemetry=self.tel)

    def _order_reports(self, resp, action: str, source: str) -> list:
        return parse.order_response(resp, self.registry, source)

    def _duplicate(self, e: BinanceRefused) -> bool:
        return duplicate_refusal(e.code, e.msg)

    # -- the engine's Venue ------------------------------------------------------------

    def place(self, o: Order) -> None:
        inst = o.instrument
        params = {"symbol": self.registry.venue_symbol(self.provider, inst.id), "side": SIDES[int(o.side)],
                  "type": o.order_type.name, "quantity": to_decimal(o.qty, inst.sz_scale),
                  "newClientOrderId": o.venue_client_order_id, "newOrderRespType": "FULL"}
        if o.order_type is OrderType.LIMIT:
            params.update(limit_params(o))
            params["price"] = to_decimal(o.price, inst.px_scale)
        self._submit_place(o, params)

    def amend(self, o: Order, qty: int, price: int) -> None:
        """Amend order `o` to total quantity `qty` at `price` (mantissas): in place when the
        quantity goes down at the same price, else by cancel-replace (see the module docstring)."""
        inst = o.instrument
        vs = self.registry.venue_symbol(self.provider, inst.id)
        vcoid = o.venue_client_order_id
        if price == o.price and qty < o.qty:
            # the venue order holds what is not in earlier venue orders (a cancel-replace's)
            new_qty = to_decimal(qty - o.base_filled, inst.sz_scale)
            self._submit(vcoid, self._amend_in_place, vcoid, vs, new_qty)
            return
        params = {"symbol": vs, "side": SIDES[int(o.side)], **limit_params(o), "cancelReplaceMode": "STOP_ON_FAILURE",
                  "quantity": to_decimal(qty - o.filled, inst.sz_scale),
                  "price": to_decimal(price, inst.px_scale), "cancelOrigClientOrderId": vcoid,
                  "newClientOrderId": o.amend_coid, "newOrderRespType": "FULL"}
        self._submit(vcoid, self._cancel_replace, vcoid, params)

    def query_account(self) -> None:
        """Balances by REST: VenueAccountReported(full=True) or VenueAccountFailed."""
        self._submit("account", self._query_account)

    # -- jobs (worker threads) ---------------------------------------------------------

    def _amend_in_place(self, rest: BinanceRest, vcoid: str, symbol: str, new_qty: str) -> None:
        self._amend(vcoid, lambda: rest.amend_keep_priority(symbol, vcoid, new_qty),
                    lambda resp: [parse.amend_response(resp, self.registry)])

    def _cancel_replace(self, rest: BinanceRest, vcoid: str, params: dict) -> None:
        self._amend(vcoid, lambda: rest.cancel_replace(**params),
                    lambda resp: parse.cancel_replace_response(resp, self.registry))

    def _amend(self, vcoid: str, send, read) -> None:
        """One amend request (`send()`), its reply read into venue reports (`read(resp)`)."""
        if self.ws_entry is not None:      # never before the answer of a placement sent on the WebSocket
            self.ws_entry.settle(vcoid)
        sent_ms = time.time_ns() // 1_000_000
        try:
            resp = send()
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "amend", e.code, e.msg))
            return
        except NotSent as e:
            self.emit(VenueRequestRefused(vcoid, "amend", 0, f"not sent: {e}"))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "amend", str(e), sent_ms))
            return
        self._read_reply(vcoid, "amend", resp, read)

    def _query_account(self, rest: BinanceRest) -> None:
        try:
            resp = rest.account()
        except BinanceRefused as e:
            self.emit(VenueAccountFailed(f"refused: {e.code} {e.msg}"))
            return
        except PeerGone as e:
            self.emit(VenueAccountFailed(str(e)))
            return
        try:
            ev = parse.account_snapshot(resp)
        except UNREADABLE as e:
            if self.dlq is not None:
                self.dlq.put("bad_account_reply", priority="high", raw=orjson.dumps(resp),
                             error=f"{type(e).__name__}: {e}")
            self.emit(VenueAccountFailed(f"unreadable reply: {type(e).__name__}: {e}"))
            return
        self.emit(ev)

    # -- the user stream (its thread) ------------------------------------------------------

    def _on_event(self, ev: dict, raw: bytes) -> None:
        kind = ev.get("e")
        try:
            if kind == "executionReport":
                self.emit(parse.execution_report(ev, self.registry))
            elif kind == "outboundAccountPosition":
                self.emit(parse.account_position(ev))
            elif kind == "balanceUpdate":
                parse.balance_update(ev)
                self.query_account()  # a delta: the whole account tells the new balance
            elif self.tel is not None:
                self.tel.inc("exec.stream.ignored", event=str(kind))
        except UNREADABLE as e:
            self._on_bad(raw, f"{type(e).__name__}: {e}")
