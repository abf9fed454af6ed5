"""Instrument definitions and exact decimal formatting for the simulator.

Prices and quantities are integer mantissas with a per-instrument number of
decimals; they become strings only at the wire, in the style of each venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# Entries of the `fmt` memo. A random-walking market keeps meeting new prices and level
# sizes (10 instruments at 110 steps/s: 255k distinct ones in 5 min), so a memo big enough
# to hold them all grows for as long as the market runs. Measured on that load: 16384
# entries (~4.7 MiB) answer 97% of the calls; 262144 entries (~75 MiB) answered 99%.
FMT_CACHE_SIZE = 1 << 14


@dataclass(frozen=True)
class Instrument:
    """One tradable pair, the same on every simulated venue.

    `price_decimals` / `qty_decimals` give the scale of the mantissas; `tick` and
    `lot` are mantissa steps (1 means 10**-decimals).
    """

    canonical: str          # "BTC-USDT": also the OKX instId
    base: str
    quote: str
    price_decimals: int
    qty_decimals: int
    start_price: int        # mantissa
    tick: int = 1
    lot: int = 1
    min_qty: int = 1        # mantissa
    min_notional: int = 5   # whole quote units
    level_lots: int = 1000  # median size of a synthetic level, in lots

    @property
    def binance_symbol(self) -> str:
        """Return the Binance symbol, e.g. "BTCUSDT"."""
        return self.base + self.quote

    @property
    def stream_symbol(self) -> str:
        """Return the lower-case symbol used in Binance stream names."""
        return (self.base + self.quote).lower()

    def tick_str(self, fixed: int | None = None) -> str:
        """Return the tick size as a decimal string (fixed decimals when given)."""
        return fmt(self.tick, self.price_decimals, fixed)

    def lot_str(self, fixed: int | None = None) -> str:
        """Return the lot step as a decimal string (fixed decimals when given)."""
        return fmt(self.lot, self.qty_decimals, fixed)


_DEFAULTS = (
    # canonical, price dec, qty dec, start price mantissa, level lots
    ("BTC-USDT", 2, 5, 6_500_000, 5_000),
    ("ETH-USDT", 2, 4, 350_000, 2_000),
    ("SOL-USDT", 2, 3, 15_000, 2_000),
    ("BNB-USDT", 2, 3, 60_000, 500),
    ("XRP-USDT", 4, 1, 5_000, 5_000),
    ("DOGE-USDT", 5, 0, 15_000, 20_000),
    ("ADA-USDT", 4, 1, 4_500, 5_000),
    ("LTC-USDT", 2, 3, 8_000, 2_000),
    ("AVAX-USDT", 2, 2, 3_000, 500),
    ("LINK-USDT", 2, 2, 1_500, 1_000),
    ("DOT-USDT", 3, 2, 6_000, 1_000),
    ("TRX-USDT", 5, 1, 12_000, 20_000),
)


def default_instruments(count: int) -> list[Instrument]:
    """Return `count` instruments: the well-known pairs first, then SYNnnn-USDT."""
    if count < 1:
        raise ValueError(f"instrument count must be positive: count={count}")
    out = []
    for i in range(count):
        if i < len(_DEFAULTS):
            name, pd, qd, px, lots = _DEFAULTS[i]
        else:
            name, pd, qd, px, lots = f"SYN{i:04d}-USDT", 2, 3, 100_00, 1_000
        base, quote = name.split("-")
        out.append(Instrument(name, base, quote, pd, qd, px, level_lots=lots))
    return out


def format_decimal(mantissa: int, decimals: int, fixed: int | None = None) -> str:
    """Format a mantissa as a decimal string, without memoizing it.

    For running totals (24h volume, an order's cumulative quote): each value
    appears once, so a memo would only fill up with them. With `fixed`, pad to
    exactly that many decimals (Binance spot: 8); without it, drop trailing
    zeros and a bare point (OKX style: "30316", "0.0012").
    """
    if fixed is not None:
        if fixed < decimals:
            raise ValueError(f"cannot show {decimals} decimals in {fixed}")
        return _fixed(mantissa * 10 ** (fixed - decimals), fixed)
    text = _fixed(mantissa, decimals)
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text


@lru_cache(maxsize=FMT_CACHE_SIZE)
def fmt(mantissa: int, decimals: int, fixed: int | None = None) -> str:
    """Format a price or a level size, memoized (they repeat); see format_decimal."""
    return format_decimal(mantissa, decimals, fixed)


def _fixed(mantissa: int, decimals: int) -> str:
    sign = "-" if mantissa < 0 else ""
    mantissa = abs(mantissa)
    if decimals == 0:
        return f"{sign}{mantissa}"
    scale = 10 ** decimals
    return f"{sign}{mantissa // scale}.{mantissa % scale:0{decimals}d}"


def parse(text: str, decimals: int) -> int:
    """Parse a plain decimal string into a mantissa at `decimals`, exactly.

    Raise ValueError on anything but digits with an optional point, or on more
    significant decimals than the scale holds ("0.123" at 2 decimals).
    """
    if not isinstance(text, str) or not text or len(text) > 40:
        raise ValueError(f"not a decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or (_ and not frac):
        raise ValueError(f"not a decimal string: {text!r}")
    extra = frac[decimals:]
    if extra.strip("0"):
        raise ValueError(f"too many decimals for scale {decimals}: {text!r}")
    frac = frac[:decimals].ljust(decimals, "0")
    return int(whole) * 10 ** decimals + (int(frac) if frac else 0)


def resolve(instruments: dict[str, Instrument], name: str) -> Instrument | None:
    """Find an instrument by canonical name, Binance symbol or stream symbol."""
    if name in instruments:
        return instruments[name]
    key = name.upper().replace("-", "").replace("_", "")
    for inst in instruments.values():
        if inst.binance_symbol == key:
            return inst
    return None
