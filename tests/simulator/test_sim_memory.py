"""The simulator's memory stays flat however long its market runs.

A soak once saw its private memory climb for minutes: the decimal-string memo kept
every price, size and running 24h volume it had ever formatted (up to 262144
entries, ~75 MiB). These tests step the market synchronously: no sockets, no sleeps.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from simulator import binance, okx
from simulator.binance import BinanceVenue
from simulator.book import BID
from simulator.instruments import default_instruments, fmt
from simulator.market import Market
from simulator.matching import Order
from simulator.okx import OkxVenue
from simulator.userstream import quote8

pytestmark = pytest.mark.timeout(60)
VENUES = ["binance-spot", "binance-usdm", "okx"]
BINANCE_STREAMS = ("@depth@100ms", "@depth", "@trade", "@aggTrade", "@bookTicker")
OKX_CHANNELS = ("books", "trades", "tickers")


class Sink:
    """A subscriber that reads every frame at once and keeps none."""

    wrap = True

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.frames = 0

    def push(self, _key: str | None, _frame: bytes) -> None:
        self.frames += 1


def _venues_listened_to(instruments: int, seed: int = 1) -> tuple[Market, dict, Sink]:
    """A market and its three venues, every stream of every instrument subscribed."""
    insts = default_instruments(instruments)
    market = Market(insts, VENUES, seed)
    venues: dict = {}
    for name in VENUES:
        drivers = {i.canonical: market.driver(name, i.canonical) for i in insts}
        venues[name] = OkxVenue(insts, drivers) if name == okx.NAME else BinanceVenue(name, insts, drivers)
    sink = Sink()
    for inst in insts:
        for name in ("binance-spot", "binance-usdm"):
            for suffix in BINANCE_STREAMS:
                venues[name].hub.subscribe(sink, inst.stream_symbol + suffix)
        for channel in OKX_CHANNELS:
            venues[okx.NAME].hub.subscribe(sink, f"{channel}:{inst.canonical}")
    return market, venues, sink


def _step(market: Market, venues: dict, steps: int) -> None:
    for _ in range(steps):
        for name, canonical, trades in market.step():
            venues[name].on_step(canonical, trades)


def test_after_the_warm_up_market_steps_leave_nothing_behind():
    # The warm-up fills every bounded structure (the diff history, the format memo);
    # after it a step may replace what they hold but not add to it: a memo too big to
    # fill in a few thousand steps fails here too. getallocatedblocks counts every
    # object of up to 512 bytes: a leak per step or per message always brings some.
    market, venues, sink = _venues_listened_to(instruments=2)
    _step(market, venues, max(binance._HISTORY, okx._HISTORY) + 1000)
    gc.collect()
    before, frames_before = sys.getallocatedblocks(), sink.frames
    steps = 5000
    _step(market, venues, steps)
    gc.collect()
    grown = sys.getallocatedblocks() - before
    assert sink.frames - frames_before > 10 * steps          # the streams really were published
    assert grown < steps, f"{grown} blocks stayed after {steps} steps"  # was ~24 per step


def test_format_memo_holds_a_few_mib_however_many_values_it_meets():
    fmt.cache_clear()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for mantissa in range(100_000):   # a random walk and lognormal sizes meet this many
            fmt(10**9 + mantissa, 2, 8)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        fmt.cache_clear()
    assert held < 8 << 20, f"the memo holds {held / 2**20:.1f} MiB"


def test_okx_ticker_running_volumes_are_formatted_without_the_memo():
    _market, venues, _sink = _venues_listened_to(instruments=1)
    venue = venues[okx.NAME]
    feed = venue.feeds["BTC-USDT"]
    venue.ticker(feed)                    # memoizes its prices and sizes
    held = fmt.cache_info().currsize
    for _ in range(100):
        feed.vol += 3
        feed.vol_ccy += 3 * feed.inst.start_price
        venue.ticker(feed)
    assert fmt.cache_info().currsize == held


def test_cumulative_quote_of_an_execution_report_is_formatted_without_the_memo():
    inst = default_instruments(1)[0]
    order = Order(1, "c1", inst, BID, "LIMIT", "GTC", 100, inst.start_price, 0)
    quote8(order, 1)
    held = fmt.cache_info().currsize
    for quote in range(2, 102):
        quote8(order, quote * 12_345)
    assert fmt.cache_info().currsize == held
