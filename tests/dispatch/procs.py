"""Processes of the multi-process dispatch test: `python -m tests.dispatch.procs ROLE ...`.

    feeder SLUG N          write md.<SLUG>: N records per stream (BTC-USDT and ETH-USDT x
                           book, trade, ticker) after a "go" line on stdin; every 25th step
                           arrives after the next one, every 40th twice; prints "half",
                           "done"; closes its ring on the next stdin line.
    consumer NAME MODE OUT subscribe plainly to BTC-USDT and ETH-USDT and merged to BTC-USDT
                           over okx + binance-spot; print "ready"; read ("fast": all the
                           time, "slow": 16 records per 50 ms) until "stop" on stdin, then
                           drain and write a JSON summary to OUT.
"""

from __future__ import annotations

import sys
import threading
import time

import orjson

from tests.synthetic import records
from events import EVENT, Kind, Provider, concat
from core.run import RunContext
from shm import RingWriter

SYMBOLS = ("BTC-USDT", "ETH-USDT")
KINDS = (Kind.BOOK, Kind.TRADE, Kind.TICKER)


def feeder(slug: str, n: int) -> None:
    provider = int(Provider.from_slug(slug))
    w = RingWriter.create(RunContext.from_env().namespace, f"md.{slug}", EVENT, 4096)
    print("ready", flush=True)
    sys.stdin.readline()
    held = None
    for step in range(1, n + 1):
        if step == n // 2:
            print("half", flush=True)
        chunk = concat(records(provider, s, k, [step], ingest_ts_ns=time.time_ns())
                       for s in SYMBOLS for k in KINDS)
        if step % 25 == 0 and step < n:
            held = chunk        # arrives after the next step's records: reordered
            continue
        w.write_batch(chunk)
        if step % 40 == 0:
            w.write_batch(chunk)  # a duplicate frame
        if held is not None:
            w.write_batch(held)
            held = None
        time.sleep(0.002)
    print("done", flush=True)
    sys.stdin.readline()
    w.close()


def consumer(name: str, mode: str, out: str) -> None:
    from consumer import Consumer

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    with Consumer(name, timeout_s=10) as c:
        results = [c.subscribe(s) for s in SYMBOLS]
        results.append(c.merged_subscribe("BTC-USDT", ["okx", "binance-spot"]))
        last: dict = {}
        summary = {"results": [dict(r) for r in results], "out_of_order": [], "count": {},
                   "last": {}, "merged": [], "critical": 0}
        print("ready", flush=True)

        def take(batch):
            for r in batch:
                kind = int(r["kind"])
                if Kind(kind).critical:
                    summary["critical"] += 1
                    continue
                if kind == Kind.MERGED:
                    m = r["merged"]
                    summary["merged"].append({"n_legs": int(m["n_legs"]), "merge_id": int(m["merge_id"]),
                                              "providers": sorted(int(p) for p in m["legs"]["provider"][: int(m["n_legs"])])})
                    continue
                key = f"{int(r['provider'])}:{int(r['instrument'])}:{kind}"
                seq = int(r["seq_provider"])
                if seq <= last.get(key, 0):
                    summary["out_of_order"].append([key, seq, last[key]])
                last[key] = seq
                summary["count"][key] = summary["count"].get(key, 0) + 1

        while not stop.is_set():
            if mode == "slow":
                take(c.events(16))
                time.sleep(0.05)
            else:
                take(c.events(1024, timeout_s=0.05))
        deadline = time.monotonic() + 3
        quiet = 0
        while time.monotonic() < deadline and quiet < 10:  # drain what is left
            b = c.events(1024, timeout_s=0.05)
            quiet = 0 if len(b) else quiet + 1
            take(b)
        summary["last"] = last
        summary["filtered"] = c.filtered
    with open(out, "wb") as f:
        f.write(orjson.dumps(summary))


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "feeder":
        feeder(args[0], int(args[1]))
    else:
        consumer(*args)
