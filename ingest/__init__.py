"""Ingest: venue feeds -> canonical events on one market-data ring (LM-07).

One `python -m ingest --venue X` process per venue connection: it parses the
venue's WebSocket frames (orjson), assembles provider-side order books from REST /
WS snapshots and diffs with sequence, checksum, staleness and crossed-book checks,
resyncs one instrument at a time, and writes BOOK (top-N full state after each
applied update), TRADE and TICKER records to ring `md.<provider slug>`.
`python -m ingest.replay` drives the same adapters from a recording.

Modules:
  decimals   venue decimal strings -> exact int64 mantissas; whole columns at once
  book       venue-neutral order book (sorted mantissa arrays, best level last)
  _book.c    both of these, compiled (the per-level loop was ingest's floor in CPython)
  publisher  records into a staging batch, then the ring (event ids, trace ids); rows
             claimed in frame order and filled a run at a time (Binance bookTicker, trades)
  stream     per-instrument state and the time-driven resync policy (Timers)
  report     counters, telemetry names, dead letters
  venues/    one package per venue: markets, parser (the adapter), sync (+ okx checksum,
             okx seq, binance deferred)
  transport  the WebSocket, read by the loop thread (websocket-client; a connector thread
             connects and reconnects), REST (http.client) in a thread, the waker
  process    the live loop (`do_work()`); config its settings; __main__ its CLI
  replay     the replay CLI

Contract with the rest of the pipeline:
  ring      `md.<slug>` in the run namespace (MELTICA_RUN), events.EVENT records,
            overwrite policy, created by the one ingest of that venue; a leftover of
            a dead writer is unlinked and recreated (readers see "replaced"), a live
            one is refused. Closed and unlinked on SIGTERM / SIGINT.
  header    provider (events.Provider), instrument (events.instrument_id of the
            canonical symbol), seq_provider (Binance: depth u, trade t, aggTrade a,
            bookTicker u; OKX: books seqId, trades tradeId, tickers and books of
            feeds without seqId ts_ms * 1000 + k, k counting that stream's messages
            in the same millisecond; Kraken: microsecond times, made increasing),
            ingest_ts_ns (time.time_ns() when the frame was read), event_ts_ns (the
            venue's event time in ns; 0 where it sends none: Binance spot
            bookTicker), event_id (events.event_id), trace_id (a per-process
            counter in IdSource format), routing_version 0, flags SNAPSHOT on the
            first book after a (re)sync, RESYNCED on the first after a resync,
            REPLAYED on replays.
  payloads  BOOK: depth (the configured N), n_bids / n_asks, px_scale / sz_scale (the
            instrument's), last_update_id (= seq_provider), best first, zero-padded.
            TRADE: side is the taker's. TICKER: the venue's best bid / ask, update_id.
  scales    8 / 8 unless exchangeInfo / instruments metadata says more decimals.

Decisions (where the issue is silent):
  - Binance futures sync keeps the diff with u == lastUpdateId (Binance's futures
    procedure; idempotent) so the pu chain holds: the recordings need it.
  - A snapshot older than the buffered stream (first diff U > L+1) is fetched
    again (resync reason `snapshot_behind`); an exact repeat of the last diff /
    OKX message is dropped as stale, not a gap.
  - The periodic refresh (jittered 2-5 min) builds a shadow book from a REST snapshot
    (Binance, OKX) while the live one keeps publishing, swaps it in at the same update
    id / seqId and reports a different top of book (`book.refresh_mismatch`).
  - Resyncs of one instrument back off after 3 failures in a row (0.25 s doubling
    to 30 s); reconnects back off with full jitter (0.25 s doubling to 30 s).
  - An OKX snapshot's sizes are converted when they first reach the published top
    N; a malformed one is found there and resyncs the book.
  - Replays run without time-driven resyncs (a recording cannot answer a new
    snapshot request); a REST line arriving for a synced book is a refresh.
"""
