"""The Kraken WS v1 adapter, unchanged, against the venue simulator over real loopback WebSockets.

Each test runs an IngestProcess for kraken (threads, real sockets, a real ring) against an
in-process Simulator serving only Kraken, stepped by the test (rate 0): books sync from the
book-1000 snapshot and every update's CRC32 verifies; trades and spreads become TRADE and
TICKER records; a corrupted checksum resubscribes that pair's book and recovers; a
disconnect resyncs both; malformed frames go to the dead-letter queue.
"""

from __future__ import annotations

import pytest

from events import Kind

from .helpers import flowing, new_reasons, recovered

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(60)]

BTC, ETH = "XBT/USDT", "ETH/USDT"
RECOVERY_S = 5.0


@pytest.fixture
def sim():
    from simulator import Simulator
    s = Simulator(venues=["kraken"], instruments=2, rate=0, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


def live(run_ctx, sim, **kw):
    return flowing(run_ctx, sim, "kraken", [BTC, ETH], **kw)


def test_books_sync_with_verified_checksums_and_trades_and_tickers_flow(run_ctx, sim):
    with live(run_ctx, sim) as ing:
        ing.pump(lambda: all(ing.books(vs) >= 30 and ing.count(Kind.TRADE, vs) >= 3
                             and ing.count(Kind.TICKER, vs) >= 3 for vs in (BTC, ETH)),
                 what="books, trades and tickers of both pairs")
        report = ing.proc.report
        assert report.snapshots == 2 and report.checksum_ok >= 50
        assert report.bad_frames == 0 and report.resync_reasons == {}
        assert ing.sym == {BTC: "BTC-USDT", ETH: "ETH-USDT"}
        assert all(s.synced for s in ing.proc.adapter.syncs.values())
        for vs in (BTC, ETH):
            seqs = [q for q, _ in ing.seen[(int(Kind.BOOK), ing.ids[vs])]]
            assert seqs == sorted(set(seqs))                 # strictly increasing
            assert ing.seen[(int(Kind.BOOK), ing.ids[vs])][0][1] & 1  # first record: SNAPSHOT
        stats = sim.stats()["kraken"]
        assert stats["connections"] == 1 and stats["faults"]["applied"] == {}
        # the adapter's book is the simulator's: same top 10 on both sides
        # (the market is not stepped now: once the frames in flight are read, they agree)
        btc = sim.call(lambda: sim.venues["kraken"].feeds["BTC-USDT"].driver.book.top(0, 10))
        ing.pump(lambda: [float(p) for p, _ in ing.proc.adapter.books()["BTC-USDT"]["bids"][:10]]
                 == [p / 100 for p, _ in btc], step=False, timeout_s=5, what="the same top 10")


def test_a_corrupted_checksum_resubscribes_that_book_and_recovers(run_ctx, sim):
    with live(run_ctx, sim) as ing:
        sim.inject("kraken", "checksum", symbol="ETH-USDT")
        ing.pump(lambda: recovered(ing, "ETH-USDT", "checksum"), what="ETH resynced")
        assert recovered(ing, "ETH-USDT", "checksum")[0][2] < RECOVERY_S * 1e9
        assert ing.counter("book.checksum_failed", provider="kraken", symbol="ETH-USDT") == 1
        assert ing.counter("book.resync", provider="kraken", symbol="BTC-USDT", reason="checksum") == 0
        assert new_reasons(ing) == {"checksum": 1}
        assert ing.proc.report.snapshots == 3                # the resubscribe's fresh snapshot
        n_btc, n_eth = ing.books(BTC), ing.books(ETH)
        ing.pump(lambda: ing.books(BTC) > n_btc + 2 and ing.books(ETH) > n_eth + 2, what="books after")
        eth = ing.seen[(int(Kind.BOOK), ing.ids[ETH])]
        assert sum(1 for _, f in eth if f & 2) == 1          # exactly one RESYNCED book
        assert ing.proc.report.bad_frames == 0


def test_a_disconnect_reconnects_and_resyncs_both_books(run_ctx, sim):
    with live(run_ctx, sim) as ing:
        sim.inject("kraken", "disconnect", abrupt=True)
        ing.pump(lambda: ing.proc.report.reconnects >= 1 and len(ing.proc.report.recoveries) >= 2,
                 what="reconnected and both books resynced")
        assert {r[0] for r in ing.proc.report.recoveries} == {"BTC-USDT", "ETH-USDT"}
        assert all(r[2] < RECOVERY_S * 1e9 for r in ing.proc.report.recoveries)
        n_btc, n_eth = ing.books(BTC), ing.books(ETH)
        ing.pump(lambda: ing.books(BTC) > n_btc + 2 and ing.books(ETH) > n_eth + 2, what="books after")


@pytest.mark.parametrize("kind", ["json", "shape"])
def test_malformed_frames_go_to_the_dead_letter_queue_and_the_feed_continues(run_ctx, sim, kind):
    with live(run_ctx, sim) as ing:
        sim.inject("kraken", "malformed", symbol="BTC-USDT", kind=kind, count=2)
        ing.pump(lambda: ing.proc.report.bad_frames >= 2, what="two bad frames")
        n_btc, n_eth = ing.books(BTC), ing.books(ETH)
        ing.pump(lambda: ing.books(BTC) > n_btc + 2 and ing.books(ETH) > n_eth + 2, what="books after")
        assert new_reasons(ing) == {}
        dead = ing.proc.dlq.read_all()
        assert len(dead) == 2
        assert all(d["process"] == "ingest.kraken" and d["reason"] in ("not_json", "bad_input")
                   for d in dead)
