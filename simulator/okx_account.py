"""The OKX simulator's account: one cash account of spot balances and net swap positions.

Spot fills move the base and the quote; open spot orders lock what they may spend (a buy:
price x open quantity of the quote; a sell: the open quantity of the base), which is
`frozenBal`. Swap fills move a net position (signed base quantity, cost at the average
entry price; a reduction realizes PnL into the quote balance); `upl` is marked at the
book's mid. Balances are kept at BAL_DEC decimals. Not modelled: fees (zero), margin.
Starting funds: USDT 1,000,000 and 1,000 of every other currency.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from .binance import now_ms
from .book import ASK, BID
from .instruments import Instrument, fmt, format_decimal
from .matching import Order

if TYPE_CHECKING:
    from .okx_orders import OkxOrders

BAL_DEC = 12
START = {"USDT": 1_000_000}
START_OTHER = 1_000


class InsufficientFunds(Exception):
    """A spot order the balance does not cover: the currency short."""

    def __init__(self, ccy: str):
        super().__init__(ccy)
        self.ccy = ccy


class Position:
    def __init__(self):
        self.qty = 0                 # signed base mantissa
        self.cost = Fraction(0)      # |qty| x average entry, at price + qty decimals


def dec(x: Fraction, decimals: int) -> str:
    """A rational as a decimal string, rounded half up at `decimals` (OKX-style, no trailing zeros)."""
    sign = -1 if x < 0 else 1
    m = (abs(x) * 10 ** decimals * 2 + 1) // 2
    return format_decimal(sign * int(m), decimals)


class Account:
    def __init__(self, orders: OkxOrders):
        self.orders = orders
        self.cash: dict[str, int] = {}
        for i in orders.venue.instruments:
            for ccy in (i.quote, i.base):
                self.cash.setdefault(ccy, START.get(ccy, START_OTHER) * 10 ** BAL_DEC)
        self.positions: dict[str, Position] = {}

    @staticmethod
    def quote_bal(inst: Instrument, quote: int) -> int:
        """A price x qty amount (at price + qty decimals) at BAL_DEC."""
        return quote * 10 ** (BAL_DEC - inst.price_decimals - inst.qty_decimals)

    def frozen(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.orders.engine.open_orders():
            if self.orders.meta[o.order_id].spec.kind != "SPOT":
                continue
            i = o.inst
            if o.side == BID:
                out[i.quote] = out.get(i.quote, 0) + self.quote_bal(i, o.price * o.leaves)
            else:
                out[i.base] = out.get(i.base, 0) + o.leaves * 10 ** (BAL_DEC - i.qty_decimals)
        return out

    def check_funds(self, inst: Instrument, side: int, qty: int, px: int) -> None:
        """Raise InsufficientFunds when a spot order of `qty` at `px` is not covered."""
        fz = self.frozen()
        if side == BID:
            if self.quote_bal(inst, px * qty) > self.cash.get(inst.quote, 0) - fz.get(inst.quote, 0):
                raise InsufficientFunds(inst.quote)
        elif qty * 10 ** (BAL_DEC - inst.qty_decimals) > self.cash.get(inst.base, 0) - fz.get(inst.base, 0):
            raise InsufficientFunds(inst.base)

    def details(self, ccys=None) -> list[dict]:
        """`details` of GET /api/v5/account/balance and of `account` pushes."""
        fz = self.frozen()
        ts = str(now_ms())
        return [{"ccy": c, "cashBal": format_decimal(v, BAL_DEC), "eq": format_decimal(v, BAL_DEC),
                 "availBal": format_decimal(v - fz.get(c, 0), BAL_DEC),
                 "frozenBal": format_decimal(fz.get(c, 0), BAL_DEC),
                 "ordFrozen": format_decimal(fz.get(c, 0), BAL_DEC), "uTime": ts}
                for c, v in sorted(self.cash.items()) if ccys is None or c in ccys]

    def position_json(self, inst_id: str) -> dict:
        """One position as GET /api/v5/account/positions and `positions` pushes state it."""
        spec, p = self.orders.specs[inst_id], self.positions[inst_id]
        i = spec.inst
        book = self.orders.venue.feeds[i.canonical].driver.book
        bid, ask = book.best(BID), book.best(ASK)
        pd, qd = i.price_decimals, i.qty_decimals
        mid = Fraction((bid or ask or 0) + (ask or bid or 0), 2 * 10 ** pd)       # prices as values
        avg = p.cost / abs(p.qty) / 10 ** pd if p.qty else Fraction(0)
        upl = (mid - avg) * p.qty / 10 ** qd if p.qty else Fraction(0)
        sz = fmt(abs(p.qty) // spec.step, spec.sz_dec)
        return {"instType": "SWAP", "instId": inst_id, "mgnMode": "cross", "posSide": "net",
                "pos": ("-" if p.qty < 0 else "") + sz if p.qty else "0", "ccy": i.quote,
                "avgPx": dec(avg, pd + 4) if p.qty else "", "upl": dec(upl, pd + qd),
                "markPx": dec(mid, pd + 1), "uTime": str(now_ms())}

    def open_positions(self, inst_id: str | None = None) -> list[dict]:
        return [self.position_json(k) for k, p in self.positions.items() if p.qty and inst_id in (None, "", k)]

    def settle(self, o: Order, qty: int, px: int) -> None:
        """Move balances or the position for one fill of `o`, and push what changed."""
        spec = self.orders.meta[o.order_id].spec
        private = self.orders.private
        i = o.inst
        sign = 1 if o.side == BID else -1
        if spec.kind == "SPOT":
            self.cash[i.base] += sign * qty * 10 ** (BAL_DEC - i.qty_decimals)
            self.cash[i.quote] -= sign * self.quote_bal(i, px * qty)
            private.push_account([i.base, i.quote])
            return
        p = self.positions.setdefault(spec.inst_id, Position())
        if p.qty == 0 or (p.qty > 0) == (sign > 0):
            p.cost += px * qty
            p.qty += sign * qty
        else:
            closed = min(qty, abs(p.qty))
            avg = p.cost / abs(p.qty)
            pnl = (px - avg) * closed * (1 if p.qty > 0 else -1)
            p.cost -= avg * closed
            p.qty += sign * closed
            self.cash[i.quote] += (pnl * 10 ** (BAL_DEC - i.price_decimals - i.qty_decimals)).__floor__()
            rest = qty - closed
            if rest:       # the position flips: the rest opens the other side at this price
                p.cost, p.qty = Fraction(px * rest), sign * rest
        private.push_positions(spec.inst_id)
        private.push_account([i.quote])
