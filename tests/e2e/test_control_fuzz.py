"""The whole pipeline while both control sockets are fuzzed for 10 s (issue 11): no program
restarts, market data keeps reaching the monitor every second, and the demo strategy keeps
its registration. The frames: the issue's, random bytes, valid requests cut and mutated,
oversized ones and bursts nobody reads (seeded: the same frames every run)."""

from __future__ import annotations

import random
import time

import orjson
import pytest
import zmq

from bench._chaos_harness import Operator
from channels.names import dispatch_endpoint, execution_endpoint

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(150)]

VALID = [{"cmd": "register", "request_id": 1, "consumer": "demo", "pid": 1},
         {"cmd": "subscribe", "request_id": 2, "consumer": "x", "symbol": "BTC-USDT", "providers": ["okx"]},
         {"cmd": "new_order", "request_id": 3, "consumer": "demo", "client_order_id": "f-1", "symbol": "BTC-USDT",
          "side": "buy", "type": "limit", "tif": "GTC", "qty": "0.1", "price": "100"},
         {"cmd": "set_trading_mode", "request_id": 4, "consumer": "demo", "enabled": True},
         {"cmd": "status", "request_id": 5}]
ISSUE = [b'{"cmd":{"x":1},"request_id":1,"consumer":"x"}', b'{"cmd":["register"],"request_id":1}']


def frames(rng: random.Random):
    while True:
        k = rng.random()
        if k < 0.1:
            yield rng.choice(ISSUE)
        elif k < 0.4:
            yield rng.randbytes(rng.randint(0, 300))
        elif k < 0.8:
            msg = dict(rng.choice(VALID))
            key = rng.choice([*msg, "zz"])
            msg[key] = rng.choice([None, -1, 2**70, "", "x" * 100, [1], {"a": []}, True, f"cmd-{rng.random()}"])
            raw = _dumps(msg)
            yield raw[: rng.randint(1, len(raw))] if rng.random() < 0.2 else raw
        elif k < 0.98:
            yield orjson.dumps({"cmd": f"cmd-{rng.randrange(10**9)}", "request_id": rng.randrange(10**6)})
        else:
            yield b" " * rng.choice([20_000, 2_000_000])  # past the parse bound; past the socket bound


def _dumps(msg: dict) -> bytes:
    try:
        return orjson.dumps(msg)
    except TypeError:  # an int beyond 64 bits: orjson refuses, a hand-made frame does not
        return repr(msg).replace("'", '"').replace("None", "null").replace("True", "true").encode()


def test_ten_seconds_of_fuzz_on_both_sockets_restart_nothing_and_stop_no_market_data(pipeline):
    ctx = pipeline.ctx
    socks = []
    for endpoint in (dispatch_endpoint(ctx.run_dir), execution_endpoint(ctx.run_dir)):
        for reads in (True, False):  # a fuzzer that reads its answers, and one that never does
            s = zmq.Context.instance().socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 100_000)
            s.connect(endpoint)
            socks.append((s, reads))
    mon = pipeline.pipeline.monitor
    rng = random.Random(11)
    gen = frames(rng)
    venues = pipeline.pipeline.venues

    def books() -> dict[str, int]:
        counts = mon.snapshot()["counts"]
        return {v: counts.get(f"{v}/book", 0) for v in venues}

    seen, stalls, sent = books(), [], 0
    start = time.monotonic()
    next_check = start + 1.0
    try:
        while time.monotonic() - start < 10.0:
            frame = next(gen)
            for s, reads in socks:
                try:
                    s.send(frame, zmq.NOBLOCK)
                except zmq.Again:
                    pass
                if reads:
                    while s.poll(0):
                        s.recv()
            sent += 1
            if sent % 50 == 0:
                pipeline.poll()
                time.sleep(0.001)
            if time.monotonic() >= next_check:  # every second, books of every venue came
                now = books()
                stalls += [v for v in venues if now[v] <= seen[v]]
                seen, next_check = now, next_check + 1.0
    finally:
        for s, _ in socks:
            s.close(0)
    pipeline.poll()
    assert sent > 1000
    assert pipeline.pipeline.launcher.restarts() == {name: 0 for name in pipeline.pipeline.launcher.restarts()}
    assert pipeline.respawned == {}
    assert stalls == [], f"seconds without books: {stalls}"
    states = {s["name"]: s["state"] for s in pipeline.pipeline.launcher.states()}
    assert set(states.values()) == {"running"}, states
    listing = pipeline.wait_until(lambda: Operator(ctx).consumers(), 5, "dispatch's listing of its consumers")
    assert {"demo", "monitor"} <= set(listing), sorted(listing)
