"""OKX books: the checksum rule (docs vectors), seqId continuity, a REST snapshot of that
instrument alone on failure (never a resubscribe). The REST procedure itself: test_okx_sync."""

from __future__ import annotations

import orjson
import pytest

from events import HeaderFlag, Kind, Provider
from ingest.stream import Timers
from venues.okx import check_text, signed_crc32, to_canonical, to_venue

from .helpers import S, Rig, okx_books, okx_checksum_of

pytestmark = pytest.mark.timeout(30)

BIDS = [["3366.1", "7"], ["3366", "6"]]
ASKS = [["3366.8", "9"], ["3368", "8"]]


def test_docs_checksum_vectors(shared_data):
    cases = orjson.loads((shared_data / "vectors" / "okx_checksum_docs.json").read_bytes())["cases"]
    assert len(cases) == 2
    for case in cases:
        b, a = case["bids"], case["asks"]
        text = check_text([x[0] for x in b], [x[1] for x in b], [x[0] for x in a], [x[1] for x in a])
        assert text == case["check_string"]
        assert signed_crc32(text) == case["expected_signed"]


def test_docs_vector_through_a_book():
    rig = Rig(Provider.OKX, ["ETH-USDT"])
    rig.frame(okx_books("ETH-USDT", "snapshot", BIDS, ASKS, checksum=-1881014294))
    assert rig.report.checksum_ok == 1 and rig.sync("ETH-USDT").synced


def test_symbols_map_both_ways():
    assert to_canonical("UNI-USD-SWAP") == "UNI-USD-PERP" and to_venue("UNI-USD-PERP") == "UNI-USD-SWAP"
    assert to_canonical("BTC-USD-220527") == "BTC-USD-220527"
    assert to_canonical("BTC-USDT") == "BTC-USDT"


def synced_rig(**kw):
    rig = Rig(Provider.OKX, ["BTC-USDT", "ETH-USDT"], **kw)
    for inst in ("BTC-USDT", "ETH-USDT"):
        rig.frame(okx_books(inst, "snapshot", BIDS, ASKS, checksum=okx_checksum_of(BIDS, ASKS), seq=10, prev=-1))
    return rig


def test_update_checked_by_checksum_and_sequence_is_published():
    rig = synced_rig()
    bids = [["3366.5", "1"]] + BIDS
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=okx_checksum_of(bids, ASKS),
                        seq=11, prev=10))
    assert rig.report.checksum_ok == 3 and rig.report.gaps == 0
    books = rig.records(Kind.BOOK)
    assert [int(b["seq_provider"]) for b in books] == [10, 10, 11]
    assert books[0]["flags"] & HeaderFlag.SNAPSHOT
    assert int(books[-1]["book"]["bid_px"][0]) == 336650000000


def rest_book(bids, asks, seq: int, ts: str = "1652459226000") -> dict:
    return {"code": "0", "msg": "", "data": [{"asks": [list(a) + ["0", "1"] for a in asks],
                                              "bids": [list(b) + ["0", "1"] for b in bids],
                                              "ts": ts, "seqId": seq}]}


def test_checksum_mismatch_fetches_a_snapshot_of_only_that_instrument():
    rig = synced_rig()
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=12345, seq=11, prev=10))
    assert rig.report.checksum_failed == 1 and rig.report.resync_reasons == {"checksum": 1}
    assert rig.io.snapshots == ["BTC-USDT"] and rig.io.sent == []
    assert not rig.sync("BTC-USDT").synced and rig.sync("ETH-USDT").synced
    n = len(rig.records(Kind.BOOK))
    rig.frame(okx_books("BTC-USDT", "update", [["3366.4", "1"]], [], seq=12, prev=11))  # buffered
    assert len(rig.records(Kind.BOOK)) == n and rig.report.diffs_buffered == 1
    rig.adapter.on_snapshot("BTC-USDT", orjson.dumps(rest_book(BIDS, ASKS, 11)), 1)
    rig.frame(okx_books("BTC-USDT", "update", [], [["3368", "0"]], seq=13, prev=12))
    first, last = rig.records(Kind.BOOK)[n:]        # the buffered update chained onto the snapshot
    assert rig.sync("BTC-USDT").synced and first["flags"] & HeaderFlag.RESYNCED
    assert first["flags"] & HeaderFlag.SNAPSHOT and not last["flags"] & HeaderFlag.RESYNCED
    assert [int(first["seq_provider"]), int(last["seq_provider"])] == [12, 13]
    assert rig.report.resync_reasons == {"checksum": 1}


