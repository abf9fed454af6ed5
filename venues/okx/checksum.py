"""OKX order-book checksum: signed CRC32 over the top 25 levels, strings as received.

Rule (OKX API v5, WS order book channel): "bid1px:bid1sz:ask1px:ask1sz:bid2px:..."
over the best 25 levels of each side; when one side is shorter its missing entries
are skipped; CRC32 of that text compared as a signed 32-bit integer. The strings
are the venue's own ("0.5000" is not "0.5"). Docs vector: bids [["3366.1","7"],
["3366","6"]], asks [["3366.8","9"],["3368","8"]] -> "3366.1:7:3366.8:9:3366:6:3368:8"
-> -1881014294 (tests/ingest/test_okx_checksum.py).
"""

from __future__ import annotations

import zlib

LEVELS = 25


def check_text(bid_px, bid_sz, ask_px, ask_sz) -> str:
    """The checksum text of best-first level strings (each side at most LEVELS long)."""
    nb, na = len(bid_px), len(ask_px)
    n = nb if nb < na else na
    parts = [""] * (4 * n)
    parts[0::4] = bid_px[:n]
    parts[1::4] = bid_sz[:n]
    parts[2::4] = ask_px[:n]
    parts[3::4] = ask_sz[:n]
    if nb != na:
        px, sz = (bid_px, bid_sz) if nb > na else (ask_px, ask_sz)
        rest = [""] * (2 * (len(px) - n))
        rest[0::2] = px[n:]
        rest[1::2] = sz[n:]
        parts += rest
    return ":".join(parts)


def signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode("ascii"))
    return crc - 0x100000000 if crc & 0x80000000 else crc


def book_checksum(book) -> int:
    """The OKX checksum of an `marketdata.book.Book` kept with its strings (keep_text)."""
    bp, bs, ap, az = book.top_text(LEVELS)
    return signed_crc32(check_text(bp, bs, ap, az))
