"""A restarted dispatch starts every stream with its current book: through the real
processes, on a quiet market (the simulator steps only when the test says so), a
consumer that registers after dispatch was SIGKILLed and restarted receives the book
of each venue that was current before the kill, flagged REPLAYED, and no old trade."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
import orjson
import pytest

from bench._chaos_harness import VENUES, PipelineRun
from consumer import Consumer
from events import HeaderFlag, Kind, PeerGone, Provider, concat, instrument_id

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(180)]

BTC = instrument_id("BTC-USDT")
PROVIDERS = {int(Provider.from_slug(v)) for v in VENUES}
REPLAYED = int(HeaderFlag.REPLAYED)


def step(run: PipelineRun, count: int = 1) -> bool:
    """Advance the simulated market `count` steps (every venue, every instrument)."""
    url = run.pipeline.endpoints[VENUES[0]]["rest"] + "/_sim/step"
    req = urllib.request.Request(url, data=orjson.dumps({"count": count}), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()
    return True


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """A pipeline whose market moves only on `step` (rate 0), stepped until it runs."""
    run = PipelineRun(tmp_path_factory.mktemp("quiet"), rate=0.0, orders=False)
    try:
        run.pipeline.start()
        run.wait_until(lambda: step(run) and run.ready(), 60,
                       "the pipeline to run with books of every venue", step_s=0.2)
        yield run
    finally:
        run.stop()
        assert run.left_after_stop == [], f"segments left after stop: {run.left_after_stop}"


def btc_md(c: Consumer) -> np.ndarray:
    b = c.events(4096, timeout_s=0.05)
    return b[(b["instrument"] == BTC) & np.isin(b["provider"], list(PROVIDERS))]  # a copy


def test_a_consumer_of_a_restarted_dispatch_gets_the_current_books_and_no_old_trades(quiet):
    run = quiet
    with Consumer("e2e-state-a", run.ctx) as a:
        assert a.subscribe("BTC-USDT").ok
        got: list[np.ndarray] = []
        step(run, 30)                                  # books, tickers and trades of every venue
        run.wait_until(lambda: got.append(btc_md(a)) or has(got, Kind.TRADE, PROVIDERS), 30,
                       "trades of BTC-USDT from every venue", step_s=0)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.0:    # then nothing moves: read what is left
            b = btc_md(a)
            if len(b):
                got.append(b)
                quiet_since = time.monotonic()
        seen = concat(got)
        books = seen[seen["kind"] == Kind.BOOK]
        last_book = {p: int(books["event_id"][books["provider"] == p][-1]) for p in PROVIDERS}

    k = run.kill("dispatch")
    run.wait_respawn(k)
    b = registered(run, "e2e-state-b")
    try:
        assert b.subscribe("BTC-USDT").ok
        after: list[np.ndarray] = []
        run.wait_until(lambda: after.append(btc_md(b)) or has(after, Kind.BOOK, PROVIDERS), 20,
                       "books of BTC-USDT from every venue after the restart", step_s=0)
        md = concat(after)
        assert not (md["kind"] == Kind.TRADE).any(), "old trades were replayed"
        for p in PROVIDERS:
            first = md[(md["kind"] == Kind.BOOK) & (md["provider"] == p)][0]
            assert int(first["flags"]) & REPLAYED, (p, int(first["flags"]))
            assert int(first["event_id"]) == last_book[p]  # the book current before the kill
    finally:
        b.close()


def has(batches: list, kind: Kind, providers) -> bool:
    md = concat(batches)
    return providers <= set(md["provider"][md["kind"] == kind].tolist())


def registered(run: PipelineRun, name: str, timeout_s: float = 30.0) -> Consumer:
    """A consumer registered with the dispatch running now (it may still be starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        run.poll()
        try:
            return Consumer(name, run.ctx, timeout_s=1.0)
        except PeerGone:
            if time.monotonic() > deadline:
                raise
