"""Binance spot payloads -> venue events and instruments. Venue enums map through tables;
an unknown value is a BadInput, never a silent default.

An `executionReport` (the event of the WebSocket API user data stream, unwrapped):

    {"e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW",
     "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", ...,
     "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000",
     "z": "0.00000000", "L": "0.00000000", "n": "0", "N": null, "T": 1499405658657,
     "t": -1, "I": 8641984, "w": true, "m": false, "M": false, "O": 1499405658657,
     "Z": "0.00000000", "Y": "0.00000000", "Q": "0.00000000", "W": 1499405658657, "V": "NONE"}

`c` is the client order id of the request that caused the event: for a cancel, that is
the cancel's own id, and the order's id is in `C`; both are passed on and the engine
takes the one it knows. `X` (order status) drives the lifecycle, `z`/`Z` (cumulative
filled quantity / quote) the fills, `t`/`l`/`L` the trade itself; `q`/`p` are the
order's quantity and price as they are now, and `x` "REPLACED" says an amend
(keepPriority) changed them (enums.md, Execution types: "The order has been amended").
"""

from __future__ import annotations

from events import BadInput, ExecStatus, Instrument, Provider, Registry, to_mantissa

from venues.trading import Balance, VenueAccountReported, VenueOrderReported

STATUS: dict[str, ExecStatus | None] = {
    "NEW": ExecStatus.ACK,
    "PARTIALLY_FILLED": ExecStatus.PARTIAL,
    "FILLED": ExecStatus.FILLED,
    "CANCELED": ExecStatus.CANCELLED,
    "PENDING_CANCEL": None,       # no lifecycle step: the cancel's outcome follows
    "REJECTED": ExecStatus.REJECTED,
    "EXPIRED": ExecStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExecStatus.EXPIRED,  # self-trade prevention
    "PENDING_NEW": None,          # order lists: the order is not in the book yet
}
SIDE = {"BUY": "buy", "SELL": "sell"}
PROVIDER = Provider.BINANCE_SPOT


def status_of(text: str) -> ExecStatus | None:
    try:
        return STATUS[text]
    except KeyError:
        raise BadInput(f"unknown Binance order status: {text!r}") from None


def _inst(registry: Registry, symbol: str) -> Instrument:
    return registry.by_venue(PROVIDER, symbol)


def _ms_to_ns(ms) -> int:
    return int(ms) * 1_000_000 if ms else 0


def _reason(r) -> str:
    return "" if r in (None, "", "NONE") else str(r)


def execution_report(ev: dict, registry: Registry) -> VenueOrderReported:
    """Parse one `executionReport` event (see the module docstring)."""
    if ev.get("e") != "executionReport":
        raise BadInput(f"not an executionReport: e={ev.get('e')!r}")
    inst = _inst(registry, ev["s"])
    ps, ss = inst.px_scale, inst.sz_scale
    ids = tuple(x for x in (ev.get("c"), ev.get("C")) if x)
    return VenueOrderReported(
        client_order_ids=ids, status=status_of(ev["X"]), venue_order_id=int(ev["i"]),
        cum_qty=to_mantissa(ev["z"], ss), cum_quote=to_mantissa(ev["Z"], ps + ss),
        last_qty=to_mantissa(ev["l"], ss), last_px=to_mantissa(ev["L"], ps),
        trade_id=int(ev.get("t", -1)), fee=_fee(ev.get("n")), fee_asset=ev.get("N") or "",
        update_id=int(ev.get("I") or 0), reason=_reason(ev.get("r")), event_ts_ns=_ms_to_ns(ev.get("E")),
        source="stream", price=_amount(ev.get("p"), ps), qty=_amount(ev.get("q"), ss),
        amended=ev.get("x") == "REPLACED")


def _amount(text, scale: int) -> int:
    """An order's price or quantity at `scale`; 0 when absent (an ACK-type reply)."""
    return to_mantissa(text, scale) if text else 0


FEE_SCALE = 8  # Binance states commissions with 8 decimals


def _fee(text) -> int:
    """A commission at FEE_SCALE; 0 when absent or not exact there."""
    if not text:
        return 0
    try:
        return to_mantissa(text, FEE_SCALE)
    except BadInput:
        return 0


