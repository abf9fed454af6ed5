"""cryptofeed 3.0's feed handlers over the recorded frames: the child of `bench ingest`.

Benchmark-only code, run by a Python >= 3.13 interpreter from the environment that
`bench/_cryptofeed3.py` builds (cryptofeed 3.0 needs 3.13): it imports only cryptofeed
and the standard library, never this project. It reads the recordings itself from
`--data` (the same files `ingest.replay.load` reads, re-serialized the same compact
way) and drives cryptofeed's handlers exactly as `bench/ingest.py` drives 2.4: each
WebSocket frame, as str, through `feed.message_handler`, the Binance REST snapshot
primed from the recording, callbacks that do nothing.

Protocol (one JSON object per line on stdout):
    start        -> {"ready": ..., "version", "python", frame counts and sha256 of the
                     frames (the parent compares them with its own), the checks on}
    stdin "binance"   -> {"cpu", "wall", "top": [bid, ask]} for one pass
    stdin "okx N"     -> the same for N passes, each from a fresh feed
    stdin "quit" or EOF ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import logging
import sys
import time
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

from cryptofeed.defines import BINANCE, L2_BOOK, TICKER, TRADES
from cryptofeed.defines import OKX as OKX_ID
from cryptofeed.exchanges import OKX as OkxFeed
from cryptofeed.exchanges import Binance
from cryptofeed.symbols import Symbols
from cryptofeed.types import OrderBook

ETH = "binance_spot_ethusdt_2024-08-08_hftbacktest"
OKX = "okx_2022-05-13_cryptofeed"


def _dataset_file(path: Path) -> Path:
    for name in ("messages.jsonl.gz", "messages.jsonl"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"no messages.jsonl[.gz] under {path}")


def load(path: Path) -> tuple[list[str], list[dict]]:
    """(WebSocket frames as compact JSON text, REST payloads) in recorded order."""
    f = _dataset_file(path)
    opener = gzip.open if f.suffix == ".gz" else open
    frames, rest = [], []
    with opener(f, "rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            rec = json.loads(raw)
            if rec.get("src") == "rest":
                rest.append(rec["payload"])
            else:
                frames.append(json.dumps(rec["payload"], separators=(",", ":"), ensure_ascii=False))
    return frames, rest


def digest(frames: list[str]) -> str:
    h = hashlib.sha256()
    for f in frames:
        h.update(f.encode())
        h.update(b"\n")
    return h.hexdigest()


async def _noop(*_args):
    return None


_CALLBACKS = {L2_BOOK: _noop, TRADES: _noop, TICKER: _noop}


def make_binance(snap: dict):
    Symbols.set(BINANCE, {"ETH-USDT": "ETHUSDT"}, {"tick_size": {}, "instrument_type": {"ETH-USDT": "spot"}})
    feed = Binance(symbols=["ETH-USDT"], channels=[L2_BOOK, TRADES, TICKER], callbacks=dict(_CALLBACKS))

    async def snapshot(pair: str) -> None:  # the recorded REST answer instead of HTTP
        std = feed.exchange_symbol_to_std_symbol(pair)
        feed.last_update_id[std] = snap["lastUpdateId"]
        feed._l2_book[std] = OrderBook(feed.id, std, max_depth=feed.max_depth,
                                       bids={Decimal(p): Decimal(q) for p, q in snap["bids"]},
                                       asks={Decimal(p): Decimal(q) for p, q in snap["asks"]})

    feed._snapshot = snapshot
    return feed, lambda: feed._l2_book["ETH-USDT"].book


def make_okx():
    mapping = {"BTC-USD-220527": "BTC-USD-220527", "UNI-USD-PERP": "UNI-USD-SWAP", "BTC-USDT": "BTC-USDT"}
    kinds = {"BTC-USD-220527": "futures", "UNI-USD-PERP": "perpetual", "BTC-USDT": "spot"}
    Symbols.set(OKX_ID, mapping, {"tick_size": {}, "instrument_type": kinds})
    feed = OkxFeed(symbols=list(mapping), channels=[L2_BOOK, TRADES, TICKER], checksum_validation=True,
                   callbacks=dict(_CALLBACKS))
    return feed, lambda: feed._l2_book["BTC-USDT"].book


async def timed(make, frames: list[str], passes: int) -> dict:
    wall = cpu = 0.0
    book = None
    for _ in range(passes):
        feed, get_book = make()
        handler = feed.message_handler
        w0, c0 = time.perf_counter(), time.process_time()
        for f in frames:
            await handler(f, None, 0.0)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        book = get_book()
    return {"cpu": cpu, "wall": wall, "top": [str(book.bids.index(0)[0]), str(book.asks.index(0)[0])]}


def checks(feed) -> dict:
    """What the handler checks, read from cryptofeed itself."""
    return {"checksum_validation": bool(feed.checksum_validation),
            "checks_binance_update_ids": callable(getattr(feed, "_check_update_id", None)),
            "provides_checksum": bool(getattr(feed, "provides_checksum", False)),
            "validates_sequence_number": bool(getattr(feed, "validates_sequence_number", False))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    args = ap.parse_args()
    logging.getLogger("cryptofeed").setLevel(logging.CRITICAL)  # its "unexpected message" warnings
    eth_frames, eth_rest = load(args.data / ETH)
    okx_frames, _ = load(args.data / OKX)
    snap = eth_rest[0]
    binance = lambda: make_binance(snap)  # noqa: E731
    out = sys.stdout
    print(json.dumps({
        "ready": True, "version": version("cryptofeed"),
        "python": sys.version.split()[0],
        "binance_frames": len(eth_frames), "okx_frames": len(okx_frames),
        "binance_sha256": digest(eth_frames), "okx_sha256": digest(okx_frames),
        "binance_checks": checks(binance()[0]),
        "okx_checks": {**checks(make_okx()[0]),  # its sequence check needs seqId in the frames
                       "frames_with_seqId": sum('"seqId"' in f for f in okx_frames)},
    }), file=out, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "binance":
            res = asyncio.run(timed(binance, eth_frames, 1))
        elif cmd[0] == "okx":
            res = asyncio.run(timed(make_okx, okx_frames, int(cmd[1])))
        else:
            res = {"error": f"unknown command {cmd[0]!r}"}
        print(json.dumps(res), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
