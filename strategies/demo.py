"""Demo strategy: plain and merged subscriptions, counts, and cross-venue spreads.

    MELTICA_RUN=demo python -m strategies.demo --symbols BTC-USDT,ETH-USDT \
        --merged BTC-USDT --providers binance-spot,okx --seconds 30

Subscribes to every kind of each of `--symbols` from `--providers`, and to the merged
windows of each of `--merged` over those providers; with `--orders` (the default) it
switches its trading on and, with `--order-venues`, places small orders on each of
those venues (`venue` or `venue:SYMBOL`; the symbol defaults to `--order-symbol`, as
`-PERP` on a perpetual-only venue such as binance-usdm). Defaults come from the [strategy] table of `--config`.
`Demo` is a pure function of the records it is given: it counts them, keeps each
provider's top of book, and turns every MERGED window whose best bid on one venue is
above the best ask on another into a `CrossVenue` signal. The loop prints the signals
and a count line each second. With trading on, one `Trader` per order venue
(strategies/trader.py) places small orders there through execution, and the loop feeds
each the execution reports of this consumer on its venue.

The market-data loop never waits for execution (which answers an order only after
persisting it): orders and cancels go out with the order client's `_nowait` calls,
and their answers are taken, without waiting, by `poll_replies` on each turn.
Telemetry: `strategy.orders.sent`, `strategy.orders.submitted{status}` (one per order,
counted at its answer: accepted, duplicate, rejected, suppressed or unknown),
`strategy.orders.late_answer{cmd,status}`, `strategy.cancels.sent`,
`strategy.orders.no_answer{cmd}`, `strategy.exec_reports`, gauge `strategy.orders.pending`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np

from consumer import Consumer
from consumer.orders import OrderClient
from events import Kind, PeerGone, Provider, to_decimal
from core import config
from core.telemetry import Telemetry

from .trader import Cancel, PlaceLimit, Trader


@dataclass(frozen=True)
class CrossVenue:
    """Venue `buy_on` asks less than venue `sell_on` bids, in one merge window."""

    merge_id: int
    buy_on: str
    ask_px: str
    sell_on: str
    bid_px: str


class Demo:
    """Counts per kind and top of book per provider; signals from merged windows."""

    def __init__(self):
        self.counts = {k.name.lower(): 0 for k in Kind}
        self.top: dict[str, tuple[str, str]] = {}  # provider slug -> (bid, ask) as decimals

    def on_batch(self, batch: np.ndarray) -> list[CrossVenue]:
        signals = []
        for rec in batch:
            kind = Kind(int(rec["kind"]))
            self.counts[kind.name.lower()] += 1
            if kind is Kind.BOOK:
                b = rec["book"]
                if b["n_bids"] and b["n_asks"]:
                    self.top[_slug(rec["provider"])] = (
                        to_decimal(b["bid_px"][0], int(b["px_scale"])),
                        to_decimal(b["ask_px"][0], int(b["px_scale"])))
            elif kind is Kind.TICKER:
                t = rec["ticker"]
                self.top[_slug(rec["provider"])] = (to_decimal(t["bid_px"], int(t["px_scale"])),
                                                     to_decimal(t["ask_px"], int(t["px_scale"])))
            elif kind is Kind.MERGED:
                signals += self._cross(rec["merged"])
        return signals

    @staticmethod
    def _cross(m) -> list[CrossVenue]:
        legs = m["legs"][: int(m["n_legs"])]
        bid = legs[np.argmax(legs["bid_px"])]
        asks = legs["ask_px"]
        live = asks > 0
        if not live.any():
            return []
        ask = legs[np.flatnonzero(live)[np.argmin(asks[live])]]
        if bid["bid_px"] <= ask["ask_px"] or bid["provider"] == ask["provider"]:
            return []
        scale = int(m["px_scale"])
        return [CrossVenue(int(m["merge_id"]), _slug(ask["provider"]),
                           to_decimal(ask["ask_px"], scale), _slug(bid["provider"]),
                           to_decimal(bid["bid_px"], scale))]


def _slug(p) -> str:
    try:
        return Provider(int(p)).slug
    except ValueError:
        return str(int(p))


def parser() -> argparse.ArgumentParser:
    """The flags; `python -m meltica run` checks the [strategy] table against them."""
    ap = argparse.ArgumentParser(prog="python -m strategies.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="demo", help="consumer name (its ring: consumer.<name>.md)")
    ap.add_argument("--symbols", default="BTC-USDT", help="comma-separated canonical symbols")
    ap.add_argument("--merged", default="",
                    help="comma-separated symbols to merge across every provider (needs two)")
    ap.add_argument("--providers", default="binance-spot,okx", help="comma-separated slugs")
    ap.add_argument("--orders", action=argparse.BooleanOptionalAction, default=True,
                    help="switch trading on at start (dispatch forwards it to execution)")
    ap.add_argument("--order-symbol", default="BTC-USDT", help="the symbol the traders order (canonical)")
    ap.add_argument("--order-venues", default="binance-spot",
                    help="comma-separated venues to order on, each `venue` or `venue:SYMBOL`")
    ap.add_argument("--order-qty", default="0.001", help="quantity of each order (decimal string)")
    ap.add_argument("--order-interval-s", type=float, default=2.0, help="seconds between two orders")
    ap.add_argument("--seconds", type=float, default=0, help="run this long (0: until Ctrl-C)")
    return ap


def main(argv=None) -> int:
    a = config.parse_args(parser(), sys.argv[1:] if argv is None else argv, "strategy")
    providers = [p for p in a.providers.split(",") if p]
    signal.signal(signal.SIGTERM, _exit_once)  # stop like Ctrl-C: unregister, close
    demo = Demo()
    tel = Telemetry(f"strategy.{a.name}")
    with _register(a.name) as c:
        for symbol in (s for s in a.symbols.split(",") if s):
            print(f"subscribe {symbol}: {dict(c.subscribe(symbol, providers=providers))}", flush=True)
        for symbol in (s for s in a.merged.split(",") if s):
            if len(providers) >= 2:
                res = c.merged_subscribe(symbol, providers)
                print(f"merged_subscribe {symbol}: {dict(res)}", flush=True)
        traders: dict[int, Trader] = {}
        orders = None
        if a.orders:
            print(f"set_trading_mode: {dict(c.set_trading_mode(True))}", flush=True)
            stamp = f"{time.time_ns() // 1_000_000:x}"
            for venue, symbol in order_venues(a.order_venues, a.order_symbol):
                if symbol not in a.symbols.split(",") or venue not in providers:  # the trader needs its book
                    print(f"subscribe {symbol} on {venue}: {dict(c.subscribe(symbol, providers=[venue]))}", flush=True)
                p = Provider.from_slug(venue)
                traders[int(p)] = Trader(symbol, a.order_qty, provider=p, interval_ns=int(a.order_interval_s * 1e9),
                                         prefix=f"{a.name}-{p.value}-{stamp}")
            orders = OrderClient(c)
            orders.hello_nowait()  # learn our consumer id; reports are read once it is known
        end = time.monotonic() + a.seconds if a.seconds else float("inf")
        next_line = time.monotonic() + 1
        try:
            while time.monotonic() < end:
                batch = c.events(1024, timeout_s=0.2)
                for cross in demo.on_batch(batch):
                    print(cross, flush=True)
                if orders is not None:
                    _trade(traders, orders, batch, tel)
                if time.monotonic() >= next_line:
                    next_line += 1
                    if orders is not None:
                        tel.gauge("strategy.orders.pending", len(orders.pending))
                    print(f"counts={demo.counts} top={demo.top} trading={c.trading_enabled}",
                          flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            if orders is not None:
                orders.close()
            tel.close()
    return 0


def _exit_once(*_) -> None:
    """Leave through the normal cleanup; further SIGTERMs must not interrupt it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def _register(name: str, patience_s: float = 60.0) -> Consumer:
    """Register with dispatch, waiting for it to come up (started together, or restarting)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return Consumer(name)
        except PeerGone:
            if time.monotonic() > deadline:
                raise
            print("dispatch not answering yet; retrying", flush=True)


PERPETUAL_ONLY = ("binance-usdm",)  # venues whose canonical symbols all end in -PERP (of those we trade)


def order_venues(spec: str, default_symbol: str) -> list[tuple[str, str]]:
    """(venue, canonical symbol) of each `venue` or `venue:SYMBOL` of `spec`; a venue that
    lists only perpetuals (binance-usdm) trades `default_symbol` + "-PERP"."""
    out = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        venue, _, symbol = item.partition(":")
        if not symbol:
            symbol = default_symbol + "-PERP" if venue in PERPETUAL_ONLY and not default_symbol.endswith("-PERP") \
                else default_symbol
        Provider.from_slug(venue)  # ValueError names a venue that does not exist
        out.append((venue, symbol))
    return out


def _trade(traders: dict[int, Trader], orders: OrderClient, batch, tel: Telemetry) -> None:
    """Feed each trader market data, its exec reports and the answers to its requests; send
    what they decide. Never waits for execution: answers come on a later turn."""
    for trader in traders.values():
        trader.on_batch(batch)
    for answer in orders.poll_replies():
        _on_answer(_trader_of(traders, answer["client_order_id"]), orders, answer, tel)
    if orders.consumer_id is not None:
        for rec in orders.poll_reports(256):
            trader = traders.get(int(rec["provider"]))
            if trader is not None:
                trader.on_report(rec)
            tel.inc("strategy.exec_reports")
    for trader in traders.values():
        for cmd in trader.decide(time.monotonic_ns()):
            if isinstance(cmd, PlaceLimit):
                orders.submit_limit_nowait(cmd.client_order_id, cmd.symbol, cmd.side, cmd.qty, cmd.price,
                                           tif=cmd.tif, venue=cmd.venue)
                tel.inc("strategy.orders.sent")
            elif isinstance(cmd, Cancel):
                orders.cancel_nowait(cmd.client_order_id)
                tel.inc("strategy.cancels.sent")


def _trader_of(traders: dict[int, Trader], client_order_id: str | None) -> Trader | None:
    """The trader whose orders carry this client order id's prefix (None: hello, or not ours)."""
    for trader in traders.values():
        if client_order_id and client_order_id.startswith(trader.prefix + "-"):
            return trader
    return None