def test_seq_gap_fetches_a_snapshot_of_that_instrument():
    rig = synced_rig()
    rig.frame(okx_books("ETH-USDT", "update", [], [["3369", "1"]], seq=13, prev=12))
    assert rig.report.gaps == 1 and rig.report.resync_reasons == {"gap": 1}
    assert rig.io.snapshots == ["ETH-USDT"] and rig.io.sent == []


def test_heartbeat_update_with_equal_seq_ids_changes_nothing():
    rig = synced_rig()
    rig.frame(okx_books("BTC-USDT", "update", [], [], checksum=okx_checksum_of(BIDS, ASKS), seq=10, prev=10))
    assert rig.report.gaps == 0 and rig.sync("BTC-USDT").synced
    assert len(rig.records(Kind.BOOK)) == 2


def test_zero_checksum_on_a_seq_feed_is_not_verified():
    rig = synced_rig()
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=0, seq=11, prev=10))
    assert rig.report.checksum_failed == 0 and rig.sync("BTC-USDT").synced


def test_stale_book_and_missing_snapshot_fetch_again():
    rig = synced_rig(timers=Timers(stale_ns=5 * S, refresh_ns=None, snapshot_timeout_ns=3 * S))
    rig.clock.advance(3)
    rig.frame(okx_books("ETH-USDT", "update", [], [], seq=10, prev=10))
    rig.adapter.check_timers(rig.clock.advance(3))
    assert rig.report.resync_reasons == {"stale": 1}
    rig.frame(okx_books("ETH-USDT", "update", [], [], seq=10, prev=10))
    rig.adapter.check_timers(rig.clock.advance(4))
    assert rig.report.resync_reasons == {"stale": 1, "snapshot_timeout": 1}
    assert rig.io.snapshots == ["BTC-USDT", "BTC-USDT"] and rig.io.sent == []   # BTC went quiet


def test_trades_and_tickers():
    rig = synced_rig()
    rig.frame({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [
        {"instId": "BTC-USDT", "tradeId": "7849", "px": "30218.8", "sz": "1", "side": "buy", "ts": "1652459199958"},
        {"instId": "BTC-USDT", "tradeId": "7850", "px": "30218.9", "sz": "2", "side": "sell", "ts": "1652459199959"}]})
    rig.frame({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [
        {"instType": "SPOT", "instId": "BTC-USDT", "last": "30218.8", "askPx": "30220.1", "askSz": "3",
         "bidPx": "30210.4", "bidSz": "4", "ts": "1652459223003"}]})
    trades = rig.records(Kind.TRADE)
    assert [int(t["seq_provider"]) for t in trades] == [7849, 7850]
    assert [int(t["trade"]["side"]) for t in trades] == [1, 2]
    t = rig.records(Kind.TICKER)[0]
    assert int(t["seq_provider"]) == 1652459223003_000 and int(t["ticker"]["bid_px"]) == 3021040000000
    assert int(t["event_ts_ns"]) == 1652459223003 * 1_000_000


def _ticker(inst_id: str, ts: str, bid: str) -> dict:
    return {"arg": {"channel": "tickers", "instId": inst_id}, "data": [
        {"instType": "SPOT", "instId": inst_id, "last": bid, "askPx": "30220.1", "askSz": "3",
         "bidPx": bid, "bidSz": "4", "ts": ts}]}


