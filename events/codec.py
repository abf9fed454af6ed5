"""The record codec: where each field of events.EVENT lives, and raw copies of records.

`events.records` states the layout once, as numpy dtypes. Code that works below
numpy's field access for speed (ingest packs records with `struct`; dispatch reads
headers as int64 words and stamps copies in place) takes every offset and format from
here, computed from EVENT, never hand-numbered; `tests/events/test_codec.py` checks
each against numpy's own field writes.

    offset("routing_version")       48                 byte offset in a record
    offset("book")                  64                 where every payload starts
    offset("book.bid_px")           80                 payload fields are dotted
    word("kind")                    (0, 16, 0xFFFF)    int64 word, bit shift, mask
    lane("consumer_id", np.uint32)  3                  index among a record's uint32 lanes
    packer(names, end=...)          a struct.Struct packing `names` in layout order
    payload_fields("trade")[:3]     ("trade.trade_id", "trade.px", "trade.sz")   padding left out

Raw copies move records as bytes or 8-byte words, never field by field: numpy
rebuilds a union dtype with overlapping fields as a packed one (1800 bytes, not 768)
on `np.concatenate` / `astype` and copies it field by field, so use `concat`, `row`,
`words` and `byte_rows` instead.
"""

from __future__ import annotations

import struct

import numpy as np

from .records import EVENT, RECORD_BYTES

WORDS = RECORD_BYTES // 8   # a record as uint64 words
VOID = np.dtype((np.void, RECORD_BYTES))   # a record as one opaque item

_CODES = {("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
          ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q"}


def _field(name: str) -> tuple[np.dtype, int]:
    """(dtype, byte offset in the record) of field `name` ("seq_provider", "book.bid_px")."""
    dt, at = EVENT, 0
    for part in name.split("."):
        if dt.fields is None or part not in dt.fields:
            raise KeyError(f"no field {name!r} in events.EVENT")
        dt, off = dt.fields[part][:2]
        at += off
    return dt, at


def offset(name: str) -> int:
    """Byte offset of field `name` in a record ("book.bid_px": inside the book payload)."""
    return _field(name)[1]


def dtype(name: str) -> np.dtype:
    """The numpy type of field `name` (a subarray type for the book's level columns)."""
    return _field(name)[0]


def word(name: str) -> tuple[int, int, int]:
    """(word index, bit shift, mask) of an integer field inside a record's int64 words."""
    dt, off = _field(name)
    if dt.kind not in "iu" or off // 8 != (off + dt.itemsize - 1) // 8:
        raise ValueError(f"{name} is not an integer inside one word: offset={off} type={dt}")
    return off // 8, 8 * (off % 8), (1 << 8 * dt.itemsize) - 1


def lane(name: str, as_type) -> int:
    """Index of field `name` in a record viewed as `as_type` lanes (`recs.view(as_type)`);
    the field must be exactly that type, aligned to its size."""
    dt, off = _field(name)
    want = np.dtype(as_type)
    if dt != want or off % want.itemsize:
        raise ValueError(f"{name} is not an aligned {want}: offset={off} type={dt}")
    return off // want.itemsize


def payload_fields(payload: str) -> tuple[str, ...]:
    """The named fields of a payload ("book", "trade", ...), dotted, in layout order;
    padding (`_pad`) left out."""
    dt = dtype(payload)
    names = sorted((n for n in dt.names if not n.startswith("_")), key=lambda n: dt.fields[n][1])
    return tuple(f"{payload}.{n}" for n in names)


def _code(name: str, dt: np.dtype) -> str:
    base, count = (dt.base, int(np.prod(dt.shape))) if dt.shape else (dt, 1)
    if base.byteorder == ">":
        raise ValueError(f"{name}: big-endian fields have no packer")
    if base.kind == "S":
        return f"{base.itemsize * count}s"
    code = _CODES.get((base.kind, base.itemsize))
    if code is None:
        raise ValueError(f"{name}: no struct code for {dt}")
    return code if count == 1 else f"{count}{code}"


def packer(names, *, end: int | None = None) -> struct.Struct:
    """A `struct.Struct` that packs fields `names` (in layout order, no overlap) of one
    record, from the first one's offset: bytes between them are written as zeros, and
    so are the bytes after the last up to record offset `end` (if given). Pack it at
    `record_start + offset(names[0])`, with one value per field (a subarray: one per item).
    """
    names = tuple(names)
    fmt, at = ["<"], offset(names[0])
    for name in names:
        dt, off = _field(name)
        if off < at:
            raise ValueError(f"{name} at offset {off} overlaps or precedes the field before it "
                             f"(packed up to {at})")
        if off > at:
            fmt.append(f"{off - at}x")
        fmt.append(_code(name, dt))
        at = off + dt.itemsize
    if end is not None:
        if end < at:
            raise ValueError(f"end={end} is inside the packed fields (they end at {at})")
        if end > at:
            fmt.append(f"{end - at}x")
    return struct.Struct("".join(fmt))


def field(recs: np.ndarray, name: str) -> np.ndarray:
    """The view of field `name` across records `recs` (dotted into payloads)."""
    for part in name.split("."):
        recs = recs[part]
    return recs


# -- raw copies ----------------------------------------------------------------------------

def words(recs: np.ndarray) -> np.ndarray:
    """EVENT records as rows of WORDS uint64 words (a view: no copy)."""
    return recs.view(np.uint64).reshape(len(recs), WORDS)


def byte_rows(recs: np.ndarray) -> np.ndarray:
    """EVENT records as rows of RECORD_BYTES uint8 (a view: no copy)."""
    return recs.view(np.uint8).reshape(len(recs), RECORD_BYTES)


def row(recs: np.ndarray, i: int) -> np.ndarray:
    """A private copy of row `i`, as a 1-record EVENT array."""
    out = np.empty(1, EVENT)
    words(out)[0] = words(recs)[i]
    return out


def concat(parts) -> np.ndarray:
    """One EVENT array holding every record of `parts` (EVENT arrays), in order. Use this,
    never `np.concatenate`, which repacks the union dtype."""
    parts = [np.asarray(p).view(VOID) for p in parts]
    return np.concatenate(parts).view(EVENT) if parts else np.zeros(0, EVENT)