def order_response(resp: dict, registry: Registry, source: str = "rest") -> list[VenueOrderReported]:
    """Parse an order object (POST/DELETE/GET /api/v3/order, openOrders) into reports.

    A FULL `POST` reply carries `fills`: they become one report per trade (an ACK first,
    like the stream), so the reports do not depend on which of REST and stream is first.

        {"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
         "transactTime": 1507725176595, "price": "0.00000000", "origQty": "10.00000000",
         "executedQty": "10.00000000", "cummulativeQuoteQty": "10.00000000", "status": "FILLED",
         "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
         "fills": [{"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
                    "commissionAsset": "USDT", "tradeId": 56}, ...]}
    """
    inst = _inst(registry, resp["symbol"])
    ps, ss = inst.px_scale, inst.sz_scale
    ids = tuple(x for x in (resp.get("origClientOrderId"), resp.get("clientOrderId")) if x)
    oid = int(resp["orderId"])
    ts = _ms_to_ns(resp.get("transactTime") or resp.get("updateTime") or resp.get("time"))
    status = status_of(resp["status"])
    out: list[VenueOrderReported] = []
    fills = resp.get("fills") or []
    if fills:
        out.append(VenueOrderReported(ids, ExecStatus.ACK, oid, 0, 0, event_ts_ns=ts, source=source))
        cum = quote = 0
        for f in fills:
            q, p = to_mantissa(f["qty"], ss), to_mantissa(f["price"], ps)
            cum += q
            quote += q * p
            out.append(VenueOrderReported(ids, ExecStatus.PARTIAL, oid, cum, quote, last_qty=q, last_px=p,
                                          trade_id=int(f.get("tradeId", -1)), fee=_fee(f.get("commission")),
                                          fee_asset=f.get("commissionAsset") or "", event_ts_ns=ts,
                                          source=source))
    out.append(VenueOrderReported(ids, status, oid, to_mantissa(resp["executedQty"], ss),
                                  to_mantissa(resp["cummulativeQuoteQty"], ps + ss), event_ts_ns=ts,
                                  source=source, price=_amount(resp.get("price"), ps),
                                  qty=_amount(resp.get("origQty"), ss)))
    return out


def amend_response(resp: dict, registry: Registry) -> VenueOrderReported:
    """Parse the reply of PUT /api/v3/order/amend/keepPriority (rest-api.md, "Order Amend Keep
    Priority"): the order as amended, `qty` its new quantity. Note `cumulativeQuoteQty` here
    (the order replies spell it `cummulativeQuoteQty`).

        {"transactTime": 1741926410255, "executionId": 75,
         "amendedOrder": {"symbol": "BTCUSDT", "orderId": 33, "orderListId": -1,
                          "origClientOrderId": "5xrgbMyg6z36NzBn2pbT8H",
                          "clientOrderId": "PFaq6hIHxqFENGfdtn4J6Q", "price": "6.00000000",
                          "qty": "5.00000000", "executedQty": "0.00000000",
                          "preventedQty": "0.00000000", "quoteOrderQty": "0.00000000",
                          "cumulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
                          "type": "LIMIT", "side": "SELL", "workingTime": 1741926410242,
                          "selfTradePreventionMode": "NONE"}}
    """
    o = resp["amendedOrder"]
    inst = _inst(registry, o["symbol"])
    ps, ss = inst.px_scale, inst.sz_scale
    ids = tuple(x for x in (o.get("clientOrderId"), o.get("origClientOrderId")) if x)
    return VenueOrderReported(ids, status_of(o["status"]), int(o["orderId"]), to_mantissa(o["executedQty"], ss),
                              to_mantissa(o["cumulativeQuoteQty"], ps + ss),
                              event_ts_ns=_ms_to_ns(resp.get("transactTime")), source="amend",
                              price=_amount(o.get("price"), ps), qty=to_mantissa(o["qty"], ss), amended=True)


def cancel_replace_response(resp: dict, registry: Registry) -> list[VenueOrderReported]:
    """Parse a successful POST /api/v3/order/cancelReplace (rest-api.md, "Cancel an Existing
    Order and Send a New Order"): the cancelled order's report first, then the new order's
    (a FULL order reply), so the engine sees the old venue order end before the new one.

        {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
         "cancelResponse": {"symbol": "BTCUSDT", "origClientOrderId": "DnLo3vTAQcjha43lAZhZ0y",
                            "orderId": 9, "clientOrderId": "osxN3JXAtJvKvCqGeMWMVR", ...,
                            "status": "CANCELED", ...},
         "newOrderResponse": {"symbol": "BTCUSDT", "orderId": 10, "clientOrderId": "wOceeeOzNORyLiQfw7jd8S",
                              "price": "0.02000000", "origQty": "0.040000", "status": "NEW", "fills": [], ...}}
    """
    if resp.get("cancelResult") != "SUCCESS" or resp.get("newOrderResult") != "SUCCESS":
        raise BadInput(f"cancelReplace reply is not a success: cancelResult={resp.get('cancelResult')!r}, "
                       f"newOrderResult={resp.get('newOrderResult')!r}")
    return (order_response(resp["cancelResponse"], registry, "amend")
            + order_response(resp["newOrderResponse"], registry, "amend"))


def _decimals(text: str) -> int:
    """Decimals of a step like "0.01000000" -> 2 ("1.00000000" -> 0)."""
    whole, _, frac = text.partition(".")
    return len(frac.rstrip("0"))


