"""The synthetic market: one shared mid per instrument, one book per venue.

Each canonical instrument has a random-walk mid (integer mantissa, its own
seeded generator). Every venue that lists the instrument keeps its own book
around that mid plus a small per-venue offset, so merged multi-venue views
stay coherent. One `Market.step()` advances every mid once and every book once;
the content of step k depends only on the seed and on what users did, never on
wall-clock timing.

A book step, in order:
  1. the market moves through resting liquidity: asks priced below the fair
     price and bids above it are taken (this is how resting user orders fill);
  2. with some probability a synthetic taker hits the best level (partial fills);
  3. a few levels are added, changed or removed near the top;
  4. the top is refilled when it thinned out, and the far end is trimmed so a
     side keeps at most `depth` levels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable

from .book import ASK, BID, Book, Resting
from .instruments import Instrument


@dataclass(slots=True)
class Trade:
    """One match between a taker and one maker (synthetic when maker is None)."""

    trade_id: int
    price: int
    qty: int
    taker_side: int           # BID: the buyer took liquidity
    maker: Resting | None
    taker: Resting | None
    group: int                # one aggressor event (for aggTrade ids)


class MidWalk:
    """Seeded random walk of one instrument's mid price (a mantissa)."""

    def __init__(self, inst: Instrument, rng: random.Random, sigma_ticks: float = 0.6):
        self.inst = inst
        self.rng = rng
        self.sigma = sigma_ticks
        self.mid = inst.start_price
        self._floor = max(inst.start_price // 10, 10 * inst.tick)

    def step(self) -> int:
        """Move the mid by a whole number of ticks and return it."""
        moved = round(self.rng.gauss(0.0, self.sigma))
        self.mid = max(self._floor, self.mid + moved * self.inst.tick)
        return self.mid


class BookDriver:
    """Synthetic liquidity and trade ids of one instrument on one venue."""

    def __init__(self, inst: Instrument, rng: random.Random, fair: int, depth: int = 400,
                 trade_prob: float = 0.35):
        self.inst = inst
        self.rng = rng
        self.depth = depth
        self.trade_prob = trade_prob
        self.book = Book()
        self.offset = 0            # per-venue noise around the shared mid, in ticks
        self.next_trade_id = 1 + rng.randrange(1_000_000, 9_000_000)
        self.next_group = 1 + rng.randrange(100_000, 900_000)
        self.fair = fair
        self._populate(fair)
        self.book.flush()          # the initial book is state, not a diff

    # -- public -------------------------------------------------------------
    def step(self, mid: int) -> list[Trade]:
        """Advance the book one step around the shared mid; return the trades."""
        rng, tick = self.rng, self.inst.tick
        if rng.random() < 0.1:
            self.offset = max(-2, min(2, self.offset + rng.choice((-1, 1))))
        fair = self.fair = mid + self.offset * tick
        trades = self._sweep_crossing(fair)
        if rng.random() < self.trade_prob:
            taker_side = BID if rng.random() < 0.5 else ASK
            qty = self._size(0.2)
            maker_side = ASK if taker_side == BID else BID
            best = self.book.best(maker_side)
            if best is not None:
                limit = best + 2 * tick if maker_side == ASK else best - 2 * tick
                trades += self.take(maker_side, limit, qty, None)
        for _ in range(1 + rng.randrange(3)):
            self._churn(fair)
        self._refill(fair)
        self._trim()
        return trades

    def take(self, maker_side: int, limit: int | None, qty: int,
             taker: Resting | None) -> list[Trade]:
        """Match qty against maker_side from the best price up to limit.

        None means no price limit (market order). The caller owns the taker;
        makers (user orders) are reduced in place by the book.
        """
        book, trades = self.book, []
        taker_side = BID if maker_side == ASK else ASK
        group = self.next_group
        self.next_group += 1
        while qty:
            price = book.best(maker_side)
            if price is None or (limit is not None and (
                    price > limit if maker_side == ASK else price < limit)):
                break
            for maker, got in book.consume(maker_side, price, qty):
                trades.append(Trade(self.next_trade_id, price, got, taker_side, maker, taker, group))
                self.next_trade_id += 1
                qty -= got
        return trades

    def available(self, maker_side: int, limit: int | None) -> int:
        """Return the quantity a taker could get on maker_side up to limit."""
        book, total = self.book, 0
        prices = book.prices[maker_side]
        ordered = prices if maker_side == ASK else reversed(prices)
        for price in ordered:
            if limit is not None and (price > limit if maker_side == ASK else price < limit):
                break
            total += book.total[maker_side][price]
        return total

    # -- private ------------------------------------------------------------
    def _size(self, scale: float = 1.0) -> int:
        lots = int(self.inst.level_lots * scale * self.rng.lognormvariate(0.0, 1.0))
        return max(self.inst.min_qty, max(1, lots) * self.inst.lot)

    def _populate(self, fair: int) -> None:
        tick, rng = self.inst.tick, self.rng
        for i in range(self.depth):
            if rng.random() < 0.85:
                self.book.set_synth(ASK, fair + (1 + i) * tick, self._size())
            if rng.random() < 0.85:
                self.book.set_synth(BID, fair - (1 + i) * tick, self._size())

    def _sweep_crossing(self, fair: int) -> list[Trade]:
        book, trades = self.book, []
        best = book.best(ASK)
        if best is not None and best < fair:
            trades += self.take(ASK, fair - self.inst.tick, 1 << 62, None)
        best = book.best(BID)
        if best is not None and best > fair:
            trades += self.take(BID, fair + self.inst.tick, 1 << 62, None)
        return trades

    def _churn(self, fair: int) -> None:
        rng, tick, book = self.rng, self.inst.tick, self.book
        side = BID if rng.random() < 0.5 else ASK
        dist = min(int(rng.expovariate(1 / 12.0)), self.depth)
        price = fair + (1 + dist) * tick if side == ASK else fair - (1 + dist) * tick
        if price <= 0:
            return
        if book.synth[side].get(price):
            if rng.random() < 0.7:
                book.set_synth(side, price, self._size())
            else:
                book.set_synth(side, price, 0)
        else:
            book.set_synth(side, price, self._size())

    def _refill(self, fair: int) -> None:
        tick, book = self.inst.tick, self.book
        best = book.best(ASK)
        if best is None or best > fair + 3 * tick:
            book.set_synth(ASK, fair + (1 + self.rng.randrange(2)) * tick, self._size())
        best = book.best(BID)
        if (best is None or best < fair - 3 * tick) and fair - tick > 0:
            book.set_synth(BID, max(tick, fair - (1 + self.rng.randrange(2)) * tick), self._size())

    def _trim(self) -> None:
        book = self.book
        for side in (BID, ASK):
            prices = book.prices[side]
            excess = len(prices) - self.depth
            if excess <= 0:
                continue
            far = prices[:excess] if side == BID else prices[-excess:]
            for price in list(far):
                if book.synth[side].get(price):
                    book.set_synth(side, price, 0)


class Market:
    """All mids and all venue books; stepped by the simulator's loop."""

    def __init__(self, instruments: Iterable[Instrument], venues: Iterable[str], seed: int,
                 depth: int = 400):
        self.instruments = {i.canonical: i for i in instruments}
        self.venues = list(venues)
        self.seed = seed
        self.steps = 0
        self.walks = {
            name: MidWalk(inst, random.Random(f"meltica-sim/{seed}/{name}"))
            for name, inst in self.instruments.items()
        }
        self.drivers: dict[tuple[str, str], BookDriver] = {}
        for venue in self.venues:
            for name, inst in self.instruments.items():
                rng = random.Random(f"meltica-sim/{seed}/{venue}/{name}")
                self.drivers[venue, name] = BookDriver(inst, rng, inst.start_price, depth)

    def driver(self, venue: str, canonical: str) -> BookDriver:
        """Return the book driver of one instrument on one venue."""
        return self.drivers[venue, canonical]

    def step(self) -> list[tuple[str, str, list[Trade]]]:
        """Advance every mid and every book once; return (venue, instrument, trades)."""
        self.steps += 1
        out = []
        for name, walk in self.walks.items():
            mid = walk.step()
            for venue in self.venues:
                out.append((venue, name, self.drivers[venue, name].step(mid)))
        return out
