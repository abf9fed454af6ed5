"""The SDK's account view from ACCOUNT records: the newest per key wins, zero drops an entry,
positions by symbol, decimals exact, records of other kinds and unknown venues left alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consumer.account import AccountBook
from events import AccountEntry, Kind, Provider, empty, instrument_id, stamp_header

pytestmark = pytest.mark.timeout(10)


def balance(rec, seq, provider, asset, free, locked=0, scale=8):
    stamp_header(rec, Kind.ACCOUNT, provider, 0, event_ts_ns=seq * 1000)
    a = rec["account"]
    a["exec_seq"], a["entry"], a["asset"], a["free"], a["locked"], a["scale"] = (
        seq, AccountEntry.BALANCE, asset.encode(), free, locked, scale)


def position(rec, seq, symbol, size, entry_px=0, pnl=0):
    stamp_header(rec, Kind.ACCOUNT, Provider.OKX, instrument_id(symbol))
    a = rec["account"]
    a["exec_seq"], a["entry"], a["symbol"], a["asset"] = seq, AccountEntry.POSITION, symbol.encode(), b"USDT"
    a["size"], a["sz_scale"], a["entry_px"], a["px_scale"], a["unrealized_pnl"], a["pnl_scale"] = (
        size, 4, entry_px, 1, pnl, 2)


def test_the_newest_balance_wins_and_a_zero_balance_leaves_the_view():
    recs = empty(5)
    balance(recs[0], 1, Provider.BINANCE_SPOT, "USDT", 100_00000000)
    balance(recs[1], 2, Provider.BINANCE_SPOT, "BTC", 5_000000)
    stamp_header(recs[2], Kind.EXEC_REPORT, Provider.BINANCE_SPOT, 7, consumer_id=1)
    recs[2]["exec"]["exec_seq"] = 3
    balance(recs[3], 4, Provider.BINANCE_SPOT, "USDT", 70_00000000, 30_00000000)
    balance(recs[4], 5, Provider.BINANCE_SPOT, "BTC", 0)
    book = AccountBook()
    assert book.apply(recs) == 2  # the newest of each key
    acct = book.account("binance-spot")
    assert list(acct.balances) == ["USDT"] and acct.last_exec_seq == 5
    usdt = acct.balances["USDT"]
    assert (usdt.free, usdt.locked, usdt.total, usdt.free_m) == (Decimal(70), Decimal(30), Decimal(100), 70_00000000)
    assert usdt.event_ts_ns == 4000
    assert book.account(Provider.BINANCE_SPOT) is acct and book.venues() == ["binance-spot"]


def test_positions_are_kept_by_symbol_signed_and_a_closed_one_leaves_the_view():
    book = AccountBook()
    recs = empty(2)
    position(recs[0], 1, "BTC-USDT-SWAP", -2500, 301234, -123)
    position(recs[1], 2, "ETH-USDT-SWAP", 10000, 20001, 5)
    book.apply(recs)
    btc = book.account("okx").positions["BTC-USDT-SWAP"]
    assert (btc.size, btc.entry_px, btc.unrealized_pnl, btc.pnl_asset) == (
        Decimal("-0.25"), Decimal("30123.4"), Decimal("-1.23"), "USDT")
    assert btc.instrument_id == instrument_id("BTC-USDT-SWAP")
    closed = empty(1)
    position(closed[0], 3, "BTC-USDT-SWAP", 0)
    book.apply(closed)
    assert list(book.account("okx").positions) == ["ETH-USDT-SWAP"]


def test_a_record_of_a_venue_this_sdk_does_not_know_is_skipped():
    recs = empty(2)
    balance(recs[0], 1, 999, "USDT", 1)
    balance(recs[1], 2, Provider.OKX, "USDT", 1)
    book = AccountBook()
    book.apply(recs)
    assert book.venues() == ["okx"]
    with pytest.raises(ValueError, match="unknown provider"):
        book.account("nyse")
