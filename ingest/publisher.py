"""Canonical records (events.EVENT) out of ingest: staged in a batch, then into the md ring.

One owner thread (the ingest loop). Records are packed with one precompiled
`struct` per kind (a book's levels by the book itself, `Book.write_top`)
straight into a preallocated staging array (no per-event numpy work), and the staged batch goes to the ring with `RingWriter.write_batch`
(try_claim / raw copy / publish). `flush()` runs at the end of every unit of
work and whenever the stage is full, so a record waits at most one loop turn.

Deferred rows (the bulk frames of a venue, e.g. Binance bookTicker and trades): an
adapter may claim a stage row for a frame it has only parsed (`claim(rows)`, in
frame order), and fill all such rows together, with numpy, from columns
(`fill_tickers` / `fill_trades`), or one by one (`ticker_at` / `trade_at`), in a
`filler` it registered: `flush()` calls every filler first. A row whose frame
turned out bad is given back with `drop(row)`; flush closes the gap, so the ring
sees the remaining records in frame order.

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

import struct

import numpy as np

from events import BOOK_DEPTH, EVENT, RECORD_BYTES, SCHEMA_VERSION, HeaderFlag, IdSource, Kind, event_id, event_ids

from marketdata.book import Book

# Header up to event_ts_ns; event_id, routing_version and trace_id (24 bytes) are
# written as zeros here and filled for the whole batch at flush (vectorized).
_HEADER = "<HHHHIIqqq24x"
assert RECORD_BYTES == 768  # the literal in Publisher.ticker
BOOK_STRUCT = struct.Struct(_HEADER + "HHHbbq" + f"{BOOK_DEPTH}q" * 4)
BOOK_HEAD = struct.Struct(_HEADER + "HHHbbq")   # then the four columns: Book.write_top
assert BOOK_HEAD.size == EVENT.fields["book"][1] + EVENT["book"].fields["bid_px"][1]
# Trades and tickers are padded with zeros to the book's size, the most any record of
# ours writes: a stage row reused by a shorter record keeps no bytes of an older one.
_SHORT = BOOK_STRUCT.size
TRADE_STRUCT = struct.Struct(_HEADER + "qqqBbb5x")
TRADE_PADDED = struct.Struct(_HEADER + "qqqBbb5x" + f"{_SHORT - TRADE_STRUCT.size}x")
TICKER_STRUCT = struct.Struct(_HEADER + "qqqqqbb6x")
TICKER_PADDED = struct.Struct(_HEADER + "qqqqqbb6x" + f"{_SHORT - TICKER_STRUCT.size}x")
K_BOOK, K_TRADE, K_TICKER = int(Kind.BOOK), int(Kind.TRADE), int(Kind.TICKER)
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
        self._raw = self.stage.view(np.uint8).reshape(batch, RECORD_BYTES)
        self._kind = self.stage["kind"]
        self._instrument = self.stage["instrument"]
        self._seq = self.stage["seq_provider"]
        self._event_id = self.stage["event_id"]
        self._trace_id = self.stage["trace_id"]
        self._ramp = np.arange(1, batch + 1, dtype=np.uint64)
        self._ingest = self.stage["ingest_ts_ns"]
        self._event_ts = self.stage["event_ts_ns"]
        tk, tr = self.stage["ticker"], self.stage["trade"]
        self._tk = (tk["bid_px"], tk["bid_sz"], tk["ask_px"], tk["ask_sz"], tk["update_id"])
        self._tr = (tr["trade_id"], tr["px"], tr["sz"], tr["side"])
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

    def book(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
             event_ns: int, book: Book, depth: int, flags: int = 0) -> None:
        """Stage the top `depth` levels of `book` as one BOOK record."""
        n = self.n
        at = n * RECORD_BYTES
        nb, na = book.write_top(self._buf, at + BOOK_HEAD.size, depth, BOOK_DEPTH)
        BOOK_HEAD.pack_into(self._buf, at, SCHEMA_VERSION, K_BOOK, self.provider, flags | self.book_flags,
                            instrument, 0, seq, ingest_ns, event_ns, depth, nb, na, px_scale, sz_scale,
                            book.last_update_id)
        self.books += 1
        self.n = n = n + 1
        if n == self._cap:
            self.flush()

    def trade(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
              event_ns: int, trade_id: int, px: int, sz: int, side: int) -> None:
        """Stage one TRADE record (`side`: events.Side of the taker)."""
        n = self.n
        TRADE_PADDED.pack_into(
            self._buf, n * RECORD_BYTES, SCHEMA_VERSION, K_TRADE, self.provider, self.trade_flags,
            instrument, 0, seq, ingest_ns, event_ns, trade_id, px, sz, side, px_scale, sz_scale)
        self.trades += 1
        self.n = n = n + 1
        if n == self._cap:
            self.flush()

    def ticker(self, instrument: int, px_scale: int, sz_scale: int, seq: int, ingest_ns: int,
               event_ns: int, bid_px: int, bid_sz: int, ask_px: int, ask_sz: int,
               update_id: int, _pack=TICKER_PADDED.pack_into, _kind=K_TICKER) -> None:
        """Stage one TICKER record (best bid / ask as the venue reported it)."""
        n = self.n
        _pack(self._buf, n * 768, SCHEMA_VERSION, _kind, self.provider, self.ticker_flags, instrument, 0,
              seq, ingest_ns, event_ns, bid_px, bid_sz, ask_px, ask_sz, update_id, px_scale, sz_scale)
        self.tickers += 1
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

    def ticker_at(self, row: int, instrument: int, px_scale: int, sz_scale: int, seq: int,
                  ingest_ns: int, event_ns: int, bid_px: int, bid_sz: int, ask_px: int,
                  ask_sz: int, update_id: int) -> None:
        """Write one TICKER record into claimed `row` (as `ticker` does at the end)."""
        TICKER_PADDED.pack_into(self._buf, row * RECORD_BYTES, SCHEMA_VERSION, K_TICKER, self.provider,
                                self.ticker_flags, instrument, 0, seq, ingest_ns, event_ns, bid_px, bid_sz,
                                ask_px, ask_sz, update_id, px_scale, sz_scale)
        self.tickers += 1

    def trade_at(self, row: int, instrument: int, px_scale: int, sz_scale: int, seq: int,
                 ingest_ns: int, event_ns: int, trade_id: int, px: int, sz: int, side: int) -> None:
        """Write one TRADE record into claimed `row` (as `trade` does at the end)."""
        TRADE_PADDED.pack_into(self._buf, row * RECORD_BYTES, SCHEMA_VERSION, K_TRADE, self.provider,
                               self.trade_flags, instrument, 0, seq, ingest_ns, event_ns, trade_id, px, sz,
                               side, px_scale, sz_scale)
        self.trades += 1

    def _template(self, st: struct.Struct, kind: int, instrument: int, px_scale: int,
                  sz_scale: int) -> np.ndarray:
        """The packed bytes of a record of `kind` with its constant fields set, the rest 0."""
        key = (kind, instrument, px_scale, sz_scale)
        t = self._templates.get(key)
        if t is None:   # header constants, 3 header times, 5 (ticker) or 4 (trade) payload ints
            zeros = (0,) * (8 if kind == K_TICKER else 7)
            kflags = self.ticker_flags if kind == K_TICKER else self.trade_flags
            t = np.frombuffer(st.pack(SCHEMA_VERSION, kind, self.provider, kflags, instrument, 0,
                                      *zeros, px_scale, sz_scale), np.uint8)
            assert len(t) == _SHORT
            self._templates[key] = t
        return t

    def fill_tickers(self, rows, instrument: int, px_scale: int, sz_scale: int, seq, ingest_ns,
                     event_ns, bid_px, bid_sz, ask_px, ask_sz, update_id) -> None:
        """Write TICKER records into claimed `rows` from equal-length int columns (lists or arrays).

        Same bytes as `ticker_at` row by row (tested). OverflowError if a value does
        not fit int64; then no row counts as written (the caller falls back)."""
        r = np.array(rows, np.intp)
        self._raw[r, :_SHORT] = self._template(TICKER_PADDED, K_TICKER, instrument, px_scale, sz_scale)
        self._seq[r] = seq
        self._ingest[r] = ingest_ns
        self._event_ts[r] = event_ns
        bp, bs, ap, az, uid = self._tk
        bp[r] = bid_px
        bs[r] = bid_sz
        ap[r] = ask_px
        az[r] = ask_sz
        uid[r] = update_id
        self.tickers += len(r)

    def fill_trades(self, rows, instrument: int, px_scale: int, sz_scale: int, seq, ingest_ns,
                    event_ns, trade_id, px, sz, side) -> None:
        """Write TRADE records into claimed `rows` from equal-length columns (see fill_tickers)."""
        r = np.array(rows, np.intp)
        self._raw[r, :_SHORT] = self._template(TRADE_PADDED, K_TRADE, instrument, px_scale, sz_scale)
        self._seq[r] = seq
        self._ingest[r] = ingest_ns
        self._event_ts[r] = event_ns
        tid, p, q, sd = self._tr
        tid[r] = trade_id
        p[r] = px
        q[r] = sz
        sd[r] = side
        self.trades += len(r)

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
