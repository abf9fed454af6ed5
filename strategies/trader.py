"""The demo's order policy: small orders on one venue, a pure function of what it sees
(the demo runs one Trader per venue it trades).

Every `interval_ns`, while it knows the venue's best bid for `symbol`, it alternates:

    a GTC limit buy at the best bid (rests on the book; cancelled after `max_age_ns`)
    an IOC limit sell at the best bid (marketable: fills at once, or expires)

Commands are returned, not sent: the strategy's loop sends them through the order
client (which refuses while the trading switch is off), without waiting for the
answers. Execution reports come back through `on_report` and keep the open-order set
true; `forget` drops an order that was never placed, `cancel_unanswered` lets a cancel
that got no answer be sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events import ExecStatus, Kind, Provider, instrument_id, to_decimal


@dataclass(frozen=True)
class PlaceLimit:
    client_order_id: str
    symbol: str
    side: str
    qty: str
    price: str
    tif: str
    venue: str = "binance-spot"


@dataclass(frozen=True)
class Cancel:
    client_order_id: str


class Trader:
    def __init__(self, symbol: str, qty: str, *, provider: Provider = Provider.BINANCE_SPOT,
                 interval_ns: int = 2_000_000_000, max_age_ns: int = 5_000_000_000, prefix: str = "demo"):
        self.symbol = symbol
        self.instrument = instrument_id(symbol)
        self.provider = int(provider)
        self.venue = Provider(provider).slug
        self.qty = qty
        self.interval_ns = interval_ns
        self.max_age_ns = max_age_ns
        self.prefix = prefix
        self.best_bid: str | None = None
        self.open: dict[str, int] = {}  # client order id -> placed at (ns)
        self.placed = 0
        self.reports = 0
        self.filled = 0
        self._next_ns = 0
        self._cancelling: set[str] = set()

    def on_batch(self, batch: np.ndarray) -> None:
        """Follow the venue's best bid for the symbol (books and tickers)."""
        mine = batch[(batch["provider"] == self.provider) & (batch["instrument"] == self.instrument)]
        for rec in mine[::-1]:
            kind = int(rec["kind"])
            if kind == Kind.BOOK and rec["book"]["n_bids"]:
                self.best_bid = to_decimal(rec["book"]["bid_px"][0], int(rec["book"]["px_scale"]))
                return
            if kind == Kind.TICKER and rec["ticker"]["bid_px"]:
                self.best_bid = to_decimal(rec["ticker"]["bid_px"], int(rec["ticker"]["px_scale"]))
                return

    def on_report(self, rec) -> None:
        """Apply one EXEC_REPORT record of ours."""
        x = rec["exec"]
        cid = bytes(x["client_order_id"]).rstrip(b"\0").decode()
        self.reports += 1
        status = ExecStatus(int(x["status"]))
        if status in (ExecStatus.PARTIAL, ExecStatus.FILLED):
            self.filled += 1
        if status.terminal:
            self.open.pop(cid, None)
            self._cancelling.discard(cid)

    def decide(self, now_ns: int) -> list:
        """The commands to send now."""
        out: list = [Cancel(cid) for cid, at in self.open.items()
                     if now_ns - at >= self.max_age_ns and cid not in self._cancelling]
        self._cancelling.update(c.client_order_id for c in out)
        if self.best_bid is None or now_ns < self._next_ns:
            return out
        self._next_ns = now_ns + self.interval_ns
        self.placed += 1
        cid = f"{self.prefix}-{self.placed}"
        if self.placed % 2:
            out.append(PlaceLimit(cid, self.symbol, "buy", self.qty, self.best_bid, "GTC", self.venue))
            self.open[cid] = now_ns
        else:
            out.append(PlaceLimit(cid, self.symbol, "sell", self.qty, self.best_bid, "IOC", self.venue))
        return out

    def forget(self, client_order_id: str) -> None:
        """The order was never accepted (rejected or suppressed): stop tracking it."""
        self.open.pop(client_order_id, None)
        self._cancelling.discard(client_order_id)

    def cancel_unanswered(self, client_order_id: str) -> None:
        """The cancel got no answer: `decide` sends it again (a second cancel is harmless)."""
        self._cancelling.discard(client_order_id)
