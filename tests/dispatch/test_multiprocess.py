"""Real processes: two ingest-ring writers, `python -m dispatch`, three consumers
(one reading fast, one slowly, one killed mid-stream)."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from events import Kind, Provider, instrument_id

from ..conftest import REPO

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(60)]
N = 300  # records per stream and provider


def spawn(reap, run_ctx, *args, stdin=True):
    p = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env={**_env(), **run_ctx.env()},
                         stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    reap.append(p)
    return p


def _env():
    import os
    return dict(os.environ)


def expect(p, line: str):
    got = p.stdout.readline().decode().strip()
    if got != line:
        p.kill()
        raise AssertionError(f"{p.args}: expected {line!r}, got {got!r}; "
                             f"stderr: {p.stderr.read().decode()[-2000:]}")


def tell(p, line: str = "go"):
    p.stdin.write(line.encode() + b"\n")
    p.stdin.flush()


def test_dispatch_orders_dedups_merges_and_fans_out_to_three_consumer_processes(run_ctx, reap, tmp_path):
    d = spawn(reap, run_ctx, "dispatch", "--telemetry", "", "--ring-capacity", "256",
              "--merge-window-ms", "300", "--instruments", "BTC-USDT,ETH-USDT", stdin=False)
    assert d.stderr.readline().startswith(b"dispatch: run=")
    feeders = {slug: spawn(reap, run_ctx, "tests.dispatch.procs", "feeder", slug, str(N))
               for slug in ("okx", "binance-spot")}
    for f in feeders.values():
        expect(f, "ready")
    outs = {name: tmp_path / f"{name}.json" for name in ("fast", "slow", "victim")}
    cons = {name: spawn(reap, run_ctx, "tests.dispatch.procs", "consumer", name,
                        "slow" if name == "slow" else "fast", str(outs[name]))
            for name in outs}
    for c in cons.values():
        expect(c, "ready")
    time.sleep(0.3)  # dispatch lists the namespace every 100 ms
    for f in feeders.values():
        tell(f)
    for f in feeders.values():
        expect(f, "half")
    victim = cons.pop("victim")
    victim.kill()
    victim.wait()
    for f in feeders.values():
        expect(f, "done")
    deadline = time.monotonic() + 5
    while "consumer.victim.md" in run_ctx.namespace.names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "consumer.victim.md" not in run_ctx.namespace.names(), "dead consumer not released"
    time.sleep(0.5)  # the last merge window closes; held records are flushed
    for c in cons.values():
        tell(c, "stop")
    for c in cons.values():
        assert c.wait(15) == 0, c.stderr.read().decode()
    assert d.poll() is None, "dispatch died"
    fast, slow = (orjson.loads(outs[n].read_bytes()) for n in ("fast", "slow"))

    streams = {f"{int(p)}:{instrument_id(s)}:{int(k)}" for p in (Provider.OKX, Provider.BINANCE_SPOT)
               for s in ("BTC-USDT", "ETH-USDT") for k in (Kind.BOOK, Kind.TRADE, Kind.TICKER)}
    assert all(r["ok"] for r in fast["results"] + slow["results"])
    # the fast consumer: everything, once, in order per stream, despite reorders and duplicates
    assert fast["out_of_order"] == []
    assert fast["count"] == {s: N for s in streams}
    assert fast["merged"] and all(m["n_legs"] == 2 for m in fast["merged"])
    assert len({m["merge_id"] for m in fast["merged"]}) == len(fast["merged"])
    # the slow consumer: never out of order; books and tickers end at their latest state
    assert slow["out_of_order"] == []
    for key, seq in slow["last"].items():
        if int(key.split(":")[2]) in (Kind.BOOK, Kind.TICKER):
            assert seq == N, (key, seq)
    slow_trades = sum(n for k, n in slow["count"].items() if int(k.split(":")[2]) == Kind.TRADE)
    assert slow_trades < 4 * N  # some trades were dropped for it, not for the fast one
    assert slow["critical"] >= 6 and fast["critical"] >= 6  # every ack and result arrived
    for f in feeders.values():
        tell(f, "close")
        assert f.wait(10) == 0
    d.terminate()
    assert d.wait(10) == 0
    assert not [n for n in run_ctx.namespace.names() if n.startswith("consumer.")]
    dlq = (run_ctx.run_dir / "dlq")
    assert any(b"fanout.trade_dropped" in p.read_bytes() for p in dlq.glob("dispatch.*"))
