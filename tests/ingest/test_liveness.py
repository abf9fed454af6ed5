"""Liveness by data: each stream kind's watchdog looks at its own data, never at pings.

Unit tests drive `ingest.liveness.Liveness` with a fake clock; the live ones run an
IngestProcess against the simulator (real loopback WebSockets) and stall what the
venue sends while it keeps answering pings.
"""

from __future__ import annotations

import time

import pytest

from events import Kind
from ingest.liveness import Liveness, parse_silence

from .helpers import FakeClock, S, flowing, new_reasons, recovered


class FakeFeed:
    def __init__(self, kinds):
        self.kinds = kinds
        self.ws = object()
        self.lost: list[str] = []

    def lose(self, reason: str) -> None:
        self.lost.append(reason)


class FakeStream:
    last_book_ns = 0


def rig(silence):
    clock = FakeClock()
    public, market = FakeFeed(("book", "ticker")), FakeFeed(("trade",))
    streams = [FakeStream(), FakeStream()]
    counts = {"book": 0, "trade": 0, "ticker": 0}
    live = Liveness(silence, {"book": public, "ticker": public, "trade": market}, streams,
                    lambda: counts, clock)
    for f in (public, market):
        live.adopted(f, clock())
    return clock, live, public, market, streams, counts


def test_a_silent_trade_stream_drops_its_connection_while_books_flow():
    clock, live, public, market, streams, counts = rig({"book": 3, "ticker": 3, "trade": 2})
    for _ in range(30):                  # 3 s of books and tickers, no trade
        clock.advance(0.1)
        streams[0].last_book_ns = clock()
        counts["ticker"] += 1
        live.check(clock())
    assert public.lost == []
    assert len(market.lost) == 1 and market.lost[0].startswith("no trade data for 2.")
    assert live.silences == {"trade": 1}


def test_one_quiet_instrument_is_no_silence_and_zero_turns_a_kind_off():
    clock, live, public, market, streams, counts = rig({"book": 1, "ticker": 0, "trade": 0})
    for _ in range(50):                  # only the second instrument's book moves
        clock.advance(0.1)
        streams[1].last_book_ns = clock()
        live.check(clock())
    assert public.lost == [] and market.lost == []


def test_the_clock_of_a_kind_starts_again_at_the_adoption_of_a_new_connection():
    clock, live, public, market, streams, counts = rig({"book": 1, "ticker": 0, "trade": 0})
    clock.advance(1.5)
    live.check(clock())
    assert len(public.lost) == 1
    public.ws = None                     # reconnecting: not checked
    clock.advance(5)
    live.check(clock())
    assert len(public.lost) == 1
    public.ws = object()
    live.adopted(public, clock())
    clock.advance(0.5)
    live.check(clock())
    assert len(public.lost) == 1
    clock.advance(0.6)
    live.check(clock())
    assert len(public.lost) == 2


def test_silence_settings_parse_and_reject_what_is_not_a_kind():
    assert parse_silence("book=2, trade=300,ticker=0") == {"book": 2.0, "trade": 300.0, "ticker": 0.0}
    for bad in ("depth=1", "book", "book=-1", "book=x"):
        with pytest.raises(ValueError):
            parse_silence(bad)


# -- live, against the simulator --------------------------------------------------------



