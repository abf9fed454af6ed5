"""Market-data load for chaos tests and the benchmark: a process that reads the simulator's
Binance streams (depth diffs, trades, book tickers) and parses every frame, until killed.

    python -m tests.execution.md_load WS_URL COUNT_FILE SYMBOL...
"""

from __future__ import annotations

import os
import sys
import time

import orjson
import websocket


def main(argv: list[str]) -> int:
    ws_url, count_file, symbols = argv[0], argv[1], [s.lower() for s in argv[2:]]
    streams = "/".join(f"{s}@{k}" for s in symbols for k in ("depth@100ms", "trade", "bookTicker"))
    ws = websocket.create_connection(f"{ws_url}/stream?streams={streams}", timeout=10)
    n = 0
    last = time.monotonic()
    while True:
        orjson.loads(ws.recv())
        n += 1
        if time.monotonic() - last > 0.2:
            last = time.monotonic()
            tmp = count_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(n))
            os.replace(tmp, count_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
