"""Binance USD-M payloads -> venue events and instruments. Venue enums map through tables;
an unknown value is a BadInput, never a silent default.

An `ORDER_TRADE_UPDATE` (the user stream on /private; Binance's "Event: Order Update"):

    {"e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
     "o": {"s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "TRAILING_STOP_MARKET", "f": "GTC",
           "q": "0.001", "p": "0", "ap": "0", "sp": "7103.04", "x": "NEW", "X": "NEW",
           "i": 8886774, "l": "0", "z": "0", "L": "0", "N": "USDT", "n": "0",
           "T": 1568879465650, "t": 0, "b": "0", "a": "9.91", "m": false, "R": false,
           "wt": "CONTRACT_PRICE", "ot": "TRAILING_STOP_MARKET", "ps": "LONG", "cp": false,
           "AP": "7476.89", "cr": "5.0", "pP": false, "si": 0, "ss": 0, "rp": "0",
           "V": "EXPIRE_TAKER", "pm": "OPPONENT", "gtd": 0, "er": "0"}}

It carries no cumulative quote (spot's `Z`): only `z` (cumulative quantity), `l`/`L` (this
trade) and `ap` (average price, rounded by the venue). `Quotes` derives the cumulative
quote: the sum of the fills (exact) where this adapter saw every fill since the last exact
figure (a REST reply's `cumQuote`, or an earlier sum); else `ap x z` where that product is
representable at px_scale + sz_scale, else rounded half-even there (the venue gives nothing
finer; counted in `Quotes.inexact`). `x` AMENDMENT
(a modify) is reported with `amended` and the new `p` / `q`.

An `ACCOUNT_UPDATE` ("Event: Balance and Position Update"):

    {"e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
     "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678",
                                "bc": "50.12345678"}],
           "P": [{"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "bep": "0", "cr": "200",
                  "up": "0", "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"}]}}

Balances: USD-M reports a wallet balance per asset (`wb`; REST `balance`), not free and
locked (margin is not split so): `Balance.free` is the wallet balance, `locked` 0, at
BALANCE_SCALE. Positions: one-way mode only (`ps` BOTH; LONG / SHORT legs of hedge mode are
left out), `pa` at the instrument's sz_scale (base units), `ep` at its px_scale (an average:
rounded half-even where finer), `up` at BALANCE_SCALE in the margin asset.
"""

from __future__ import annotations

import threading

from events import BadInput, ExecStatus, Instrument, Provider, Registry, UnknownInstrument, to_mantissa
from venues.trading import Balance, Position, VenueAccountReported, VenueOrderReported

from ...markets import MARKETS, to_canonical
from ..parse import instruments, register

PROVIDER = Provider.BINANCE_USDM
FEE_SCALE = 8       # commissions, as spot
BALANCE_SCALE = 8   # wallet balances and unrealized PnL ("122624.12345678")
STATUS: dict[str, ExecStatus | None] = {
    "NEW": ExecStatus.ACK,
    "PARTIALLY_FILLED": ExecStatus.PARTIAL,
    "FILLED": ExecStatus.FILLED,
    "CANCELED": ExecStatus.CANCELLED,
    "REJECTED": ExecStatus.REJECTED,
    "EXPIRED": ExecStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExecStatus.EXPIRED,   # self-trade prevention
}
EXEC_TYPES = frozenset({"NEW", "CANCELED", "CALCULATED", "EXPIRED", "TRADE", "AMENDMENT"})


def status_of(text: str) -> ExecStatus | None:
    try:
        return STATUS[text]
    except KeyError:
        raise BadInput(f"unknown Binance USD-M order status: {text!r}") from None


def _ms_to_ns(ms) -> int:
    return int(ms) * 1_000_000 if ms else 0


def _fee(text) -> int:
    """A commission at FEE_SCALE; 0 when absent or not exact there."""
    if not text:
        return 0
    try:
        return to_mantissa(text, FEE_SCALE)
    except BadInput:
        return 0


def scaled(text: str, scale: int) -> tuple[int, bool]:
    """(mantissa of decimal `text` at `scale`, exact): rounded half-even where finer."""
    try:
        return to_mantissa(text, scale), True
    except BadInput:
        pass
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("+-").partition(".")
    if not (whole + frac).isdigit():
        raise BadInput(f"not a decimal string: {text!r}")
    digits = int(whole or "0") * 10 ** len(frac) + int(frac or "0")
    q, r = divmod(digits, 10 ** (len(frac) - scale))
    half = 10 ** (len(frac) - scale) // 2
    if r > half or (r == half and q % 2):
        q += 1
    return sign * q, False


