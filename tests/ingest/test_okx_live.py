"""OKX live, against the simulator speaking today's OKX (no WS snapshot, checksum 0, REST
books with seqId): `python -m ingest --venue okx` syncs from REST snapshots; a gap is
healed by a REST snapshot of that instrument alone, with no subscribe or unsubscribe
after the start (the simulator counts every request)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events import EVENT, HeaderFlag, Kind, Provider, instrument_id
from shm import RingReader

from .helpers import flowing, new_reasons, recovered

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
RECOVERY_S = 5.0


@pytest.fixture
def make_sim():
    from simulator import Simulator
    started = []

    def make(**kw):
        kw.setdefault("instruments", 2)
        kw.setdefault("rate", 0)
        s = Simulator(venues=["okx"], seed=11, **kw).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def okx_stats(sim) -> dict:
    return sim.stats()["okx"]


def test_python_m_ingest_syncs_okx_books_from_rest_and_trades_and_tickers_flow(run_ctx, reap, make_sim):
    sim = make_sim(rate=50)
    ep = sim.endpoints["okx"]
    env = {**os.environ, **run_ctx.env(), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--venue", "okx", "--symbols", ",".join(SYMBOLS),
                             "--rest-url", ep["rest"], "--ws-url", ep["ws"]],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    reap.append(proc)
    deadline = time.monotonic() + 30
    while "md.okx" not in run_ctx.namespace.names():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "ring md.okx never appeared"
        time.sleep(0.05)
    reader = RingReader.attach(run_ctx.namespace, "md.okx", EVENT, start="oldest")
    seen: dict[tuple[int, int], list[int]] = {}
    want = {(int(k), instrument_id(s)) for k in (Kind.BOOK, Kind.TRADE, Kind.TICKER) for s in SYMBOLS}
    try:
        while not want <= set(seen) or min(len(seen[w]) for w in want) < 3:
            assert time.monotonic() < deadline, f"records so far: { {k: len(v) for k, v in seen.items()} }"
            for rec in reader.wait_read(1024, timeout_s=0.5):
                assert rec["provider"] == Provider.OKX
                if rec["kind"] == Kind.BOOK:
                    b = rec["book"]
                    assert b["n_bids"] > 0 and b["n_asks"] > 0 and b["bid_px"][0] < b["ask_px"][0]
                seen.setdefault((int(rec["kind"]), int(rec["instrument"])), []).append(int(rec["flags"]))
            reader.release()
    finally:
        reader.close()
    for s in SYMBOLS:   # each book starts from the REST snapshot
        assert seen[(int(Kind.BOOK), instrument_id(s))][0] & HeaderFlag.SNAPSHOT
    stats = okx_stats(sim)
    assert stats["options"]["ws_snapshot"] == 0 and stats["options"]["checksum"] is False
    assert all(stats["books_requests"].get(s, 0) >= 1 for s in SYMBOLS)
    assert stats["ws_ops"] == {"subscribe": 1, "unsubscribe": 0}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, proc.stderr.read().decode()


@pytest.mark.parametrize("ws_snapshot", [0.0, 1.0], ids=["today", "with-ws-snapshot"])
def test_an_okx_gap_is_healed_by_a_rest_snapshot_of_that_instrument_alone(run_ctx, make_sim, ws_snapshot):
    sim = make_sim(okx={"ws_snapshot": ws_snapshot})
    btc, eth = SYMBOLS
    with flowing(run_ctx, sim, "okx", SYMBOLS) as ing:
        # a WS snapshot syncs a book before the REST answer asked at connect comes
        ing.pump(lambda: not ing.proc.adapter.snapshots.requested, what="the start-up snapshots answered")
        before = okx_stats(sim)
        k0 = ing.books(btc)
        sim.inject("okx", "gap", symbol=btc)
        ing.pump(lambda: recovered(ing, btc, "gap"), what="BTC resynced after the gap")
        assert recovered(ing, btc, "gap")[0][2] < RECOVERY_S * 1e9
        n_btc, n_eth = ing.books(btc), ing.books(eth)
        ing.pump(lambda: ing.books(btc) > n_btc + 2 and ing.books(eth) > n_eth + 2, what="books after")
        after = okx_stats(sim)
        assert new_reasons(ing) == {"gap": 1}
        assert after["ws_ops"] == before["ws_ops"] == {"subscribe": 1, "unsubscribe": 0}
        assert after["books_requests"][btc] == before["books_requests"][btc] + 1
        assert after["books_requests"][eth] == before["books_requests"][eth]
        btc_flags = [f for _, f in ing.seen[(int(Kind.BOOK), ing.ids[btc])][k0:]]
        assert sum(1 for f in btc_flags if f & HeaderFlag.RESYNCED) == 1


def test_an_okx_seq_reset_is_followed_without_a_resync(run_ctx, make_sim):
    sim = make_sim()
    btc, _ = SYMBOLS
    with flowing(run_ctx, sim, "okx", SYMBOLS) as ing:
        k0 = ing.books(btc)
        sim.inject("okx", "seq_reset", symbol=btc)
        ing.pump(lambda: any(f & HeaderFlag.RESYNCED for _, f in ing.seen[(int(Kind.BOOK), ing.ids[btc])][k0:]),
                 what="the book after the reset")
        n = ing.books(btc)
        ing.pump(lambda: ing.books(btc) > n + 2, what="books after the reset")
        got = ing.seen[(int(Kind.BOOK), ing.ids[btc])]
        at = next(i for i in range(k0, len(got)) if got[i][1] & HeaderFlag.RESYNCED)
        seqs = [q for q, _ in got[at - 1:]]
        assert seqs[1] < seqs[0] and seqs[1:] == sorted(seqs[1:])   # down once, then on
        assert new_reasons(ing) == {} and okx_stats(sim)["ws_ops"]["unsubscribe"] == 0


def test_an_okx_snapshot_behind_the_stream_is_fetched_again(run_ctx, make_sim):
    sim = make_sim()
    btc, _ = SYMBOLS
    with flowing(run_ctx, sim, "okx", SYMBOLS) as ing:
        ing.pump(lambda: okx_stats(sim)["symbols"][btc]["updates"] > 60, what="50 updates of history")
        sim.inject("okx", "stale_snapshot", symbol=btc, lag=50)
        sim.inject("okx", "gap", symbol=btc)
        ing.pump(lambda: recovered(ing, btc, "snapshot_behind"), what="resynced after a stale snapshot")
        assert new_reasons(ing) == {"gap": 1, "snapshot_behind": 1}
        assert okx_stats(sim)["ws_ops"] == {"subscribe": 1, "unsubscribe": 0}