def instruments(info: dict, symbol_of, notional_of) -> list[tuple[Instrument, str]]:
    """(Instrument, venue symbol) for every TRADING symbol of an exchangeInfo reply (spot and
    USD-M alike): scales are the decimals of PRICE_FILTER.tickSize and LOT_SIZE.stepSize, tick
    and lot those steps as mantissas; the canonical symbol is `symbol_of(symbol entry)`, the
    min notional `notional_of(filters by filterType)`."""
    out = []
    for s in info.get("symbols", []):
        if s.get("status", "TRADING") != "TRADING":
            continue
        filters = {f["filterType"]: f for f in s.get("filters", [])}
        try:
            tick = filters["PRICE_FILTER"]["tickSize"]
            step = filters["LOT_SIZE"]["stepSize"]
            ps, ss = _decimals(tick), _decimals(step)
            inst = Instrument(symbol_of(s), px_scale=ps, sz_scale=ss, tick=to_mantissa(tick, ps),
                              lot=to_mantissa(step, ss), min_notional=to_mantissa(notional_of(filters), ps + ss))
        except (KeyError, BadInput):
            continue  # a symbol we cannot trade exactly (no filters, odd asset name): skip it
        out.append((inst, s["symbol"]))
    return out


def register(pairs: list[tuple[Instrument, str]], provider: Provider, registry: Registry | None) -> Registry:
    """Register (instrument, venue symbol) `pairs` of `provider` in `registry` (None: a new one)."""
    registry = registry or Registry()
    for inst, venue_symbol in pairs:
        registry.add(inst)
        registry.map_venue(provider, venue_symbol, inst.symbol)
    return registry


def exchange_info(info: dict) -> list[tuple[Instrument, str]]:
    """(Instrument, venue symbol) for every TRADING symbol of `GET /api/v3/exchangeInfo`
    (`instruments`): "BTC-USDT" from baseAsset and quoteAsset; min_notional from NOTIONAL or
    MIN_NOTIONAL."""
    return instruments(info, lambda s: f"{s['baseAsset']}-{s['quoteAsset']}",
                       lambda f: (f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}).get("minNotional", "0"))


def load_registry(info: dict, registry: Registry | None = None) -> Registry:
    """Register every tradable symbol of an exchangeInfo reply."""
    return register(exchange_info(info), PROVIDER, registry)


# -- the account (balances) ------------------------------------------------------------

BALANCE_SCALE = 8  # Binance spot states balances with 8 decimals ("4723846.89208129")


def _balance(asset, free, locked) -> Balance:
    if not isinstance(asset, str) or not asset:
        raise BadInput(f"balance without an asset: {asset!r}")
    return Balance(asset, to_mantissa(free, BALANCE_SCALE), to_mantissa(locked, BALANCE_SCALE), BALANCE_SCALE)


def account_position(ev: dict) -> VenueAccountReported:
    """Parse one `outboundAccountPosition` event (user-data-stream.md "Account Update"): the
    assets the event that changed the balance may have changed, free and locked absolute.

        {"e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
         "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]}

    `u` ("time of last account update") orders it against a REST snapshot's `updateTime`.
    """
    if ev.get("e") != "outboundAccountPosition":
        raise BadInput(f"not an outboundAccountPosition: e={ev.get('e')!r}")
    balances = tuple(_balance(b["a"], b["f"], b["l"]) for b in ev["B"])
    return VenueAccountReported(balances, full=False, event_ts_ns=_ms_to_ns(ev.get("u") or ev.get("E")),
                                source="stream")


def balance_update(ev: dict) -> tuple[str, str]:
    """Check one `balanceUpdate` event (user-data-stream.md "Balance Update": deposits,
    withdrawals, transfers between accounts) and return (asset, delta). It carries a delta
    only, so the adapter asks for the account again instead of applying it.

        {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000",
         "T": 1573200697068}
    """
    if ev.get("e") != "balanceUpdate":
        raise BadInput(f"not a balanceUpdate: e={ev.get('e')!r}")
    to_mantissa(ev["d"], BALANCE_SCALE)  # a well-formed decimal, or BadInput
    return str(ev["a"]), str(ev["d"])


def account_snapshot(resp: dict) -> VenueAccountReported:
    """Parse `GET /api/v3/account` (rest-api.md "Account information (USER_DATA)") into a
    full snapshot: with `omitZeroBalances=true` an asset it lacks is zero.

        {"makerCommission": 15, ..., "updateTime": 123456789, "accountType": "SPOT",
         "balances": [{"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
                      {"asset": "LTC", "free": "4763368.68006011", "locked": "0.00000000"}],
         "permissions": ["SPOT"], "uid": 354937868}
    """
    balances = tuple(_balance(b["asset"], b["free"], b["locked"]) for b in resp["balances"])
    return VenueAccountReported(balances, full=True, event_ts_ns=_ms_to_ns(resp.get("updateTime")), source="rest")
