"""Canonical records (events.EVENT) out of ingest: staged in a batch, then into the md ring.

One owner thread (the ingest loop). Records are packed with one precompiled
`struct` per kind, built from the record dtype by `events.codec.packer` (a book's
levels by the book itself, `Book.write_top`), straight into a preallocated staging
array (no per-event numpy work), and the staged batch goes to the ring with
`RingWriter.write_batch` (try_claim / raw copy / publish). `flush()` runs at the end
of every unit of work and whenever the stage is full, so a record waits at most one
loop turn.

Deferred rows (the bulk frames of a venue, e.g. Binance bookTicker and trades): an
adapter may claim a stage row for a frame it has only parsed (`claim(rows)`, in
frame order), and fill all such rows together, with numpy, from columns (`fill`),
or one by one (`ticker(..., row=r)` / `trade(..., row=r)`), in a `filler` it
registered: `flush()` calls every filler first. A row whose frame turned out bad is
given back with `drop(row)`; flush closes the gap, so the ring sees the remaining
records in frame order.

Header fields filled here (events.records.HEADER):
  schema_version  events.SCHEMA_VERSION      kind, provider  Kind / Provider values
  flags           HeaderFlag bits (SNAPSHOT, RESYNCED, REPLAYED; SPARSE_SEQ on the kinds the
                  adapter declared sparse, `declare_sparse`)
  instrument      Instrument.id              consumer_id     0
  seq_provider    the venue's sequence (given by the adapter)
  ingest_ts_ns    time.time_ns() at receipt  event_ts_ns     venue event time (0: none)
  event_id        events.event_id(provider, kind, instrument, seq_provider), computed for
                  the whole batch at flush (one by one under SMALL records, numpy uint64
                  above; same values, tested)
  routing_version 0 (dispatch stamps it)     trace_id        per-process counter (IdSource format)
"""

from __future__ import annotations

import numpy as np

from events import (BOOK, BOOK_DEPTH, EVENT, HEADER, RECORD_BYTES, SCHEMA_VERSION, HeaderFlag,
                    IdSource, Kind, event_id, event_ids, stamp_header)
from events.codec import byte_rows, dtype, field, offset, packer, payload_fields

from marketdata.book import Book

# The header fields a record is staged with; event_id, routing_version and trace_id
# (after them) are packed as zeros and filled for the whole batch at flush (vectorized).
_STAGED = HEADER.names[: HEADER.names.index("event_id")]
# Trades and tickers are padded with zeros to the end of a book, the most any record of
# ours writes: a stage row reused by a shorter record keeps no bytes of an older one.
_SHORT = offset("book") + BOOK.itemsize
# A book: its head, packed here, then its four level columns, written by Book.write_top
# back to back from _LEVELS_AT, each BOOK_DEPTH wide.
_LEVELS = tuple(f"book.{c}" for c in ("bid_px", "bid_sz", "ask_px", "ask_sz"))
_LEVELS_AT = offset(_LEVELS[0])
assert [offset(c) for c in _LEVELS] == [_LEVELS_AT + i * dtype(c).itemsize for i, c in enumerate(_LEVELS)]
_BOOK_HEAD = packer(_STAGED + tuple(f for f in payload_fields("book") if f not in _LEVELS),
                    end=_LEVELS_AT).pack_into
_TRADE = packer(_STAGED + payload_fields("trade"), end=_SHORT).pack_into
_TICKER = packer(_STAGED + payload_fields("ticker"), end=_SHORT).pack_into
K_BOOK, K_TRADE, K_TICKER = int(Kind.BOOK), int(Kind.TRADE), int(Kind.TICKER)
_COLUMNAR = {K_TRADE: "trade", K_TICKER: "ticker"}   # the kinds `fill` writes: their payloads
SMALL = 24   # a flush of fewer records computes their ids one by one (numpy's fixed cost is higher)