def test_two_tickers_in_the_same_millisecond_get_distinct_increasing_seq_and_event_ids():
    rig = synced_rig()
    rig.frame(_ticker("BTC-USDT", "1652459223003", "30210.4"))
    rig.frame(_ticker("BTC-USDT", "1652459223003", "30210.5"))   # same ms, new best bid
    rig.frame(_ticker("ETH-USDT", "1652459223003", "2000.1"))    # another stream starts at k = 0
    rig.frame(_ticker("BTC-USDT", "1652459223004", "30210.6"))
    rig.frame(_ticker("BTC-USDT", "1652459223001", "30210.7"))   # ts went back: still increasing
    recs = rig.records(Kind.TICKER)
    btc = recs[recs["instrument"] == rig.streams[0].iid]
    assert [int(s) for s in btc["seq_provider"]] == [1652459223003_000, 1652459223003_001,
                                                     1652459223004_000, 1652459223004_001]
    assert [int(b) for b in btc["ticker"]["bid_px"]] == [3021040000000, 3021050000000,
                                                         3021060000000, 3021070000000]
    assert [int(t) // 1_000_000 for t in btc["event_ts_ns"]] == [1652459223003, 1652459223003,
                                                                  1652459223004, 1652459223001]
    ids = [int(i) for i in recs["event_id"]]
    assert len(set(ids)) == len(ids) == 5
    eth = recs[recs["instrument"] == rig.streams[1].iid]
    assert [int(s) for s in eth["seq_provider"]] == [1652459223003_000]


def test_books_without_seq_ids_in_the_same_millisecond_get_increasing_seq():
    rig = Rig(Provider.OKX, ["BTC-USDT"])
    ts = "1652459225464"
    rig.frame(okx_books("BTC-USDT", "snapshot", BIDS, ASKS, checksum=okx_checksum_of(BIDS, ASKS), ts=ts))
    bids = [["3366.5", "1"]] + BIDS
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=okx_checksum_of(bids, ASKS), ts=ts))
    bids = [["3366.5", "2"]] + BIDS
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "2"]], [], checksum=okx_checksum_of(bids, ASKS), ts=ts))
    books = rig.records(Kind.BOOK)
    assert rig.report.checksum_ok == 3 and rig.report.gaps == 0
    assert [int(b["seq_provider"]) for b in books] == [1652459225464_000, 1652459225464_001,
                                                       1652459225464_002]
    assert [int(b["book"]["last_update_id"]) for b in books] == [int(b["seq_provider"]) for b in books]
    assert len({int(i) for i in books["event_id"]}) == 3


def test_venue_errors_and_pongs_do_not_stop_the_feed():
    rig = synced_rig()
    rig.adapter.on_frame(b"pong", 1)
    rig.frame({"event": "error", "code": "60012", "msg": "Invalid request"})
    rig.frame({"event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}})
    assert rig.report.bad_frames == 1 and rig.report.ignored == 2
    assert rig.sync("BTC-USDT").synced


def test_a_bad_size_string_reaching_the_top_resyncs_and_goes_to_the_dlq():
    rig = synced_rig()
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1.2.3"]], [], seq=11, prev=10))
    assert rig.report.bad_frames == 1 and rig.report.resync_reasons == {"bad_input": 1}
    assert not rig.sync("BTC-USDT").synced and rig.sync("ETH-USDT").synced
    rig.frame(okx_books("ETH-USDT", "update", [[3366.5, 1]], [], seq=11, prev=10))
    assert rig.report.bad_frames == 2 and not rig.sync("ETH-USDT").synced


def test_a_repeat_of_the_last_update_is_dropped_not_a_gap():
    rig = synced_rig()
    bids = [["3366.5", "1"]] + BIDS
    upd = okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=okx_checksum_of(bids, ASKS),
                    seq=11, prev=10)
    rig.frame(upd)
    rig.frame(upd)
    assert rig.report.gaps == 0 and rig.report.diffs_dropped_stale == 1 and rig.sync("BTC-USDT").synced


def test_a_venue_sequence_reset_is_accepted_and_flagged_for_downstream_ordering():
    rig = synced_rig()
    bids = [["3366.5", "1"]] + BIDS
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=okx_checksum_of(bids, ASKS),
                        seq=3, prev=10))                       # seqId < prevSeqId: a reset
    assert rig.report.gaps == 0 and rig.sync("BTC-USDT").synced
    last = rig.records(Kind.BOOK)[-1]
    assert int(last["seq_provider"]) == 3 and last["flags"] & HeaderFlag.RESYNCED