def _on_answer(trader: Trader | None, orders: OrderClient, a: dict, tel: Telemetry) -> None:
    """Apply execution's answer (or the order client's "unknown" / "suppressed") to one request."""
    cmd, status, coid = a["cmd"], a["status"], a["client_order_id"]
    if status == "unknown":
        tel.inc("strategy.orders.no_answer", cmd=cmd)
    if cmd == "hello":
        if status in ("unknown", "suppressed"):  # execution not up yet, or restarting: ask again
            orders.hello_nowait()
        return
    if a["late"]:  # the real answer after "unknown": the order's fate is settled below as usual
        tel.inc("strategy.orders.late_answer", cmd=cmd, status=status)
    elif cmd == "new_order":
        tel.inc("strategy.orders.submitted", status=status)
    if trader is None:
        return
    never_placed = a.get("code") == "unknown_order"  # a query or cancel of an order execution never got
    if cmd == "new_order":
        if status == "unknown":  # it may exist: ask (placing it again later would be stale)
            orders.query_nowait(coid)
        elif status not in ("accepted", "duplicate"):
            trader.forget(coid)
            print(f"order {coid} not accepted: {a}", flush=True)
    elif cmd == "query" and never_placed:
        trader.forget(coid)
    elif cmd == "cancel":
        if never_placed:
            trader.forget(coid)
        elif status in ("unknown", "suppressed"):
            trader.cancel_unanswered(coid)  # the trader cancels it again on a later turn


if __name__ == "__main__":
    sys.exit(main())
