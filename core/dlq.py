"""The dead-letter queue: bad input and dropped data, kept for operators (LM-08).

JSON lines (orjson) in `<run_dir>/dlq/<process>.jsonl`, rotated by size into numbered
files, bounded in total. When the bound is reached, the oldest low-priority entries
go first: rotated files of priority "low" are deleted before any file holding
"high" entries. Every record has `ts_ns`, `process`, `reason`, `priority`, `trace_id`,
`decision_id`, and whatever the caller adds (the raw frame, as text or base64).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import orjson

from events.ids import IdSource

PRIORITIES = ("low", "high")


class DeadLetterQueue:
    """Append-only, rotated, bounded dead-letter files of one process. Thread-safe."""

    def __init__(self, folder: str | os.PathLike, process: str, *, max_file_bytes: int = 4 << 20,
                 max_total_bytes: int = 64 << 20, ids: IdSource | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = process
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._ids = ids or IdSource()
        self._lock = threading.Lock()
        self._files = {p: self.folder / f"{process}.{p}.jsonl" for p in PRIORITIES}
        self.counts: dict[str, int] = {}
        self.evicted_files = 0

    def put(self, reason: str, *, raw: bytes | str | None = None, priority: str = "low",
            trace_id: int = 0, decision_id: int | None = None, **fields) -> int:
        """Append one record; return its decision id."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}: priority={priority!r}")
        decision_id = decision_id or self._ids.next()
        rec = {"ts_ns": time.time_ns(), "process": self.process, "reason": reason,
               "priority": priority, "trace_id": trace_id, "decision_id": decision_id}
        if raw is not None:
            if isinstance(raw, (bytes, bytearray, memoryview)):
                raw = bytes(raw)
                try:
                    rec["raw"] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    rec["raw_b64"] = base64.b64encode(raw).decode("ascii")
            else:
                rec["raw"] = raw
        rec.update(fields)
        line = orjson.dumps(rec, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
                            default=str) + b"\n"
        with self._lock:
            path = self._files[priority]
            with open(path, "ab") as f:
                f.write(line)
                size = f.tell()
            self.counts[reason] = self.counts.get(reason, 0) + 1
            if size >= self.max_file_bytes:
                self._rotate(path)
                self._enforce_bound()
        return decision_id

    def _rotate(self, path: Path) -> None:
        """Move the active file to the next number: higher numbers are always newer."""
        priority = PRIORITIES[[self._files[p] for p in PRIORITIES].index(path)]
        existing = self._rotated(priority)
        n = int(existing[-1].suffix[1:]) + 1 if existing else 1
        os.replace(path, path.with_name(f"{path.name}.{n}"))

    def _rotated(self, priority: str) -> list[Path]:
        name = self._files[priority].name
        return sorted(self.folder.glob(f"{name}.*"), key=lambda p: int(p.suffix[1:]))

    def _enforce_bound(self) -> None:
        def total() -> int:
            return sum(p.stat().st_size for p in self.folder.glob(f"{self.process}.*.jsonl*"))

        for priority in PRIORITIES:  # low first: its oldest rotated files go first
            for old in self._rotated(priority):
                if total() <= self.max_total_bytes:
                    return
                old.unlink()
                self.evicted_files += 1

    def read_all(self) -> list[dict]:
        """Every record still kept, oldest file first (for tests and tools)."""
        out = []
        for priority in PRIORITIES:
            for path in [*self._rotated(priority), self._files[priority]]:
                if path.exists():
                    out.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line)
        return sorted(out, key=lambda r: r["ts_ns"])