class Publisher:
    """Stage canonical records of one provider and flush them to a ring (or a sink).

    `writer`: a RingWriter of events.EVENT (overwrite policy), or None.
    `sink(batch)`: also called with every flushed batch (a view: copy what you keep).
    `flags`: header bits OR-ed into every record (HeaderFlag.REPLAYED for replays).
    """

    def __init__(self, provider: int, writer=None, *, batch: int = 1024, sink=None, flags: int = 0):
        self.provider = int(provider)
        self.writer = writer
        self.sink = sink
        self.flags = flags
        self.book_flags = self.trade_flags = self.ticker_flags = flags   # flags + SPARSE_SEQ per kind
        self.stage = np.zeros(batch, EVENT)
        self._buf = memoryview(self.stage.view(np.uint8))
        self._cap = batch
        self.n = 0
        self.books = self.trades = self.tickers = 0
        self.flushed = 0
        self._trace = IdSource().next() - 1  # trace ids: this + 1, + 2, ... (IdSource format)
        self._raw = byte_rows(self.stage)
        self._kind = self.stage["kind"]
        self._instrument = self.stage["instrument"]
        self._seq = self.stage["seq_provider"]
        self._event_id = self.stage["event_id"]
        self._trace_id = self.stage["trace_id"]
        self._ramp = np.arange(1, batch + 1, dtype=np.uint64)
        self._ingest = self.stage["ingest_ts_ns"]
        self._event_ts = self.stage["event_ts_ns"]
        # per columnar kind: the stage's views of its payload columns, in `fill`'s order
        self._columns = {k: tuple(field(self.stage, f) for f in payload_fields(payload)
                                  if f not in (f"{payload}.px_scale", f"{payload}.sz_scale"))
                         for k, payload in _COLUMNAR.items()}
        self._templates: dict = {}
        self.fillers: list = []       # called first by flush(): they fill claimed rows
        self._dropped: list[int] = []

    def declare_sparse(self, kinds) -> None:
        """Flag the records of these kinds SPARSE_SEQ: the venue's sequence of each of their
        streams skips values (update ids, timestamps), so dispatch need not wait for gaps
        (it would otherwise probe each new stream). Call before the first record."""
        sparse = {int(k) for k in kinds}
        bit = int(HeaderFlag.SPARSE_SEQ)
        self.book_flags = self.flags | (bit if K_BOOK in sparse else 0)
        self.trade_flags = self.flags | (bit if K_TRADE in sparse else 0)
        self.ticker_flags = self.flags | (bit if K_TICKER in sparse else 0)
        self._templates.clear()

    # -- one record of each kind -------------------------------------------------------
    # `row`: a row claimed earlier (`claim`) to write into, instead of the next one. Not
    # keyword-only: that costs every call ~30 ns (7% of staging a ticker).

    def book(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
             event_ns: int, book: Book, depth: int, flags: int = 0) -> None:
        """Stage the top `depth` levels of `book` as one BOOK record (`flags`: HeaderFlag
        bits of this book, e.g. SNAPSHOT)."""
        n = self.n
        at = n * RECORD_BYTES
        nb, na = book.write_top(self._buf, at + _LEVELS_AT, depth, BOOK_DEPTH)
        _BOOK_HEAD(self._buf, at, SCHEMA_VERSION, K_BOOK, self.provider, flags | self.book_flags,
                   instrument, 0, seq, ingest_ns, event_ns, depth, nb, na, px_scale, sz_scale,
                   book.last_update_id)
        self.books += 1
        self.n = n = n + 1
        if n == self._cap:
            self.flush()

    def trade(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
              event_ns: int, trade_id: int, px: int, sz: int, side: int, row: int | None = None) -> None:
        """Stage one TRADE record (`side`: events.Side of the taker)."""
        n = self.n if row is None else row
        _TRADE(self._buf, n * RECORD_BYTES, SCHEMA_VERSION, K_TRADE, self.provider, self.trade_flags,
               instrument, 0, seq, ingest_ns, event_ns, trade_id, px, sz, side, px_scale, sz_scale)
        self.trades += 1
        if row is None:
            self.n = n = n + 1
            if n == self._cap:
                self.flush()

    def ticker(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
               event_ns: int, bid_px: int, bid_sz: int, ask_px: int, ask_sz: int, update_id: int,
               row: int | None = None) -> None:
        """Stage one TICKER record (best bid / ask as the venue reported it)."""
        n = self.n if row is None else row
        _TICKER(self._buf, n * RECORD_BYTES, SCHEMA_VERSION, K_TICKER, self.provider, self.ticker_flags,
                instrument, 0, seq, ingest_ns, event_ns, bid_px, bid_sz, ask_px, ask_sz, update_id,
                px_scale, sz_scale)
        self.tickers += 1
        if row is None:
            self.n = n = n + 1
            if n == self._cap:
                self.flush()

    # -- deferred rows ------------------------------------------------------------

    def claim(self, rows: list) -> None:
        """Claim the next stage row for a filler: its index is appended to `rows`.

        Keep the frame where the filler finds it first: a stage filled by this claim
        is flushed here, and the flush runs the fillers."""
        n = self.n
        rows.append(n)
        self.n = n = n + 1
        if n == self._cap:
            self.flush()

    def drop(self, row: int) -> None:
        """Give back a claimed row that gets no record (its frame was bad)."""
        self._dropped.append(row)

    def fill(self, kind: int, rows, instrument: int, px_scale: int, sz_scale: int, seq, ingest_ns,
             event_ns, *payload) -> None:
        """Write TRADE or TICKER records into claimed `rows` from equal-length columns (lists
        or arrays; a scalar for a column that is the same in every row).

        `payload`: the columns of the kind's payload fields in the order `trade` /
        `ticker` take them (trade_id, px, sz, side / bid_px, bid_sz, ask_px, ask_sz,
        update_id). Same bytes as `trade` / `ticker` row by row (tested). OverflowError
        if a value does not fit int64; then no row counts as written (the caller falls back)."""
        columns = self._columns[kind]
        if len(payload) != len(columns):
            raise TypeError(f"fill of kind {kind}: {len(columns)} payload columns, got {len(payload)}")
        r = np.array(rows, np.intp)
        self._raw[r, :_SHORT] = self._template(kind, instrument, px_scale, sz_scale)
        self._seq[r] = seq
        self._ingest[r] = ingest_ns
        self._event_ts[r] = event_ns
        for column, values in zip(columns, payload):
            column[r] = values
        if kind == K_TICKER:
            self.tickers += len(r)
        else:
            self.trades += len(r)

    def _template(self, kind: int, instrument: int, px_scale: int, sz_scale: int) -> np.ndarray:
        """The bytes of a record of `kind` with its constant fields set, the rest 0."""
        key = (kind, instrument, px_scale, sz_scale)
        t = self._templates.get(key)
        if t is None:
            one = np.zeros(1, EVENT)
            kflags = self.ticker_flags if kind == K_TICKER else self.trade_flags
            stamp_header(one[0], kind, self.provider, instrument, flags=kflags)
            payload = one[_COLUMNAR[kind]]
            payload["px_scale"], payload["sz_scale"] = px_scale, sz_scale
            t = self._templates[key] = byte_rows(one)[0, :_SHORT].copy()
        return t

    @property
    def counts(self) -> dict:
        """Records staged so far, by kind."""
        return {"book": self.books, "trade": self.trades, "ticker": self.tickers}

    def flush(self) -> int:
        """Write the staged records to the ring (and the sink); return how many."""
        for fill in self.fillers:
            fill()
        n = self.n
        if self._dropped:
            keep = np.ones(n, bool)
            keep[self._dropped] = False
            self._dropped.clear()
            m = int(keep.sum())
            self._raw[:m] = self._raw[:n][keep]
            self.n = n = m
        if not n:
            return 0
        trace = self._trace
        if n < SMALL:     # one by one: a few us, where numpy's ~15 small steps cost ~20 us
            p = self.provider
            self._event_id[:n] = [event_id(p, k, i, q) for k, i, q in zip(
                self._kind[:n].tolist(), self._instrument[:n].tolist(), self._seq[:n].tolist())]
            self._trace_id[:n] = range(trace + 1, trace + n + 1)
        else:
            self._event_id[:n] = event_ids(self.provider, self._kind[:n], self._instrument[:n],
                                           self._seq[:n])
            self._trace_id[:n] = self._ramp[:n] + trace
        self._trace = trace + n
        batch = self.stage[:n]
        if self.writer is not None:         # overwrite policy: always takes the whole batch
            if n < SMALL:
                write, buf = self.writer.try_write_bytes, self._buf
                for at in range(0, n * RECORD_BYTES, RECORD_BYTES):
                    write(buf[at:at + RECORD_BYTES])
            else:
                self.writer.write_batch(batch)
        if self.sink is not None:
            self.sink(batch)
        self.n = 0
        self.flushed += n
        return n
