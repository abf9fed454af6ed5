"""A store written by the schema before the lifecycle's pending states (a `cancel_requested`
flag, no amend columns) opens, maps the flag to PENDING_CANCEL, and takes new orders."""

from __future__ import annotations

import sqlite3

import pytest

from events import ExecStatus, OrderType, Side, TimeInForce
from execution.store import Store
from venues.trading import Order, Pending

from .fakes import BTC, registry

pytestmark = pytest.mark.timeout(10)

# the orders table exactly as the previous schema created it (execution/store.py before `pending`)
OLD_SCHEMA = """
CREATE TABLE consumers (
    name TEXT PRIMARY KEY, id INTEGER UNIQUE NOT NULL, trading_enabled INTEGER NOT NULL,
    created_ns INTEGER NOT NULL);
CREATE TABLE orders (
    consumer_id INTEGER NOT NULL, client_order_id TEXT NOT NULL, venue_coid TEXT UNIQUE NOT NULL,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, order_type INTEGER NOT NULL, tif INTEGER NOT NULL,
    price INTEGER NOT NULL, qty INTEGER NOT NULL, status INTEGER NOT NULL, filled INTEGER NOT NULL,
    cum_quote INTEGER NOT NULL, fee INTEGER NOT NULL, venue_order_id INTEGER NOT NULL,
    reason TEXT NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL, unknown_since_ns INTEGER NOT NULL, cancel_requested INTEGER NOT NULL,
    last_exec_seq INTEGER NOT NULL, venue TEXT NOT NULL,
    PRIMARY KEY (consumer_id, client_order_id));
CREATE INDEX orders_by_status ON orders(status);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def old_store(path):
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO consumers VALUES ('c1', 1, 1, 0)")
    rows = [  # (client order id, venue coid, status, cancel_requested)
        ("cancelling", "m-a", ExecStatus.ACK, 1),
        ("resting", "m-b", ExecStatus.PARTIAL, 0),
        ("cancelled", "m-c", ExecStatus.CANCELLED, 1),  # a closed order keeps no pending state
    ]
    for coid, vcoid, status, flag in rows:
        db.execute("INSERT INTO orders VALUES (1, ?, ?, 'BTC-USDT', 1, 1, 1, 3000000, 1000, ?, 0, 0, 0, 9, '', "
                   "1, 2, 3, 0, ?, 4, 'binance-spot')", (coid, vcoid, int(status), flag))
    db.execute("INSERT INTO meta VALUES ('journal_applied_seq', 4)")
    db.commit()
    db.close()


def test_an_old_store_opens_and_its_cancel_requested_flag_becomes_pending_cancel(tmp_path):
    path = tmp_path / "orders.sqlite"
    old_store(path)
    store = Store(path, registry(), synchronous="NORMAL")
    try:
        by_id = {o.client_order_id: o for o in store.all_orders()}
        assert by_id["cancelling"].pending is Pending.CANCEL
        assert by_id["resting"].pending is Pending.NONE
        assert by_id["cancelled"].pending is Pending.NONE
        o = by_id["resting"]
        assert (o.status, o.qty, o.price, o.amends, o.amend_coid, o.base_filled) == \
            (ExecStatus.PARTIAL, 1000, 3000000, 0, "", 0)
        assert store.applied_seq() == 4
        cols = {row[1] for row in store.db.execute("PRAGMA table_info(orders)")}
        assert "cancel_requested" not in cols and {"pending", "amend_coid", "base_quote"} <= cols
        store.insert(Order(1, "new", "m-d", BTC, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 3000000, 1000))
        o.pending = Pending.REPLACE
        store.save([o])
    finally:
        store.close()
    again = Store(path, registry(), synchronous="NORMAL")  # opening a migrated store changes nothing
    try:
        by_id = {o.client_order_id: o for o in again.all_orders()}
        assert by_id["resting"].pending is Pending.REPLACE and "new" in by_id
    finally:
        again.close()
