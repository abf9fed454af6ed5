"""Instruments: canonical symbol <-> instrument id, venue symbols, price and size scales.

Canonical symbols are `BASE-QUOTE` for spot, `BASE-QUOTE-PERP` for perpetual swaps and
`BASE-QUOTE-YYMMDD` for dated futures (cryptofeed's convention). The instrument id is
derived from the canonical symbol (CRC-32, 31 bits), so every process of a run agrees
on ids without a registry service; a collision is refused when it is registered.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from .errors import BadInput, UnknownInstrument
from .kinds import Provider

DEFAULT_PX_SCALE = 8
DEFAULT_SZ_SCALE = 8


def instrument_id(symbol: str) -> int:
    """The id of canonical `symbol`: a stable 31-bit hash, never 0."""
    return (zlib.crc32(symbol.encode("ascii")) & 0x7FFFFFFF) or 1


def split_symbol(symbol: str) -> tuple[str, str, str]:
    """Return (base, quote, suffix) of a canonical symbol; suffix '' for spot."""
    parts = symbol.split("-")
    if len(parts) not in (2, 3) or not all(p and p.isascii() and p.isalnum() and p.upper() == p
                                           for p in parts):
        raise BadInput(f"not a canonical symbol (BASE-QUOTE[-PERP|-YYMMDD]): {symbol!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument. `tick` and `lot` are mantissas at `px_scale` / `sz_scale`."""

    symbol: str
    px_scale: int = DEFAULT_PX_SCALE
    sz_scale: int = DEFAULT_SZ_SCALE
    tick: int = 1
    lot: int = 1
    min_notional: int = 0  # mantissa at px_scale + sz_scale; 0: none
    id: int = field(default=0)

    def __post_init__(self):
        split_symbol(self.symbol)
        if not (0 <= self.px_scale <= 18 and 0 <= self.sz_scale <= 18):
            raise BadInput(f"scales must be in 0..18: {self.symbol} px_scale={self.px_scale} "
                           f"sz_scale={self.sz_scale}")
        if self.tick <= 0 or self.lot <= 0:
            raise BadInput(f"tick and lot must be positive: {self.symbol} tick={self.tick} lot={self.lot}")
        object.__setattr__(self, "id", instrument_id(self.symbol))

    @property
    def base(self) -> str:
        return split_symbol(self.symbol)[0]

    @property
    def quote(self) -> str:
        return split_symbol(self.symbol)[1]


class Registry:
    """The instruments of a run, by id, by canonical symbol and by (provider, venue symbol)."""

    def __init__(self, instruments=()):
        self._by_id: dict[int, Instrument] = {}
        self._by_symbol: dict[str, Instrument] = {}
        self._by_venue: dict[tuple[int, str], Instrument] = {}
        self._venue_symbol: dict[tuple[int, int], str] = {}
        for inst in instruments:
            self.add(inst)

    def add(self, inst: Instrument) -> Instrument:
        """Register `inst` (idempotent for an equal instrument); refuse id collisions."""
        known = self._by_id.get(inst.id)
        if known is not None:
            if known.symbol != inst.symbol:
                raise BadInput(f"instrument id collision: {inst.symbol!r} and {known.symbol!r} -> {inst.id}")
            if known != inst:
                raise BadInput(f"instrument {inst.symbol!r} registered twice with other scales: "
                               f"{known} vs {inst}")
            return known
        self._by_id[inst.id] = inst
        self._by_symbol[inst.symbol] = inst
        return inst

    def map_venue(self, provider: Provider | int, venue_symbol: str, symbol: str) -> Instrument:
        """Say that `venue_symbol` on `provider` is canonical `symbol` (registered first)."""
        inst = self.by_symbol(symbol)
        self._by_venue[(int(provider), venue_symbol)] = inst
        self._venue_symbol[(int(provider), inst.id)] = venue_symbol
        return inst

    def by_id(self, iid: int) -> Instrument:
        try:
            return self._by_id[iid]
        except KeyError:
            raise UnknownInstrument(f"unknown instrument id: {iid}") from None

    def by_symbol(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise UnknownInstrument(f"unknown instrument: {symbol!r}") from None

    def by_venue(self, provider: Provider | int, venue_symbol: str) -> Instrument:
        try:
            return self._by_venue[(int(provider), venue_symbol)]
        except KeyError:
            raise UnknownInstrument(
                f"unknown venue symbol {venue_symbol!r} on {Provider(int(provider)).slug}") from None

    def venue_symbol(self, provider: Provider | int, iid: int) -> str:
        try:
            return self._venue_symbol[(int(provider), iid)]
        except KeyError:
            raise UnknownInstrument(
                f"instrument {iid} has no symbol on {Provider(int(provider)).slug}") from None

    def venue_symbols(self, provider: Provider | int) -> dict[str, Instrument]:
        p = int(provider)
        return {vs: inst for (pp, vs), inst in self._by_venue.items() if pp == p}

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._by_symbol

    def __iter__(self):
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
