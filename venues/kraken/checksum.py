"""Kraken WS v1 book checksum: CRC32 over the top 10 levels, digits only.

Rule (Kraken docs, "Book checksum" for WS API v1): after applying an update and
truncating the book to the subscribed depth, take the best 10 asks (price
ascending) then the best 10 bids (price descending); for each level, the price
and then the volume strings as received with the decimal point removed and
leading zeros stripped; concatenate everything, CRC32 it, and compare the
unsigned value with the update's "c" string. Example level: ["0.05005", "0.00000500"]
-> "5005" + "500".
"""

from __future__ import annotations

import zlib

LEVELS = 10


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def check_text(ask_px, ask_sz, bid_px, bid_sz) -> str:
    """The checksum text of best-first level strings (each side at most LEVELS long)."""
    parts = [_digits(p) + _digits(q) for p, q in zip(ask_px, ask_sz)]
    parts += [_digits(p) + _digits(q) for p, q in zip(bid_px, bid_sz)]
    return "".join(parts)


def book_checksum(book) -> int:
    """The Kraken checksum (unsigned) of an `marketdata.book.Book` kept with its strings."""
    bp, bs, ap, az = book.top_text(LEVELS)
    return zlib.crc32(check_text(ap, az, bp, bs).encode("ascii"))
