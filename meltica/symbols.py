"""Instrument id -> canonical symbol, for displays: ids are CRC-32s of symbols, so a
known symbol list inverts them."""

from __future__ import annotations

from functools import lru_cache

from events import instrument_id


@lru_cache(maxsize=64)
def _table(symbols: tuple[str, ...]) -> dict[int, str]:
    return {instrument_id(s): s for s in symbols}


def symbol_of(iid: int, symbols) -> str:
    """The canonical symbol of `iid` among `symbols`, else the id as text."""
    return _table(tuple(symbols)).get(iid, str(iid))
