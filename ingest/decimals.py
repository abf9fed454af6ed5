"""Venue decimal strings -> int64 mantissas, exactly, each distinct string converted once.

`parse(text, scale)` has the semantics of `events.to_mantissa` restricted to what a
venue sends for prices and sizes (unsigned, ASCII digits, at most one '.'), and is
about three times faster; `Mantissas` caches it per scale, because a book sees the
same price strings over and over. A test checks `parse` against `events.to_mantissa`
on arbitrary input (hypothesis).

`Mantissas.many(texts)` converts a whole column (a snapshot's prices, a run of
bookTicker sizes): one C-level `map` over the cache, then the misses together: one
regular expression checks them all at once in their "\n"-joined text (exactly
`scale` decimals, as Binance pads them; or at most `scale`, as OKX sends them) and
C-level `map`s convert them (~0.2-0.4 us a string instead of ~0.7 us one by one);
anything else (a bad string among them) goes through `convert`, string by string.
"""

from __future__ import annotations

import re
from operator import itemgetter, methodcaller, mul

from events.errors import DecimalError
from events.fixed import INT64_MAX

_POW10 = [10**i for i in range(19)]
_PARTITION = methodcaller("partition", ".")
_FRACTION = itemgetter(2)


def parse(text, scale: int) -> int:
    """Return the exact mantissa of unsigned decimal `text` at `scale`; DecimalError if none."""
    if type(text) is not str:
        raise DecimalError(f"decimal must be a string: {text!r}")
    whole, _, frac = text.partition(".")
    digits = whole + frac
    if not (digits.isascii() and digits.isdigit()):
        raise DecimalError(f"not an unsigned decimal string: {text!r}")
    if len(frac) > scale:
        if frac[scale:].strip("0"):
            raise DecimalError(f"more precision than scale {scale}: {text!r}")
        frac = frac[:scale]
        digits = whole + frac
    m = int(digits or "0") * _POW10[scale - len(frac)]
    if m > INT64_MAX:
        raise DecimalError(f"too large for int64 at scale {scale}: {text!r}")
    return m


class Mantissas:
    """A bounded cache of `parse` at one scale. One owner thread.

    Hot loops bind `cache = m.cache` and call `cache.get(text)`, falling back to
    `m.convert(text)` on a miss (see ingest.book).
    """

    __slots__ = ("scale", "cache", "limit", "_exact", "_upto", "_factor")

    def __init__(self, scale: int, limit: int = 1 << 17):
        if not 0 <= scale <= 18:
            raise DecimalError(f"scale must be in 0..18: scale={scale}")
        self.scale = scale
        self.cache: dict[str, int] = {}
        self.limit = limit
        # "\n"-joined strings with exactly `scale` decimals / at most `scale`; at most
        # 18 - scale digits before the point, so every mantissa fits int64. re.ASCII: [0-9].
        w = 18 - scale
        one = f"[0-9]{{1,{w}}}\\.[0-9]{{{scale}}}" if scale else "[0-9]{1,18}"
        upto = f"[0-9]{{1,{w}}}(?:\\.[0-9]{{0,{scale}}})?"
        self._exact = re.compile(f"(?:{one}\n)*{one}", re.ASCII) if w else None
        self._upto = re.compile(f"(?:{upto}\n)*{upto}", re.ASCII) if w else None
        self._factor = [10 ** (scale - k) for k in range(scale + 1)]   # by decimals sent

    def many(self, texts) -> list[int]:
        """The mantissas of a sequence of strings, in order; DecimalError for a bad one."""
        try:
            out = list(map(self.cache.get, texts))
        except TypeError:                      # an unhashable value: say which
            out = [self(t) for t in texts]
        if None in out:
            self._misses(texts, out)
        return out

    def fresh(self, texts) -> list[int]:
        """The mantissas of strings that are mostly new (sizes): converted at once, not cached.

        A cache of sizes hardly ever hits (39% of the bookTicker sizes of a day of
        ETHUSDT are new) and grows to ~10 MB, slowing every lookup; so sizes skip it."""
        vals = self._together(texts) if len(texts) > 1 else None
        if vals is None:
            vals = self.many(texts)
        return vals

    def _misses(self, texts, out: list) -> None:
        idx = [i for i, v in enumerate(out) if v is None]
        miss = [texts[i] for i in idx]
        vals = self._together(miss) if len(miss) > 1 else None
        if vals is None:
            vals = [self(t) for t in miss]     # repeats in `miss` are cache hits by then
        else:
            cache = self.cache
            if len(cache) + len(vals) > self.limit:
                cache.clear()
            if len(vals) <= self.limit:
                cache.update(zip(miss, vals))
        for i, v in zip(idx, vals):
            out[i] = v

    def _together(self, miss: list):
        """Convert `miss` at once if every string has exactly `scale` decimals, or none; else None."""
        try:
            text = "\n".join(miss)
        except TypeError:
            return None
        if self._exact is None:
            return None
        if self._exact.fullmatch(text):
            parts = text.replace(".", "").split("\n")
            return list(map(int, parts)) if len(parts) == len(miss) else None
        if self._upto.fullmatch(text):         # OKX: "30249.4", "452", "0.5000"
            parts = text.replace(".", "").split("\n")
            if len(parts) != len(miss):        # one "\n" inside a string would add a part
                return None
            decimals = map(len, map(_FRACTION, map(_PARTITION, miss)))
            return list(map(mul, map(int, parts), map(self._factor.__getitem__, decimals)))
        return None

    def convert(self, text) -> int:
        """Convert and remember `text` (clearing the cache when it reaches its bound)."""
        scale = self.scale
        m = -1
        if type(text) is str and len(text) > scale and text[-scale - 1] == "." and scale:
            digits = text.replace(".", "", 1)      # fastest path: exactly `scale` decimals
            if digits.isdigit() and digits.isascii():
                m = int(digits)
                if m > INT64_MAX:
                    raise DecimalError(f"too large for int64 at scale {scale}: {text!r}")
        if m < 0 and type(text) is str and text.isascii():  # fast path: at most `scale` decimals
            whole, _, frac = text.partition(".")
            k = len(frac)
            if k <= scale:
                digits = whole + frac
                if digits.isdigit():
                    m = int(digits) * _POW10[scale - k]
                    if m > INT64_MAX:
                        raise DecimalError(f"too large for int64 at scale {scale}: {text!r}")
        if m < 0:
            m = parse(text, scale)                 # trailing zeros past the scale, or an error
        cache = self.cache
        if len(cache) >= self.limit:
            cache.clear()
        cache[text] = m
        return m

    def __call__(self, text) -> int:
        m = self.cache.get(text) if type(text) is str else None
        return self.convert(text) if m is None else m


def decimals_of(text: str) -> int:
    """Digits after the point of a venue step string ("0.00010000" -> 4, "1" -> 0, "1e-05" -> 5)."""
    text = text.strip()
    if "e-" in text.lower():
        mant, _, exp = text.lower().partition("e-")
        return int(exp) + decimals_of(mant)
    frac = text.partition(".")[2].rstrip("0")
    return len(frac)
