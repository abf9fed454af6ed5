"""OKX books synced per OKX's documented procedure: buffer, REST snapshot (seqId), drop
seqId <= S, first kept prevSeqId <= S < seqId, then chained; keep-alives, the seqId reset,
the WS snapshot where a connection still gets one; never a WS frame sent for a resync."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from events import HeaderFlag, Kind, Provider
from ingest.stream import Timers

from .helpers import S, Rig, okx_books

pytestmark = pytest.mark.timeout(30)

DOCS = orjson.loads((Path(__file__).parent / "fixtures" / "okx_docs_2026.json").read_bytes())
BIDS = [["3366.1", "7"], ["3366", "6"]]
ASKS = [["3366.8", "9"], ["3368", "8"]]


def rest(seq: int, bids=BIDS, asks=ASKS) -> bytes:
    return orjson.dumps({"code": "0", "msg": "", "data": [{
        "asks": [list(a) + ["0", "1"] for a in asks], "bids": [list(b) + ["0", "1"] for b in bids],
        "ts": "1652459226000", "seqId": seq}]})


def upd(prev: int, seq: int, bids=(), asks=(), inst="BTC-USDT"):
    return okx_books(inst, "update", list(bids), list(asks), checksum=0, seq=seq, prev=prev)


def started(**kw) -> Rig:
    rig = Rig(Provider.OKX, ["BTC-USDT"], **kw)
    rig.adapter.on_connected(True)
    assert rig.io.snapshots == ["BTC-USDT"]
    return rig


def books(rig):
    return rig.records(Kind.BOOK)


def test_buffered_updates_at_or_below_the_snapshot_are_dropped_and_the_first_kept_straddles_it():
    rig = started()
    for prev, seq, bid in ((98, 100, "3365"), (100, 102, "3364"), (102, 105, "3366.5"), (105, 107, "3366.6")):
        rig.frame(upd(prev, seq, bids=[[bid, "1"]]))
    assert not rig.sync("BTC-USDT").synced and rig.report.diffs_buffered == 4
    rig.adapter.on_snapshot("BTC-USDT", rest(103), 1)     # prevSeqId 102 <= 103 < 105
    sync = rig.sync("BTC-USDT")
    assert sync.synced and sync.last_seq == 107 and rig.report.diffs_applied == 2
    out = books(rig)
    assert [int(b["seq_provider"]) for b in out] == [105, 107]
    assert out[0]["flags"] & HeaderFlag.SNAPSHOT and not out[1]["flags"] & HeaderFlag.SNAPSHOT
    assert int(out[-1]["book"]["bid_px"][0]) == 336660000000        # 3366.6 on top
    assert rig.io.sent == [] and rig.report.resyncs == 0


def test_a_snapshot_behind_the_first_buffered_prev_seq_id_is_fetched_again():
    rig = started()
    rig.frame(upd(98, 100, bids=[["3366.5", "1"]]))
    rig.adapter.on_snapshot("BTC-USDT", rest(97), 1)      # 97 < prevSeqId 98: behind
    assert not rig.sync("BTC-USDT").synced
    assert rig.report.resync_reasons == {"snapshot_behind": 1} and rig.io.snapshots == ["BTC-USDT"] * 2
    rig.adapter.on_snapshot("BTC-USDT", rest(99), 2)      # the kept update 98 <= 99 < 100 applies
    assert rig.sync("BTC-USDT").synced and rig.sync("BTC-USDT").last_seq == 100
    assert books(rig)[-1]["flags"] & HeaderFlag.RESYNCED
    assert rig.io.sent == []


def test_a_keep_alive_at_the_snapshot_seq_id_confirms_a_quiet_book():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", rest(40), 1)
    assert not rig.sync("BTC-USDT").synced and books(rig).size == 0
    rig.frame(upd(40, 40))                                 # OKX: prevSeqId == seqId, no levels
    assert rig.sync("BTC-USDT").synced
    out = books(rig)
    assert len(out) == 1 and int(out[0]["seq_provider"]) == 40 and out[0]["flags"] & HeaderFlag.SNAPSHOT
    rig.frame(upd(40, 40))
    assert len(books(rig)) == 1 and rig.report.gaps == 0


def test_the_docs_seq_id_example_with_the_ws_snapshot_some_connections_still_get():
    rig = started()
    for m in DOCS["seq_id_example"]["messages"]:
        levels = [] if m["action"] == "snapshot" or m["prevSeqId"] == m["seqId"] else [["3366.5", "1"]]
        bids = BIDS if m["action"] == "snapshot" else levels
        asks = ASKS if m["action"] == "snapshot" else []
        rig.frame(okx_books("BTC-USDT", m["action"], bids, asks, checksum=0, seq=m["seqId"], prev=m["prevSeqId"]))
    assert rig.sync("BTC-USDT").synced and rig.report.gaps == 0 and rig.report.resyncs == 0
    out = books(rig)
    assert [int(b["seq_provider"]) for b in out] == [10, 15, 3, 5]
    assert [bool(b["flags"] & HeaderFlag.RESYNCED) for b in out] == [False, False, True, False]
    # the REST answer asked at connect finds the book synced: a shadow that agrees, swapped in
    rig.adapter.on_snapshot("BTC-USDT", rest(5, bids=[["3366.5", "1"]] + BIDS), 2)
    assert rig.report.refresh_mismatches == 0 and rig.sync("BTC-USDT").shadow is None


def test_the_docs_seq_id_example_without_ws_snapshot_syncs_from_rest():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", rest(15), 1)
    for m in DOCS["seq_id_example"]["messages"][2:]:      # keep-alive, reset, update
        levels = [] if m["prevSeqId"] == m["seqId"] else [["3366.5", "1"]]
        rig.frame(upd(m["prevSeqId"], m["seqId"], bids=levels))
    assert rig.sync("BTC-USDT").synced and rig.report.gaps == 0 and rig.report.resyncs == 0
    assert [int(b["seq_provider"]) for b in books(rig)] == [15, 3, 5]


def test_a_seq_reset_while_waiting_refetches_the_snapshot_asked_before_it():
    rig = started()
    rig.frame(upd(10, 15, bids=[["3365", "1"]]))
    rig.frame(upd(15, 3, bids=[["3366.5", "1"]]))          # maintenance: the sequence restarts
    rig.adapter.on_snapshot("BTC-USDT", rest(15), 1)      # asked before the reset: useless
    assert not rig.sync("BTC-USDT").synced and rig.report.resync_reasons == {"seq_reset": 1}
    assert rig.io.snapshots == ["BTC-USDT"] * 2
    rig.adapter.on_snapshot("BTC-USDT", rest(3, bids=[["3366.5", "1"]] + BIDS), 2)
    rig.frame(upd(3, 5, asks=[["3368", "0"]]))
    assert rig.sync("BTC-USDT").synced and rig.sync("BTC-USDT").last_seq == 5


def test_a_seq_reset_chained_onto_the_snapshot_continues_flagged():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", rest(15), 1)
    rig.frame(upd(15, 3, bids=[["3366.5", "1"]]))
    sync = rig.sync("BTC-USDT")
    assert sync.synced and sync.last_seq == 3 and books(rig)[-1]["flags"] & HeaderFlag.RESYNCED


def test_a_seq_reset_not_chained_onto_the_snapshot_fetches_again_after_it():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", rest(15), 1)
    rig.frame(upd(20, 3, bids=[["3366.5", "1"]]))          # the snapshot missed 15 -> 20, then a reset
    assert not rig.sync("BTC-USDT").synced and rig.report.resync_reasons == {"seq_reset": 1}
    assert rig.io.snapshots == ["BTC-USDT"] * 2 and rig.io.sent == []
    rig.adapter.on_snapshot("BTC-USDT", rest(4, bids=[["3366.5", "1"]] + BIDS), 2)
    rig.frame(upd(3, 5, asks=[["3368", "0"]]))             # 3 <= 4 < 5
    assert rig.sync("BTC-USDT").synced and rig.sync("BTC-USDT").last_seq == 5


def test_a_gap_fetches_that_instrument_alone_and_keeps_the_update_after_it():
    rig = Rig(Provider.OKX, ["BTC-USDT", "ETH-USDT"])
    rig.adapter.on_connected(True)
    for inst in ("BTC-USDT", "ETH-USDT"):
        rig.adapter.on_snapshot(inst, rest(10), 1)
        rig.frame(upd(10, 11, bids=[["3366.5", "1"]], inst=inst))
    rig.io.snapshots.clear()
    rig.frame(upd(12, 14, asks=[["3368", "0"]], inst="ETH-USDT"))   # 11 -> 12 never came
    assert rig.report.gaps == 1 and rig.io.snapshots == ["ETH-USDT"] and rig.io.sent == []
    assert rig.sync("BTC-USDT").synced and not rig.sync("ETH-USDT").synced
    rig.adapter.on_snapshot("ETH-USDT", rest(13), 2)       # 12 <= 13 < 14: the kept update applies
    assert rig.sync("ETH-USDT").synced and rig.sync("ETH-USDT").last_seq == 14


def test_a_rest_error_goes_to_the_dlq_and_is_fetched_again():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", orjson.dumps({"code": "50011", "msg": "Too Many Requests", "data": []}), 1)
    assert rig.report.bad_frames == 1 and rig.report.resync_reasons == {"snapshot_failed": 1}
    rig.adapter.on_snapshot_error("BTC-USDT", "HTTP 503")
    assert rig.io.snapshots == ["BTC-USDT"] * 3


def test_a_snapshot_no_update_confirms_is_dropped_after_the_timeout():
    rig = started(timers=Timers(stale_ns=60 * S, refresh_ns=None, snapshot_timeout_ns=3 * S))
    rig.adapter.on_snapshot("BTC-USDT", rest(15), 1)
    rig.adapter.check_timers(rig.clock.advance(4))
    assert rig.report.resync_reasons == {"stale": 1} and rig.io.snapshots == ["BTC-USDT"] * 2


def test_periodic_refresh_rebuilds_from_rest_while_the_live_book_publishes():
    rig = started(timers=Timers(stale_ns=0, refresh_ns=(120 * S, 120 * S), snapshot_timeout_ns=10 * S))
    rig.adapter.on_snapshot("BTC-USDT", rest(10), 1)
    rig.frame(upd(10, 11, bids=[["3366.5", "1"]]))
    rig.adapter.check_timers(rig.clock.advance(121))
    assert rig.report.resync_reasons == {"refresh": 1} and rig.io.snapshots == ["BTC-USDT"] * 2
    rig.frame(upd(11, 12, asks=[["3367", "2"]]))          # buffered by the shadow, published live
    n = len(books(rig))
    rig.adapter.on_snapshot("BTC-USDT", rest(11, bids=[["3366.5", "1"]] + BIDS), 2)
    rig.frame(upd(12, 13, asks=[["3367", "0"]]))
    sync = rig.sync("BTC-USDT")
    assert sync.synced and sync.shadow is None and rig.report.refresh_mismatches == 0
    assert len(books(rig)) == n + 1 and rig.io.sent == []


def test_the_docs_rest_answer_and_update_go_through_the_adapter():
    rig = Rig(Provider.OKX, ["BTC-USDT"])
    rig.adapter.on_connected(True)
    rig.adapter.on_snapshot("BTC-USDT", orjson.dumps(DOCS["rest_books"]["response"]), 1)
    rig.frame(DOCS["ws_books_update"]["message"])
    out = books(rig)
    assert rig.sync("BTC-USDT").synced and rig.report.checksum_ok == 0 and rig.report.checksum_failed == 0
    assert int(out[-1]["seq_provider"]) == 3370 and int(out[-1]["book"]["bid_px"][0]) == 4100650000000
    assert rig.adapter.books()["BTC-USDT"]["asks"][0][0] == "41006.8"


def test_a_nonzero_checksum_is_still_verified_and_zero_is_not_provided():
    rig = started()
    rig.adapter.on_snapshot("BTC-USDT", rest(10), 1)
    rig.frame(okx_books("BTC-USDT", "update", [["3366.5", "1"]], [], checksum=0, seq=11, prev=10))
    assert rig.sync("BTC-USDT").synced and rig.report.checksum_failed == 0
    rig.frame(okx_books("BTC-USDT", "update", [["3366.4", "1"]], [], checksum=7, seq=12, prev=11))
    assert rig.report.checksum_failed == 1 and rig.report.resync_reasons == {"checksum": 1}
    assert rig.io.snapshots == ["BTC-USDT"] * 2 and rig.io.sent == []


def test_a_rest_seq_id_sent_as_text_is_read_as_the_number():
    rig = started()
    body = orjson.loads(rest(40))
    body["data"][0]["seqId"] = "40"
    rig.adapter.on_snapshot("BTC-USDT", orjson.dumps(body), 1)
    rig.frame(upd(40, 41, bids=[["3366.5", "1"]]))
    assert rig.sync("BTC-USDT").synced and rig.report.bad_frames == 0


def test_a_rest_answer_older_than_a_ws_synced_book_is_let_go():
    rig = started()
    rig.frame(okx_books("BTC-USDT", "snapshot", BIDS, ASKS, checksum=0, seq=20, prev=-1))
    rig.frame(upd(20, 22, bids=[["3366.5", "1"]]))
    rig.adapter.on_snapshot("BTC-USDT", rest(18), 1)       # asked at connect, answered late
    assert rig.sync("BTC-USDT").shadow is not None
    rig.frame(upd(22, 25, asks=[["3368", "0"]]))           # 22 > 18: the shadow is behind
    sync = rig.sync("BTC-USDT")
    assert sync.synced and sync.shadow is None and sync.last_seq == 25
    assert rig.report.resyncs == 0 and rig.io.snapshots == ["BTC-USDT"]
