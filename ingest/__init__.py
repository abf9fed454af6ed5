"""Ingest: venue feeds -> canonical events on one market-data ring (LM-07).

One `python -m ingest --venue X` process per venue connection: it parses the
venue's WebSocket frames (orjson), assembles provider-side order books from REST /
WS snapshots and diffs with sequence, checksum, staleness and crossed-book checks,
resyncs one instrument at a time, and writes BOOK (top-N full state after each
applied update), TRADE and TICKER records to ring `md.<provider slug>` (overwrite
policy). `python -m ingest.replay` drives the same adapters from a recording.

Modules:
  decimals   venue decimal strings -> int64 mantissas, cached per scale
  book       venue-neutral order book (sorted mantissa lists, top-N slices)
  publisher  records into a staging batch, then the ring (event ids, trace ids)
  stream     per-instrument state and the time-driven resync policy
  report     counters, telemetry and dead letters
  venues/    one package per venue: markets, parser (adapter), sync (+ okx checksum)
  transport  WebSocket (websocket-client) and REST (http.client) with reconnect
  process    the live loop (`do_work()`); __main__ its command line
  replay     the replay CLI
"""
