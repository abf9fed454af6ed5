"""What ingest tells operators (LM-08): counters, telemetry, dead letters. Ops-only.

`Report` keeps the plain counters the replay CLI prints and mirrors the notable
ones into `core.telemetry.Telemetry` and bad frames into the dead-letter queue:

  book.resync{provider,symbol,reason}   counter + event; reason in RESYNC_REASONS
  book.synced{provider,symbol}          counter + event with `recovery_ms` after a resync
  book.gap{provider,symbol}             counter + event (sequence gap)
  book.checksum_failed{provider,symbol} counter + event (OKX CRC32 mismatch)
  book.refresh_mismatch{provider,symbol} periodic refresh found a different book
  ws.reconnect{provider}                counter + event (with `reason`)
  md.messages{provider,symbol}          frames per instrument (flushed by `flush_rates`)
  md.rate{provider,symbol}              gauge: frames per second since the last flush
  ingest.bad_frame{provider,reason}     counter; the frame itself goes to the DLQ
  ingest.unknown_symbol{provider}       counter + DLQ record: a symbol the venue does not list
  ingest.internal_error{provider}       counter: a bug caught by the loop (ingest.process)
  ingest.silence{provider,kind}         counter: a stream kind without data past its threshold;
                                        its connection is reconnected (ingest.liveness)
  (gauges set by ingest.process every status interval: book.synced_count, md.ring.position,
   md.ring.reader_lost{pid})
"""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger("ingest")

RESYNC_REASONS = ("gap", "checksum", "stale", "crossed", "refresh", "reconnect", "bad_input",
                  "snapshot_behind", "snapshot_timeout", "snapshot_failed")


class Report:
    """Counters of one ingest run, with optional telemetry and DLQ. One owner thread."""

    def __init__(self, provider: str, telemetry=None, dlq=None):
        self.provider = provider
        self.telemetry = telemetry
        self.dlq = dlq
        self.messages = 0
        self.diffs_applied = 0
        self.diffs_dropped_stale = 0
        self.diffs_buffered = 0
        self.gaps = 0
        self.checksum_ok = 0
        self.checksum_failed = 0
        self.resyncs = 0
        self.resync_reasons: dict[str, int] = {}
        self.snapshots = 0
        self.bad_frames = 0
        self.filtered = 0          # frames of instruments this process does not carry
        self.ignored = 0           # frames of channels ingest does not turn into events
        self.reconnects = 0
        self.refresh_mismatches = 0
        self.unknown_symbols: dict[str, str] = {}   # venue symbol -> the venue's reason
        self.recoveries: deque = deque(maxlen=256)  # (symbol, reason, recovery_ns), newest last
        self._bad_logged: dict[str, int] = {}

    # -- book events -------------------------------------------------------------------

    def resync(self, symbol: str, reason: str, detail: str = "") -> None:
        self.resyncs += 1
        self.resync_reasons[reason] = self.resync_reasons.get(reason, 0) + 1
        log.info("%s %s: resync (%s) %s", self.provider, symbol, reason, detail)
        tel = self.telemetry
        if tel is not None:
            tel.inc("book.resync", provider=self.provider, symbol=symbol, reason=reason)
            tel.event("book.resync", provider=self.provider, symbol=symbol, reason=reason,
                      detail=detail)

    def synced(self, symbol: str, recovery_ns: int, reason: str) -> None:
        self.recoveries.append((symbol, reason, recovery_ns))
        log.info("%s %s: synced again %.1f ms after %s", self.provider, symbol, recovery_ns / 1e6, reason)
        tel = self.telemetry
        if tel is not None:
            tel.inc("book.synced", provider=self.provider, symbol=symbol)
            tel.event("book.synced", provider=self.provider, symbol=symbol, after=reason,
                      recovery_ms=round(recovery_ns / 1e6, 3))

    def gap(self, symbol: str, detail: str) -> None:
        self.gaps += 1
        log.warning("%s %s: sequence gap: %s", self.provider, symbol, detail)
        if self.telemetry is not None:
            self.telemetry.inc("book.gap", provider=self.provider, symbol=symbol)
            self.telemetry.event("book.gap", provider=self.provider, symbol=symbol, detail=detail)

    def checksum_mismatch(self, symbol: str, expected: int, computed: int) -> None:
        self.checksum_failed += 1
        log.warning("%s %s: checksum mismatch: venue %d, ours %d", self.provider, symbol,
                    expected, computed)
        if self.telemetry is not None:
            self.telemetry.inc("book.checksum_failed", provider=self.provider, symbol=symbol)
            self.telemetry.event("book.checksum_failed", provider=self.provider, symbol=symbol,
                                 expected=expected, computed=computed)

    def refresh_mismatch(self, symbol: str) -> None:
        self.refresh_mismatches += 1
        log.warning("%s %s: periodic refresh found a different book", self.provider, symbol)
        if self.telemetry is not None:
            self.telemetry.inc("book.refresh_mismatch", provider=self.provider, symbol=symbol)

    # -- connection and input ------------------------------------------------------------

    def reconnect(self, reason: str) -> None:
        self.reconnects += 1
        log.warning("%s: reconnecting: %s", self.provider, reason)
        if self.telemetry is not None:
            self.telemetry.inc("ws.reconnect", provider=self.provider)
            self.telemetry.event("ws.reconnect", provider=self.provider, reason=reason)

    def bad_frame(self, raw, reason: str, exc: BaseException | None = None) -> None:
        """A frame we could not use: DLQ it with the reason, count it, keep running."""
        self.bad_frames += 1
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
        n = self._bad_logged[reason] = self._bad_logged.get(reason, 0) + 1
        if n <= 10 or n & (n - 1) == 0:  # a flood of bad frames must not flood the log
            log.warning("%s: bad frame #%d (%s) %s", self.provider, n, reason, detail)
        if self.telemetry is not None:
            self.telemetry.inc("ingest.bad_frame", provider=self.provider, reason=reason)
        if self.dlq is not None:
            self.dlq.put(reason, raw=_rawtext(raw), provider=self.provider, error=detail)

    def unknown_symbol(self, venue_symbol: str, reason: str) -> None:
        """A configured symbol the venue does not list: dropped alone, recorded."""
        self.unknown_symbols[venue_symbol] = reason
        if self.telemetry is not None:
            self.telemetry.inc("ingest.unknown_symbol", provider=self.provider)
            self.telemetry.event("ingest.unknown_symbol", provider=self.provider, symbol=venue_symbol,
                                 reason=reason)
        if self.dlq is not None:
            self.dlq.put("unknown_symbol", raw=venue_symbol, provider=self.provider, error=reason)

    def flush_rates(self, streams, elapsed_s: float) -> None:
        """Push per-instrument frame counts (and rates over `elapsed_s`) to telemetry."""
        tel = self.telemetry
        for s in streams:
            n = s.messages - s.reported_messages
            s.reported_messages = s.messages
            if tel is not None:
                if n:
                    tel.inc("md.messages", n, provider=self.provider, symbol=s.symbol)
                if elapsed_s > 0:
                    tel.gauge("md.rate", round(n / elapsed_s, 3), provider=self.provider,
                              symbol=s.symbol)

    def counters(self) -> dict:
        return {
            "messages": self.messages, "diffs_applied": self.diffs_applied,
            "diffs_dropped_stale": self.diffs_dropped_stale, "gaps": self.gaps,
            "checksum_ok": self.checksum_ok, "checksum_failed": self.checksum_failed,
            "resyncs": self.resyncs,
        }


def _rawtext(raw):
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw
    return repr(raw)
