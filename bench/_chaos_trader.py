"""The chaos scenario's strategy: a consumer that trades without pause and keeps every
exec report it is handed. Run by the launcher (restarted when it dies):

    python -m bench._chaos_trader --name trader [--rate 10] [--symbol BTC-USDT]

It registers with dispatch (market data of `--symbol` on binance-spot; trading switch
on) and sends, in a cycle of five, `tr-<i>`:

    i % 5 == 0   GTC buy far below the market          -> ACK, rests
    i % 5 == 1   IOC buy far above the market          -> FILLED (at the best asks)
    i % 5 == 2   FOK buy far below the market          -> EXPIRED
    i % 5 == 3   market sell                           -> FILLED
    i % 5 == 4   cancel of tr-<i-4>                    -> CANCELLED (no order of its own)

Prices are fixed (no market move reaches them), so a re-sent command is the same command.

State in `<run_dir>/chaos/`: `<name>.reports` (every exec report handed to it, raw EVENT
records, appended before the SDK's cursor moves on), `<name>.next` (the next i to
send). After a restart it resumes from both: the last record of the log is the
exec_seq it resumes after, and it sends command i again (execution answers
"duplicate" if it got in before the kill). A command that gets no answer (execution
restarting) is sent again with the same id. Once `<name>.stop` exists it sends no new
command and writes `<name>.done` holding the number of commands sent; it keeps reading
reports until killed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import numpy as np
import orjson

from consumer import Consumer
from consumer.orders import OrderClient
from events import EVENT, PeerGone
from events.records import RECORD_BYTES
from core.run import RunContext

QTY = "0.001"
LOW, HIGH = "30000", "130000"   # BTC-USDT of the simulator starts at 65000


def command(oc: OrderClient, i: int) -> dict:
    coid = f"tr-{i}"
    step = i % 5
    if step == 0:
        return oc.submit_limit(coid, "BTC-USDT", "buy", QTY, LOW, tif="GTC")
    if step == 1:
        return oc.submit_limit(coid, "BTC-USDT", "buy", QTY, HIGH, tif="IOC")
    if step == 2:
        return oc.submit_limit(coid, "BTC-USDT", "buy", QTY, LOW, tif="FOK")
    if step == 3:
        return oc.submit_market(coid, "BTC-USDT", "sell", QTY)
    return oc.cancel(f"tr-{i - 4}")


def orders_of(n_commands: int) -> list[str]:
    """The client order ids of the orders among the first `n_commands` commands."""
    return [f"tr-{i}" for i in range(n_commands) if i % 5 != 4]


def register(name: str, ctx: RunContext, symbol: str) -> Consumer:
    while True:
        try:
            c = Consumer(name, ctx, timeout_s=2.0)
            break
        except PeerGone:  # dispatch starting or restarting
            time.sleep(0.1)
    c.subscribe(symbol, providers=["binance-spot"], kinds=["book"])
    c.set_trading_mode(True)
    return c


def _on_term(*_) -> None:
    """A stop: unregister and close. Later SIGTERMs (a dying launcher sends several) are
    ignored, so none interrupts the cleanup."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench._chaos_trader", description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="trader")
    ap.add_argument("--rate", type=float, default=10.0, help="commands per second")
    ap.add_argument("--symbol", default="BTC-USDT")
    a = ap.parse_args(sys.argv[1:] if argv is None else argv)
    ctx = RunContext.from_env()
    log_path = ctx.path("chaos", f"{a.name}.reports")
    next_path = ctx.path("chaos", f"{a.name}.next")
    fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    whole = os.fstat(fd).st_size // RECORD_BYTES
    os.ftruncate(fd, whole * RECORD_BYTES)  # a record torn by a kill mid-write is dropped
    last = 0
    if whole:
        last = int(np.frombuffer(os.pread(fd, RECORD_BYTES, (whole - 1) * RECORD_BYTES), EVENT)[0]["exec"]["exec_seq"])
    i = int(next_path.read_text()) if next_path.exists() else 0
    signal.signal(signal.SIGTERM, _on_term)
    c = register(a.name, ctx, a.symbol)
    oc = OrderClient(c, run=ctx, timeout_s=1.0, resume_from=last)
    print(f"trader {a.name}: pid {os.getpid()}, resuming at command {i}, after exec_seq {last}", flush=True)
    try:
        loop(a, ctx, c, oc, fd, i)
    finally:
        oc.close()
        c.close()
    return 0


def loop(a, ctx: RunContext, c: Consumer, oc: OrderClient, fd: int, i: int) -> None:
    next_path = ctx.path("chaos", f"{a.name}.next")
    stop_path, done_path = ctx.path("chaos", f"{a.name}.stop"), ctx.path("chaos", f"{a.name}.done")
    period, t_next = 1.0 / a.rate, time.monotonic()
    while True:
        c.events(1024)  # keeps its ring drained; re-registers by itself after a dispatch restart
        if stop_path.exists():
            if not done_path.exists():
                done_path.write_text(f"{i}\n")
        elif time.monotonic() >= t_next and c.trading_enabled:
            try:
                reply = command(oc, i)
            except PeerGone:
                reply = None  # execution restarting: the same command again, soon
            if reply is not None:
                if reply.get("status") not in ("accepted", "duplicate") and i % 5 != 4:
                    with open(ctx.path("chaos", f"{a.name}.unexpected"), "ab") as f:
                        f.write(orjson.dumps({"i": i, "reply": reply}) + b"\n")
                i += 1
                tmp = next_path.with_name(next_path.name + ".tmp")
                tmp.write_text(str(i))
                os.replace(tmp, next_path)
                t_next = max(t_next + period, time.monotonic() - period)
        try:
            reports = oc.poll_reports(timeout_s=0.02)
        except PeerGone:
            reports = ()
        if len(reports):
            os.write(fd, reports.tobytes())


if __name__ == "__main__":
    sys.exit(main())
