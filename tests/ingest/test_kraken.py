"""Kraken WS v1 books: the checksum rule, truncation to depth, resubscribe on failure."""

from __future__ import annotations

import zlib

import pytest

from events import HeaderFlag, Kind, Provider
from ingest.replay import replay
from venues.kraken import check_text, to_canonical, to_venue

from .helpers import Rig

pytestmark = pytest.mark.timeout(60)

ASKS = [["0.05005", "0.00000500", "1582905487.684110"], ["0.05010", "1.20000000", "1582905486.187983"]]
BIDS = [["0.05000", "0.10000000", "1582905487.439814"], ["0.04995", "0.00500000", "1582905484.748093"]]


def crc(asks, bids) -> str:
    return str(zlib.crc32(check_text([a[0] for a in asks], [a[1] for a in asks],
                                     [b[0] for b in bids], [b[1] for b in bids]).encode()))


def test_checksum_text_drops_the_point_and_leading_zeros_asks_first():
    assert check_text(["0.05005", "0.05010"], ["0.00000500", "1.20000000"],
                      ["0.05000"], ["0.10000000"]) == "5005500" + "5010120000000" + "500010000000"


def test_symbols_map_both_ways():
    assert to_canonical("XBT/USD") == "BTC-USD" and to_venue("BTC-USD") == "XBT/USD"
    assert to_canonical("XDG/EUR") == "DOGE-EUR" and to_venue("XMR/USD") == "XMR/USD"


def rig(depth_levels=1000):
    r = Rig(Provider.KRAKEN, ["XBT/USD", "ETH/USD"])
    for sync in r.adapter.syncs.values():
        sync.depth = depth_levels
    for pair in ("XBT/USD", "ETH/USD"):
        r.frame([42, {"as": ASKS, "bs": BIDS}, f"book-{depth_levels}", pair])
    return r


def test_snapshot_then_checked_updates_are_published():
    r = rig()
    asks = [["0.05004", "2.00000000", "1582905488.000001"]] + ASKS
    r.frame([42, {"a": [asks[0]], "c": crc(asks, BIDS)}, "book-1000", "XBT/USD"])
    assert r.report.checksum_ok == 1 and r.sync("XBT/USD").synced
    books = r.records(Kind.BOOK)
    assert books[0]["flags"] & HeaderFlag.SNAPSHOT
    assert int(books[-1]["book"]["ask_px"][0]) == 5_004_000 and int(books[-1]["seq_provider"]) == 1582905488000001


def test_updates_past_the_subscribed_depth_are_cut_as_kraken_does():
    r = rig(depth_levels=2)
    bids = [["0.05001", "1.00000000", "1582905488.000002"]] + BIDS[:1]   # the worst bid falls out
    r.frame([42, {"b": [bids[0]], "c": crc(ASKS, bids)}, "book-2", "XBT/USD"])
    assert r.report.checksum_ok == 1 and r.sync("XBT/USD").book.depth() == (2, 2)


def test_checksum_mismatch_resubscribes_that_pair_only():
    r = rig()
    r.frame([42, {"a": [["0.05004", "2.00000000", "1582905488.000001"]], "c": "12345"}, "book-1000", "XBT/USD"])
    assert r.report.checksum_failed == 1 and r.report.resync_reasons == {"checksum": 1}
    assert [m["event"] for m in r.io.sent] == ["unsubscribe", "subscribe"]
    assert r.io.sent[1]["pair"] == ["XBT/USD"] and r.io.sent[1]["subscription"] == {"name": "book", "depth": 1000}
    assert r.sync("ETH/USD").synced and not r.sync("XBT/USD").synced


def test_trades_spread_and_events():
    r = rig()
    r.frame([0, [["5541.20000", "0.15850568", "1534614057.321597", "s", "l", ""],
                 ["5541.30000", "0.1", "1534614057.321597", "b", "m", ""]], "trade", "XBT/USD"])
    r.frame([0, ["5698.40000", "5700.00000", "1542057299.545897", "1.01234567", "0.98765432"], "spread", "XBT/USD"])
    r.frame({"event": "heartbeat"})
    r.frame({"event": "subscriptionStatus", "status": "error", "errorMessage": "Currency pair not supported"})
    trades = r.records(Kind.TRADE)
    assert [int(t["trade"]["side"]) for t in trades] == [2, 1]
    assert [int(t["seq_provider"]) for t in trades] == [1534614057321597, 1534614057321598]  # kept unique
    t = r.records(Kind.TICKER)[0]
    assert int(t["ticker"]["ask_px"]) == 570_000_000_000 and int(t["ticker"]["bid_sz"]) == 101_234_567
    assert r.report.ignored == 1 and r.report.bad_frames == 1


def test_every_checksum_of_the_kraken_recording_verifies(shared_data):
    path = shared_data / "kraken_spot_ws_v1_book1000_2021-04-17_cryptofeed"
    if not path.is_dir():
        pytest.skip("the Kraken recording is not in ../shared/data")
    res = replay(path, "kraken")
    checksums = sum(1 for line in open(res["dataset"], "rb") if b'"c":"' in line)
    assert res["checksum_ok"] == checksums == 4269 and res["checksum_failed"] == 0
    assert len(res["books"]) == 10 and all(b["synced"] for b in res["books"].values())
    assert res["bad_frames"] == 0 and res["resyncs"] == 0
