"""Replay a recorded dataset (the /work/shared/data format) on a venue app.

A dataset is a folder with messages.jsonl[.gz] (and meta.json), or the file
itself; each line is {"recv_ts", "src": "ws"|"rest", "url"?, "payload"}.

Per WebSocket connection, from the moment it has its first subscription, the
recorded ws payloads are sent in file order, only for the streams it subscribed
to: Binance by the recorded "stream" name (raw sockets get "data" alone), OKX by
(channel, instId); OKX subscribe acks are generated live and the recorded ones
skipped. Pacing follows recv_ts divided by `speed`, or as fast as the socket
takes them with speed 0. REST depth requests are answered with the recorded
snapshot of the symbol, whatever the `limit`: the latest one at or before the
furthest position any connection has reached (the first one before that). Diff faults (gap, duplicate,
reorder, malformed, OKX checksum) and socket faults apply to replayed frames.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from .binance import wrap_combined
from .faults import DiffRouter
from .hub import Client
from .instruments import Instrument, parse

log = logging.getLogger("venue.replay")
_QUOTES = ("USDT", "BUSD", "USDC", "TUSD", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")


@dataclass(slots=True)
class Line:
    """One recorded ws message, pre-serialized."""

    ts: float
    stream: str        # "nknusdt@depth@100ms" or "books:BTC-USDT"
    key: str           # venue symbol / instId
    diff: bool         # a sequenced book diff (faults apply)
    frame: bytes       # as recorded (Binance: the combined wrapper)
    raw: bytes | None  # Binance: the "data" part alone


class Dataset:
    """The lines of one recording, split into ws messages and REST snapshots."""

    def __init__(self, path: str | Path, style: str):
        if style not in ("binance", "okx"):
            raise ValueError(f"unknown replay style: style={style!r}")
        path = Path(path)
        if path.is_dir():
            files = [path / "messages.jsonl", path / "messages.jsonl.gz"]
            found = [f for f in files if f.exists()]
            if not found:
                raise FileNotFoundError(f"no messages.jsonl[.gz] in {path}")
            file = found[0]
        else:
            file = path
        self.path = str(path)
        self.style = style
        self.meta = read_meta(path)
        opener = gzip.open if file.name.endswith(".gz") else open
        self.lines: list[Line] = []
        self.snapshots: dict[str, list[tuple[int, bytes]]] = {}  # key -> [(position, payload)]
        pending_rest: list[tuple[int, str | None, bytes]] = []
        self._prices: dict[str, list[str]] = {}
        self._sizes: dict[str, list[str]] = {}
        with opener(file, "rb") as fh:
            for raw_line in fh:
                rec = orjson.loads(raw_line)
                payload = rec["payload"]
                if rec.get("src") == "rest":
                    pending_rest.append((len(self.lines), rec.get("url"), orjson.dumps(payload)))
                    self._sample(None, payload.get("bids", []), payload.get("asks", []))
                    continue
                line = self._ws_line(rec.get("recv_ts", 0.0), payload)
                if line is not None:
                    self.lines.append(line)
        keys = sorted({ln.key for ln in self.lines})
        for position, url, body in pending_rest:
            key = None
            if url:
                key = parse_qs(urlparse(url).query).get("symbol", [None])[0]
            elif self.meta.get("symbol"):
                key = self.meta["symbol"]
            elif len(keys) == 1:
                key = keys[0]
            if key is None:
                log.warning("replay: REST line at %d names no symbol; skipped", position)
                continue
            self.snapshots.setdefault(key, []).append((position, body))
        self.instruments = self._derive_instruments(set(keys) | set(self.snapshots))

    def _ws_line(self, ts: float, payload: Any) -> Line | None:
        if not isinstance(payload, dict):
            return None
        if self.style == "binance":
            stream = payload.get("stream")
            data = payload.get("data")
            if not isinstance(stream, str) or not isinstance(data, dict):
                return None
            key = data.get("s") or stream.split("@", 1)[0].upper()
            self._sample(key, data.get("b", ()), data.get("a", ()))
            return Line(ts, stream, key, data.get("e") == "depthUpdate", orjson.dumps(payload),
                        orjson.dumps(data))
        if "event" in payload or "arg" not in payload:
            return None
        arg = payload["arg"]
        key = arg.get("instId", "")
        if arg.get("channel") == "books":
            for d in payload.get("data", ()):
                self._sample(key, d.get("bids", ()), d.get("asks", ()))
        return Line(ts, f"{arg.get('channel')}:{key}", key,
                    payload.get("action") == "update", orjson.dumps(payload), None)

    def _sample(self, key: str | None, bids: Any, asks: Any) -> None:
        if key is None or not isinstance(bids, list) or not isinstance(asks, list):
            return
        prices, sizes = self._prices.setdefault(key, []), self._sizes.setdefault(key, [])
        for level in (bids[:5] + asks[:5]):
            if len(prices) < 2000:
                prices.append(level[0])
                sizes.append(level[1])

    def _derive_instruments(self, keys: set[str]) -> list[Instrument]:
        out = []
        for key in sorted(keys):
            if self.style == "okx":
                parts = key.split("-")
                base, quote = parts[0], parts[1] if len(parts) > 1 else "USD"
                canonical = key
            else:
                quote = next((q for q in _QUOTES if key.endswith(q) and len(key) > len(q)), key[-4:])
                base = key[: -len(quote)]
                canonical = f"{base}-{quote}"
            pd = max((_decimals(p) for p in self._prices.get(key, [])), default=2)
            qd = max((_decimals(s) for s in self._sizes.get(key, [])), default=3)
            first = next(iter(self._prices.get(key, [])), "1")
            start = parse(first, pd) or 1
            inst = Instrument(canonical, base, quote, pd, qd, start, min_notional=0)
            if self.style == "binance" and inst.binance_symbol != key:
                continue    # a symbol we cannot split faithfully is not listed
            out.append(inst)
        return out


def read_meta(path: str | Path) -> dict[str, Any]:
    """Return a dataset's meta.json ({} when there is none)."""
    path = Path(path)
    meta_file = path / "meta.json" if path.is_dir() else path.parent / "meta.json"
    return orjson.loads(meta_file.read_bytes()) if meta_file.exists() else {}


