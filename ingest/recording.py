"""Read a recording in the ../shared/data format, line by line, tolerating what a file
on disk can hold: a bad line is skipped and counted, a damaged or truncated `.gz` ends
the reading with what was read and the reason (a .gz's CRC is checked at its end only,
so the lines of a damaged one may have been read damaged: they count as bad lines
where they no longer parse). Who may call: anyone reading a dataset
(`ingest.replay`).

    rec = Recording(path)                 # messages.jsonl[.gz], or a dataset folder
    for lineno, src, recv_ns, payload, url in rec:
        ...                               # lineno: 1-based, blank lines counted
    rec.bad_lines()   # {"count": 2, "first": [{"line": 7, "reason": "not JSON at column 12: ..."}]}
    rec.error         # None, or "messages.jsonl.gz: the file is truncated after line 1234 (...)..."

One line of a recording:

    {"recv_ts": 1633998512.06, "recv_ts_ns": 1633998512063356900, "src": "ws" | "rest",
     "url": "...", "payload": <the venue's JSON exactly as received>}

A bad line is one that is not a JSON object with a `payload`, whose `src` is neither
"ws" nor "rest", or whose receive time is not a number. A line with no receive time
at all is read as received at 0, as before.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Iterator

import orjson

from events import BadInput

WS, REST = 0, 1
KEEP_BAD = 10   # bad lines listed by number and reason; the rest are only counted
_SRC = {None: WS, "ws": WS, "rest": REST}


def dataset_file(path: str | Path) -> Path:
    """The messages file of a dataset folder, or `path` itself if it is a file."""
    p = Path(path)
    if p.is_dir():
        for name in ("messages.jsonl", "messages.jsonl.gz"):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"no messages.jsonl[.gz] in {p}")
    if not p.is_file():
        raise FileNotFoundError(f"no such dataset: {p}")
    return p


class BadLine(BadInput, ValueError):
    """One line of a recording that cannot be read as a recorded message."""


def parse_line(raw: bytes) -> tuple[int, int, object, str | None]:
    """(src, recv_ns, payload, url) of one line; BadLine saying why not."""
    try:
        rec = orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as err:  # its line and column would be those within `raw`
        raise BadLine(f"not JSON at column {err.pos + 1}: {err.msg}") from None
    if not isinstance(rec, dict):
        raise BadLine(f"not a JSON object but {type(rec).__name__}")
    if "payload" not in rec:
        raise BadLine("no payload")
    src = _SRC.get(rec.get("src")) if isinstance(rec.get("src"), (str, type(None))) else None
    if src is None:
        raise BadLine(f"src must be ws or rest: src={rec.get('src')!r}")
    ns, ts = rec.get("recv_ts_ns"), rec.get("recv_ts", 0)
    if ns is not None and (isinstance(ns, bool) or not isinstance(ns, int)):
        raise BadLine(f"recv_ts_ns is not an integer: recv_ts_ns={ns!r}")
    if not ns:
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise BadLine(f"recv_ts is not a number: recv_ts={ts!r}")
        ns = int(round(ts * 1e9))
    url = rec.get("url")
    return src, ns, rec["payload"], url if isinstance(url, str) else None


class Recording:
    """The lines of one recording, read once by iterating; see the module doc."""

    def __init__(self, path: str | Path):
        self.path = dataset_file(path)
        self.lines_read = 0        # physical lines, blank and bad ones included
        self.bad_count = 0
        self.bad: list[dict] = []  # the first KEEP_BAD: {"line": n, "reason": "..."}
        self.error: str | None = None

    def __iter__(self) -> Iterator[tuple[int, int, int, object, str | None]]:
        gz = self.path.suffix == ".gz"
        opener = gzip.open if gz else open
        try:
            with opener(self.path, "rb") as fh:
                for raw in fh:
                    self.lines_read += 1
                    if not raw.strip():
                        continue
                    try:
                        src, ns, payload, url = parse_line(raw)
                    except BadLine as err:
                        self._bad(str(err))
                        continue
                    yield self.lines_read, src, ns, payload, url
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as err:
            what = "is truncated after" if isinstance(err, EOFError) else "is damaged, found after"
            self.error = (f"{self.path}: the file {what} line {self.lines_read} "
                          f"({type(err).__name__}: {err}); the replay covers the lines before it")

    def _bad(self, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < KEEP_BAD:
            self.bad.append({"line": self.lines_read, "reason": reason})

    def bad_lines(self) -> dict:
        """{"count": N, "first": [{"line": n, "reason": "..."}, ...]} (at most KEEP_BAD listed)."""
        return {"count": self.bad_count, "first": list(self.bad)}