@pytest.fixture
def sim():
    from simulator import Simulator
    s = Simulator(venues=["binance-spot", "binance-usdm"], instruments=2, rate=0, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.multiprocess
@pytest.mark.timeout(60)
def test_usdm_runs_one_connection_per_category_and_gets_books_tickers_and_trades(run_ctx, sim):
    with flowing(run_ctx, sim, "binance-usdm", ["BTCUSDT", "ETHUSDT"]) as ing:
        ing.pump(lambda: all(ing.count(Kind.TRADE, vs) >= 3 and ing.count(Kind.TICKER, vs) >= 3
                             for vs in ("BTCUSDT", "ETHUSDT")), what="trades and tickers")
        assert sorted(f.url.split("/stream?")[0].rsplit("/", 1)[1] for f in ing.proc.feeds) == \
            ["market", "public"]
        assert sim.stats()["binance-usdm"]["connections"] == 2
        assert ing.proc.report.bad_frames == 0


@pytest.mark.multiprocess
@pytest.mark.timeout(60)
def test_a_silent_usdm_trade_stream_is_detected_and_healed_while_books_flow(run_ctx, sim):
    with flowing(run_ctx, sim, "binance-usdm", ["BTCUSDT", "ETHUSDT"], silence={"trade": 1.0}) as ing:
        ing.pump(lambda: ing.count(Kind.TRADE, "BTCUSDT") >= 3, what="trades")
        sim.inject("binance-usdm", "stall", category="market", seconds=60, drop=True)
        ing.pump(lambda: ing.proc.liveness.silences.get("trade"), what="the trade silence noticed")
        n = ing.count(Kind.TRADE, "BTCUSDT") + ing.count(Kind.TRADE, "ETHUSDT")
        ing.pump(lambda: ing.count(Kind.TRADE, "BTCUSDT") + ing.count(Kind.TRADE, "ETHUSDT") > n + 3,
                 what="trades again on a new /market connection")
        assert new_reasons(ing) == {}             # the books' connection was never touched
        assert ing.proc.liveness.silences == {"trade": 1}
        assert ing.counter("ingest.silence", provider="binance-usdm", kind="trade") == 1
        assert ing.proc.report.reconnects >= 1


@pytest.mark.multiprocess
@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", ["binance-spot", "binance-usdm"])
def test_a_stalled_feed_that_answers_pings_is_reconnected_and_resynced_within_five_seconds(
        run_ctx, sim, venue):
    # venue defaults for liveness; pings every 0.2 s, answered by the stalled server. (USD-M's
    # /market connection carries trades only: a quiet market's trades are no signal, so its
    # default threshold is long, see the test above for a short one.)
    with flowing(run_ctx, sim, venue, ["BTCUSDT", "ETHUSDT"], ping_interval_s=0.2,
                 stale_after_s=1.0, watchdog_s=30.0) as ing:
        t0 = time.monotonic()
        sim.inject(venue, "stall", seconds=60, drop=True)
        ing.pump(lambda: all(recovered(ing, ing.sym[vs], "reconnect") for vs in ("BTCUSDT", "ETHUSDT")),
                 what="both books resynced after a reconnect")
        healed_s = time.monotonic() - t0
        assert healed_s < 5.0
        silences = ing.proc.liveness.silences      # books and tickers stopped alike: either noticed
        assert silences.get("book", 0) + silences.get("ticker", 0) >= 1
        # timed from the loss of the connection, not from the stale resync that began before
        assert all(r[2] < 1.5 * S for r in ing.proc.report.recoveries if r[1] == "reconnect")
        assert "stale" in new_reasons(ing)
        n = ing.books("BTCUSDT")
        ing.pump(lambda: ing.books("BTCUSDT") > n + 2, what="books again")


@pytest.mark.multiprocess
@pytest.mark.timeout(60)
def test_server_shutdown_reconnects_at_once_and_is_no_bad_input(run_ctx, sim):
    with flowing(run_ctx, sim, "binance-spot", ["BTCUSDT", "ETHUSDT"]) as ing:
        sim.inject("binance-spot", "server_shutdown_streams", seconds=30)
        ing.pump(lambda: len([r for r in ing.proc.report.recoveries if r[1] == "reconnect"]) >= 2,
                 what="both books resynced on a new connection")
        assert ing.proc.report.bad_frames == 0 and ing.proc.dlq.read_all() == []
        assert ing.counter("ws.reconnect", provider="binance-spot") == 1
        assert sim.stats()["binance-spot"]["connections"] == 1   # the old one closed by us


@pytest.mark.multiprocess
@pytest.mark.timeout(60)
def test_pongs_are_no_data_to_the_connection_watchdog(run_ctx, sim):
    # the per-kind watchdogs off: the connection's own watchdog must see the stall alone
    with flowing(run_ctx, sim, "binance-spot", ["BTCUSDT", "ETHUSDT"], ping_interval_s=0.1,
                 watchdog_s=1.0, silence={"book": 0, "trade": 0, "ticker": 0}) as ing:
        sim.inject("binance-spot", "stall", seconds=60, drop=True)     # pings still answered
        ing.pump(lambda: ing.proc.report.reconnects >= 1, what="a watchdog reconnect")
        assert ing.proc.liveness.silences == {}
        ing.pump(lambda: len(recovered(ing, "BTC-USDT", "reconnect")) >= 1, what="BTC resynced")
