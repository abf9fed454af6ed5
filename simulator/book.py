"""Price levels of one instrument on one simulated venue.

A level holds synthetic liquidity (an anonymous quantity) and a FIFO queue of
resting user orders; the published quantity is their sum. At one price the
synthetic quantity trades first (it is older by construction), then the user
orders in arrival order: price-time priority among user orders.

Every change of a published quantity is recorded until `flush()`, which is how
venues build their diff messages. Prices and quantities are int mantissas.
Single-threaded: only the simulator's event loop may call into a Book.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Iterable, Protocol

BID, ASK = 0, 1


class Resting(Protocol):
    """What the book needs of a user order: its unfilled quantity."""

    leaves: int


class Book:
    """Aggregated levels per side, with the user orders resting in them."""

    def __init__(self) -> None:
        self.synth: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.users: tuple[dict[int, deque], dict[int, deque]] = ({}, {})
        self.total: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.prices: tuple[list[int], list[int]] = ([], [])  # ascending, total > 0
        self._changed: dict[tuple[int, int], int] = {}  # (side, price) -> old total
        self._slot: tuple[int, int, int] = (-1, 0, 0)   # where remove_order last took one out

    # -- reading -----------------------------------------------------------
    def best(self, side: int) -> int | None:
        """Return the best price of a side, or None when it is empty."""
        prices = self.prices[side]
        if not prices:
            return None
        return prices[-1] if side == BID else prices[0]

    def top(self, side: int, n: int) -> list[tuple[int, int]]:
        """Return up to n (price, qty) levels of a side, best first."""
        prices, total = self.prices[side], self.total[side]
        if side == BID:
            sel = prices[: -n - 1 : -1] if n < len(prices) else prices[::-1]
        else:
            sel = prices[:n]
        return [(p, total[p]) for p in sel]

    def depth(self, side: int) -> int:
        """Return the number of levels on a side."""
        return len(self.prices[side])

    def user_qty(self, side: int, price: int) -> int:
        """Return the quantity of user orders resting at a price."""
        return self.total[side].get(price, 0) - self.synth[side].get(price, 0)

    # -- writing -----------------------------------------------------------
    def set_synth(self, side: int, price: int, qty: int) -> None:
        """Set the synthetic quantity at a price (0 removes it)."""
        synth = self.synth[side]
        old = synth.get(price, 0)
        if qty:
            synth[price] = qty
        elif old:
            del synth[price]
        self._set_total(side, price, self.total[side].get(price, 0) + qty - old)

    def add_order(self, side: int, price: int, order: Resting) -> None:
        """Queue a user order at the back of its price level."""
        self.users[side].setdefault(price, deque()).append(order)
        self._set_total(side, price, self.total[side].get(price, 0) + order.leaves)

    def remove_order(self, side: int, price: int, order: Resting) -> bool:
        """Take a user order out of its level; return False if it was not there."""
        queue = self.users[side].get(price)
        if not queue or order not in queue:
            return False
        self._slot = (side, price, queue.index(order))
        queue.remove(order)
        if not queue:
            del self.users[side][price]
        self._set_total(side, price, self.total[side][price] - order.leaves)
        return True

    def insert_order(self, side: int, price: int, order: Resting) -> None:
        """Put back the order `remove_order` just took out, at its old place in the queue
        (an amend that keeps priority: quantity down at the same price)."""
        slot = self._slot
        queue = self.users[side].setdefault(price, deque())
        queue.insert(slot[2] if slot[:2] == (side, price) else len(queue), order)
        self._set_total(side, price, self.total[side].get(price, 0) + order.leaves)

    def consume(self, side: int, price: int, qty: int) -> list[tuple[Resting | None, int]]:
        """Take up to qty from the level at price; return (maker, qty) fills.

        The maker is None for synthetic liquidity. User orders are reduced in
        place (`leaves`) and leave the queue when done.
        """
        fills: list[tuple[Resting | None, int]] = []
        synth = self.synth[side].get(price, 0)
        if synth and qty:
            take = min(synth, qty)
            self.set_synth(side, price, synth - take)
            fills.append((None, take))
            qty -= take
        queue = self.users[side].get(price)
        taken = 0
        while queue and qty:
            order = queue[0]
            take = min(order.leaves, qty)
            order.leaves -= take
            qty -= take
            taken += take
            fills.append((order, take))
            if not order.leaves:
                queue.popleft()
        if queue is not None and not queue:
            del self.users[side][price]
        if taken:
            self._set_total(side, price, self.total[side][price] - taken)
        return fills

    def flush(self) -> list[tuple[int, int, int, int]]:
        """Return and forget the changes since the last flush.

        Each change is (side, price, old_qty, new_qty); levels that came back to
        their old quantity are left out.
        """
        out = []
        for (side, price), old in self._changed.items():
            new = self.total[side].get(price, 0)
            if new != old:
                out.append((side, price, old, new))
        self._changed = {}
        return out

    def _set_total(self, side: int, price: int, new: int) -> None:
        total = self.total[side]
        old = total.get(price, 0)
        if new == old:
            return
        self._changed.setdefault((side, price), old)
        if new:
            total[price] = new
            if not old:
                insort(self.prices[side], price)
        else:
            del total[price]
            prices = self.prices[side]
            del prices[bisect_left(prices, price)]


def rewind(book: Book, history: Iterable[list[tuple[int, int, int, int]]]) -> tuple[dict, dict]:
    """Return the (bids, asks) {price: qty} the book had before the given flushes.

    `history` holds flush results, newest first; undoing them in that order
    rebuilds the older state exactly.
    """
    sides = (dict(book.total[BID]), dict(book.total[ASK]))
    for changes in history:
        for side, price, old, _new in reversed(changes):
            if old:
                sides[side][price] = old
            else:
                sides[side].pop(price, None)
    return sides