def avg_times(ap: str, qty: int, px_scale: int) -> tuple[int, bool]:
    """(`ap` x `qty` at px_scale + sz_scale, exact): `qty` is a mantissa at sz_scale; the product
    is exact when it is representable there, else rounded half-even."""
    whole, _, frac = ap.partition(".")
    frac = frac.rstrip("0")
    if not (whole or "0").isdigit() or (frac and not frac.isdigit()):
        raise BadInput(f"not an average price: {ap!r}")
    product = (int(whole or "0") * 10 ** len(frac) + int(frac or "0")) * qty     # at len(frac) + sz_scale
    if len(frac) <= px_scale:
        return product * 10 ** (px_scale - len(frac)), True
    q, r = divmod(product, 10 ** (len(frac) - px_scale))
    half = 10 ** (len(frac) - px_scale) // 2
    if r > half or (r == half and q % 2):
        q += 1
    return q, r == 0


class Quotes:
    """Cumulative quote per order (by venue client order id), from exact figures: REST
    replies (`learn`) and the fills of the stream since (see the module docstring).
    Thread-safe: REST workers and the stream thread share it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cum: dict[str, tuple[int, int]] = {}   # client order id -> (cum qty, cum quote)
        self.inexact = 0                             # figures rounded from `ap`

    def learn(self, cid: str, cum_qty: int, cum_quote: int, done: bool) -> None:
        with self._lock:
            if done:
                self._cum.pop(cid, None)
            elif cum_qty >= self._cum.get(cid, (0, 0))[0]:
                self._cum[cid] = (cum_qty, cum_quote)

    def on_stream(self, cid: str, z: int, last_qty: int, last_px: int, ap: str, px_scale: int,
                  done: bool) -> int:
        """The cumulative quote (at px_scale + sz_scale) of a stream report of order `cid`."""
        with self._lock:
            q0, quote0 = self._cum.get(cid, (0, 0))
            if z == q0:
                quote = quote0
            elif last_qty and z == q0 + last_qty:
                quote = quote0 + last_qty * last_px          # every fill seen: exact
            else:
                quote, exact = avg_times(ap, z, px_scale)
                if not exact:
                    self.inexact += 1
            if done:
                self._cum.pop(cid, None)
            elif z > q0:
                self._cum[cid] = (z, quote)
            return quote

    def __len__(self) -> int:
        return len(self._cum)


def _inst(registry: Registry, symbol: str) -> Instrument:
    return registry.by_venue(PROVIDER, symbol)


def order_trade_update(ev: dict, registry: Registry, quotes: Quotes) -> VenueOrderReported:
    """Parse one `ORDER_TRADE_UPDATE` event (see the module docstring)."""
    if ev.get("e") != "ORDER_TRADE_UPDATE":
        raise BadInput(f"not an ORDER_TRADE_UPDATE: e={ev.get('e')!r}")
    o = ev["o"]
    x = o["x"]
    if x not in EXEC_TYPES:
        raise BadInput(f"unknown Binance USD-M execution type: {x!r}")
    inst = _inst(registry, o["s"])
    ps, ss = inst.px_scale, inst.sz_scale
    status = status_of(o["X"])
    cid = o["c"]
    z = to_mantissa(o["z"], ss)
    traded = x == "TRADE"
    last_qty = to_mantissa(o["l"], ss) if traded else 0
    last_px = to_mantissa(o["L"], ps) if traded else 0
    quote = quotes.on_stream(cid, z, last_qty, last_px, o.get("ap") or "0", ps,
                             status is not None and status.terminal)
    price = to_mantissa(o["p"], ps) if o.get("p") else 0
    reason = str(o.get("er") or "") if status in (ExecStatus.EXPIRED, ExecStatus.REJECTED) else ""
    return VenueOrderReported(
        client_order_ids=(cid,), status=status, venue_order_id=int(o["i"]), cum_qty=z, cum_quote=quote,
        last_qty=last_qty, last_px=last_px, trade_id=int(o.get("t", -1)) if traded else -1,
        fee=_fee(o.get("n")) if traded else 0, fee_asset=(o.get("N") or "") if traded else "",
        reason="" if reason == "0" else reason, event_ts_ns=_ms_to_ns(ev.get("E")), source="stream",
        price=price, qty=to_mantissa(o["q"], ss), amended=x == "AMENDMENT")


def order_response(resp: dict, registry: Registry, quotes: Quotes, source: str = "rest",
                   amended: bool = False) -> VenueOrderReported:
    """Parse an order object (POST / PUT / DELETE / GET /fapi/v1/order, openOrders):

        {"clientOrderId": "testOrder", "cumQty": "0", "cumQuote": "0", "executedQty": "0",
         "orderId": 22542179, "avgPrice": "0.00000", "origQty": "10", "price": "0",
         "reduceOnly": false, "side": "BUY", "positionSide": "SHORT", "status": "NEW",
         "stopPrice": "9300", "closePosition": false, "symbol": "BTCUSDT", "timeInForce": "GTD",
         "type": "TRAILING_STOP_MARKET", "origType": "TRAILING_STOP_MARKET",
         "updateTime": 1566818724722, "workingType": "CONTRACT_PRICE", "priceProtect": false,
         "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 1693207680000}

    `cumQuote` is exact: it is taught to `quotes` for the stream reports that follow.
    """
    inst = _inst(registry, resp["symbol"])
    ps, ss = inst.px_scale, inst.sz_scale
    cid = resp["clientOrderId"]
    status = status_of(resp["status"])
    cum_qty = to_mantissa(resp["executedQty"], ss)
    cum_quote = to_mantissa(resp.get("cumQuote") or "0", ps + ss)
    quotes.learn(cid, cum_qty, cum_quote, status is not None and status.terminal)
    price = resp.get("price")
    return VenueOrderReported(
        client_order_ids=(cid,), status=status, venue_order_id=int(resp["orderId"]), cum_qty=cum_qty,
        cum_quote=cum_quote, event_ts_ns=_ms_to_ns(resp.get("updateTime") or resp.get("time")), source=source,
        price=to_mantissa(price, ps) if price else 0, qty=to_mantissa(resp["origQty"], ss), amended=amended)


# -- account -------------------------------------------------------------------------------

def _position(p: dict, registry: Registry) -> Position | None:
    """One position entry (stream `P` item or REST positionRisk item), or None when left out."""
    rest = "positionAmt" in p
    if (p.get("positionSide") if rest else p.get("ps")) not in ("BOTH", None):
        return None                    # a hedge-mode leg: not supported
    try:
        inst = _inst(registry, p["symbol"] if rest else p["s"])
    except UnknownInstrument:
        return None                    # a symbol we do not trade
    size = to_mantissa(p["positionAmt"] if rest else p["pa"], inst.sz_scale)
    entry, _ = scaled(p["entryPrice"] if rest else p["ep"], inst.px_scale)
    pnl, _ = scaled(p["unRealizedProfit"] if rest else p["up"], BALANCE_SCALE)
    return Position(inst, size, entry, pnl, BALANCE_SCALE, p.get("marginAsset") or inst.quote)


def account_update(ev: dict, registry: Registry) -> VenueAccountReported:
    """Parse one `ACCOUNT_UPDATE` event (see the module docstring): what changed."""
    if ev.get("e") != "ACCOUNT_UPDATE":
        raise BadInput(f"not an ACCOUNT_UPDATE: e={ev.get('e')!r}")
    a = ev["a"]
    balances = tuple(Balance(b["a"], to_mantissa(b["wb"], BALANCE_SCALE), 0, BALANCE_SCALE) for b in a.get("B") or ())
    positions = tuple(p for p in (_position(x, registry) for x in a.get("P") or ()) if p is not None)
    return VenueAccountReported(balances, positions, full=False, event_ts_ns=_ms_to_ns(ev.get("E")), source="stream")


def account(balances: list, positions: list, registry: Registry) -> VenueAccountReported:
    """The whole account from GET /fapi/v3/balance and GET /fapi/v3/positionRisk:

        [{"accountAlias": "SgsR", "asset": "USDT", "balance": "122607.35137903",
          "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000",
          "availableBalance": "23.72469206", "maxWithdrawAmount": "23.72469206",
          "marginAvailable": true, "updateTime": 1617939110373}]
        [{"symbol": "ADAUSDT", "positionSide": "BOTH", "positionAmt": "30", "entryPrice": "0.385",
          "breakEvenPrice": "0.385077", "markPrice": "0.41047590", "unRealizedProfit": "0.76427700",
          "liquidationPrice": "0", "isolatedMargin": "0", "notional": "12.31427700",
          "marginAsset": "USDT", ..., "updateTime": 1720736417660}]
    """
    bal = tuple(Balance(b["asset"], to_mantissa(b["balance"], BALANCE_SCALE), 0, BALANCE_SCALE) for b in balances)
    pos = tuple(p for p in (_position(x, registry) for x in positions) if p is not None and p.size)
    return VenueAccountReported(bal, pos, full=True, source="rest")


# -- instruments ---------------------------------------------------------------------------

def exchange_info(info: dict) -> list[tuple[Instrument, str]]:
    """(Instrument, venue symbol) for every TRADING symbol of `GET /fapi/v1/exchangeInfo`
    (spot's `instruments`; quantities in the base asset): perpetuals as "BTC-USDT-PERP",
    dated contracts as "BTC-USDT-250926"; min_notional from MIN_NOTIONAL.notional."""
    market = MARKETS[PROVIDER]
    return instruments(info, lambda s: to_canonical(market, s["symbol"], s["baseAsset"], s["quoteAsset"]),
                       lambda f: (f.get("MIN_NOTIONAL") or {}).get("notional", "0"))


def load_registry(info: dict, registry: Registry | None = None) -> Registry:
    """Register every tradable symbol of a USD-M exchangeInfo reply."""
    return register(exchange_info(info), PROVIDER, registry)
