"""The ACCOUNT record: its layout, its exec_seq where exec reports keep theirs, its rendering."""

from __future__ import annotations

import numpy as np
import pytest

import events as E
from events import codec

pytestmark = pytest.mark.timeout(30)


def test_account_records_keep_their_exec_seq_where_exec_reports_do():
    assert codec.offset("account.exec_seq") == codec.offset("exec.exec_seq") == 64
    recs = E.empty(2)
    E.stamp_header(recs[0], E.Kind.EXEC_REPORT, E.Provider.BINANCE_SPOT, 1, consumer_id=3)
    recs[0]["exec"]["exec_seq"] = 41
    E.stamp_header(recs[1], E.Kind.ACCOUNT, E.Provider.BINANCE_SPOT, 0)
    recs[1]["account"]["exec_seq"] = 42
    assert recs["exec"]["exec_seq"].tolist() == [41, 42]


def test_the_account_payload_fits_after_the_header_and_its_fields_lie_where_the_dtype_says():
    assert 64 + E.ACCOUNT.itemsize <= E.RECORD_BYTES
    assert codec.payload_fields("account") == (
        "account.exec_seq", "account.free", "account.locked", "account.size", "account.entry_px",
        "account.unrealized_pnl", "account.entry", "account.source", "account.scale", "account.px_scale",
        "account.sz_scale", "account.pnl_scale", "account.asset", "account.symbol")
    assert codec.offset("account.asset") == 64 + 56 and codec.offset("account.symbol") == 64 + 72


def test_a_balance_and_a_position_render_as_decimal_strings():
    recs = E.empty(2)
    E.stamp_header(recs[0], E.Kind.ACCOUNT, E.Provider.BINANCE_SPOT, 0, flags=E.HeaderFlag.SNAPSHOT)
    b = recs[0]["account"]
    b["exec_seq"], b["entry"], b["source"], b["scale"] = 7, E.AccountEntry.BALANCE, E.AccountSource.REST, 8
    b["free"], b["locked"], b["asset"] = 123_45000000, 5_00000000, b"USDT"
    inst = E.instrument_id("BTC-USDT-SWAP")
    E.stamp_header(recs[1], E.Kind.ACCOUNT, E.Provider.OKX, inst)
    p = recs[1]["account"]
    p["exec_seq"], p["entry"], p["source"] = 8, E.AccountEntry.POSITION, E.AccountSource.STREAM
    p["size"], p["sz_scale"], p["entry_px"], p["px_scale"] = -25, 2, 3012345, 1
    p["unrealized_pnl"], p["pnl_scale"], p["asset"], p["symbol"] = -1234, 4, b"USDT", b"BTC-USDT-SWAP"
    assert E.to_dict(recs[0])["account"] == {"exec_seq": 7, "entry": "BALANCE", "source": "REST", "asset": "USDT",
                                             "free": "123.45", "locked": "5"}
    assert E.to_dict(recs[0])["flags"] == E.HeaderFlag.SNAPSHOT
    assert E.to_dict(recs[1])["account"] == {"exec_seq": 8, "entry": "POSITION", "source": "STREAM",
                                             "asset": "USDT", "symbol": "BTC-USDT-SWAP", "size": "-0.25",
                                             "entry_px": "301234.5", "unrealized_pnl": "-0.1234"}
    assert E.to_dict(recs[1])["provider"] == "okx" and E.to_dict(recs[1])["instrument"] == inst


def test_a_batch_of_mixed_exec_channel_records_selects_by_kind():
    recs = E.empty(3)
    recs["kind"] = [E.Kind.EXEC_REPORT, E.Kind.ACCOUNT, E.Kind.EXEC_REPORT]
    recs["exec"]["exec_seq"] = [1, 2, 3]
    acct = recs[recs["kind"] == E.Kind.ACCOUNT]
    assert acct["account"]["exec_seq"].tolist() == [2]
    assert np.array_equal(codec.byte_rows(codec.concat([recs[:1], recs[1:]])), codec.byte_rows(recs))


def test_latest_keeps_the_newest_record_of_each_balance_and_position_in_exec_seq_order():
    from events.account import latest
    recs = E.empty(6)
    rows = [(E.Kind.ACCOUNT, E.Provider.BINANCE_SPOT, E.AccountEntry.BALANCE, 0, b"USDT"),
            (E.Kind.EXEC_REPORT, E.Provider.BINANCE_SPOT, 0, 5, b""),
            (E.Kind.ACCOUNT, E.Provider.OKX, E.AccountEntry.BALANCE, 0, b"USDT"),      # another venue
            (E.Kind.ACCOUNT, E.Provider.OKX, E.AccountEntry.POSITION, 9, b"USDT"),
            (E.Kind.ACCOUNT, E.Provider.BINANCE_SPOT, E.AccountEntry.BALANCE, 0, b"USDT"),  # newer USDT
            (E.Kind.ACCOUNT, E.Provider.OKX, E.AccountEntry.POSITION, 9, b"USD")]     # newer position
    for i, (kind, provider, entry, inst, asset) in enumerate(rows):
        E.stamp_header(recs[i], kind, provider, inst)
        recs[i]["account"]["entry"], recs[i]["account"]["asset"] = entry, asset
        recs[i]["exec"]["exec_seq"] = i + 1
    assert latest(recs)["exec"]["exec_seq"].tolist() == [3, 5, 6]
    assert len(latest(recs[:1])) == 1 and len(latest(recs[1:2])) == 0
