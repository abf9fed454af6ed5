"""A venue-neutral order book: price levels as sorted int64 mantissas, per side.

The book is compiled (marketdata/_book.c, built by `pip install -e .`, which every
make target runs): per level a depth update is a decimal parse, a search and a
store, and in CPython that loop was the floor of the whole ingest process
(~0.6 us a level, measured with callgrind on the 24 h ETHUSDT recording; ~40 ns
in C). Sequence rules, checksums and the resync policy stay in Python, in each
venue's sync module.

    book = Book(px_scale, sz_scale, keep_text=False)
    book.load(bids, asks, last_update_id=0)   # snapshot: [[price, size, ...], ...] strings
    book.apply_bids(levels); book.apply_asks(levels)    # size "0" removes the level
    book.top(n)        -> (bid_px, bid_sz, ask_px, ask_sz) int lists, best first
    book.top_text(n)   -> the venue's strings, best first (keep_text books: OKX, Kraken)
    book.write_top(buffer, offset, n, width) -> (nb, na)  # straight into a record
    book.best(), book.crossed(), book.depth(), book.truncate(n), book.clear()
    book.last_update_id                        # the owner's sequence of the last update

Each side keeps parallel arrays sorted by key with the BEST level at the END (bids
keyed by price, asks by minus the price): most updates land near the top (more
than half within 100 levels of the best on the ETHUSDT recording), so inserts and
deletes move few bytes and the top N is read backwards from the end. A keep_text
book also holds each level's price and size strings as received (the OKX and
Kraken checksums are computed over them).

Decimal strings are parsed exactly (`parse(text, scale)`: unsigned ASCII digits,
at most one '.', digits past the scale must be zeros, the mantissa fits int64;
tested against events.to_mantissa). A bad string raises DecimalError (a BadInput),
possibly after earlier levels of the same call were applied; the owner then treats
the book as desynced and resyncs it. One owner: the instrument's sync object.
"""

from __future__ import annotations

from events import to_decimal

try:
    from ._book import Book, parse
except ImportError as exc:   # a source tree without the build step
    raise ImportError(f"marketdata._book is not built ({exc}): run `make test` or "
                      "`pip install -e .` in the project's root to compile it") from exc

__all__ = ["Book", "book_view", "parse"]


def book_view(stream, book, last_update_id: int, synced: bool) -> dict:
    """One symbol's final state for the replay report: top-N as decimal strings."""
    bp, bs, ap, az = book.top(stream.depth)
    ps, ss = stream.px_scale, stream.sz_scale
    return {
        "bids": [[to_decimal(p, ps), to_decimal(q, ss)] for p, q in zip(bp, bs)],
        "asks": [[to_decimal(p, ps), to_decimal(q, ss)] for p, q in zip(ap, az)],
        "last_update_id": last_update_id,
        "synced": synced,
        "venue_symbol": stream.venue_symbol,
    }