def _decimals(text: str) -> int:
    _, _, frac = str(text).partition(".")
    return len(frac.rstrip("0"))


class Replayer:
    """Serve one Dataset to the clients of one venue app."""

    def __init__(self, dataset: Dataset, speed: float = 0.0):
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0: speed={speed}")
        self.dataset = dataset
        self.speed = speed
        self.furthest = -1
        self.started = 0
        self.finished = 0
        self.sent = 0
        self._tasks: set[asyncio.Task] = set()

    def start(self, client: Client, venue: Any) -> None:
        """Begin the replay for a client, once."""
        if "replay" in client.state:
            return
        task = asyncio.ensure_future(self._pump(client, venue))
        client.state["replay"] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.started += 1

    def depth(self, key: str) -> bytes | None:
        """Return the recorded depth snapshot to answer a REST request with."""
        snaps = self.dataset.snapshots.get(key)
        if not snaps:
            return None
        chosen = snaps[0][1]
        for position, body in snaps:
            if position <= self.furthest:
                chosen = body
        return chosen

    def stats(self) -> dict[str, Any]:
        """Return replay counters."""
        return {"dataset": self.dataset.path, "messages": len(self.dataset.lines),
                "clients_started": self.started, "clients_finished": self.finished,
                "sent": self.sent, "furthest_position": self.furthest, "speed": self.speed}

    async def _pump(self, client: Client, venue: Any) -> None:
        loop = asyncio.get_running_loop()
        router = DiffRouter(venue.faults)
        lines = self.dataset.lines
        t0 = loop.time()
        ts0 = lines[0].ts if lines else 0.0
        okx = self.dataset.style == "okx"
        for position, line in enumerate(lines):
            if client.closed:
                return
            if self.speed:
                delay = (line.ts - ts0) / self.speed - (loop.time() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
            elif client.queue.qsize() > 1000:
                while client.queue.qsize() > 100 and not client.closed:
                    await asyncio.sleep(0.001)
            elif position % 200 == 0:
                await asyncio.sleep(0)
            self.furthest = max(self.furthest, position)
            if line.stream not in client.streams:
                continue
            frame = line.frame if (okx or client.wrap) else line.raw
            if okx and line.stream.startswith("books:") and venue.faults.take("checksum", line.key):
                frame = _flip_checksum(frame)
            self.sent += 1
            if not line.diff:
                client.push(line.key, frame)
                continue
            router.route(line.key, frame, lambda f, k=line.key: client.push(k, f),
                         lambda kind, ln=line: self._bad(venue, client, ln, kind))
        self.finished += 1

    @staticmethod
    def _bad(venue: Any, client: Client, line: Line, kind: str) -> bytes:
        bad = venue.bad_frame(line.key, kind)
        if client.wrap and venue.name != "okx":
            return wrap_combined(line.stream, bad)
        return bad


def _flip_checksum(frame: bytes) -> bytes:
    msg = orjson.loads(frame)
    for d in msg.get("data", ()):
        if "checksum" in d:
            d["checksum"] ^= 1
    return orjson.dumps(msg)
