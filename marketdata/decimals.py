"""Venue decimal strings -> exact int64 mantissas.

The parser is compiled with the book (marketdata/_book.c); this module names it:

    parse(text, scale) -> int          one string
    px = Decimals(scale); px(text)     one string at a fixed scale (Stream.px / Stream.sz)
    column(px, texts) -> np.ndarray    a column of strings at once (a run of bookTickers)

Semantics: those of `events.to_mantissa` restricted to what a venue sends for prices
and sizes: unsigned ASCII digits with at most one '.', digits past the scale must be
zeros ("0.50000000" at scale 2 is 50), the mantissa must fit int64; anything else
(None, "1e5", "-1", " 1", "0.001" at scale 2) raises DecimalError. A test checks it
against `events.to_mantissa` on arbitrary input (hypothesis).

It needs no cache: a parse is ~40 ns, about what a dict lookup of the string costs
(the Python parser it replaced cached per scale, and its size cache, which hardly
ever hits, was the memory growth the soak found).
"""

from __future__ import annotations

import numpy as np

from ._book import Decimals, parse

__all__ = ["Decimals", "column", "decimals_of", "parse"]


def column(dec: Decimals, texts) -> np.ndarray:
    """The mantissas of a sequence of strings at `dec`'s scale, as an int64 array."""
    return np.frombuffer(dec.many(texts), np.int64)


def decimals_of(text: str) -> int:
    """Digits after the point of a venue step string ("0.00010000" -> 4, "1" -> 0, "1e-05" -> 5)."""
    text = text.strip()
    if "e-" in text.lower():
        mant, _, exp = text.lower().partition("e-")
        return int(exp) + decimals_of(mant)
    frac = text.partition(".")[2].rstrip("0")
    return len(frac)
