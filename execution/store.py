"""The order store: SQLite in WAL mode in the run directory, owned by one execution process.

    consumers(name PK, id UNIQUE, trading_enabled, created_ns)
    orders((consumer_id, client_order_id) PK, venue_coid UNIQUE, symbol, side, order_type,
           tif, price, qty, status, filled, cum_quote, fee, venue_order_id, reason,
           created_ns, updated_ns, sent_ms, unknown_since_ns, pending, last_exec_seq, venue,
           amends, amend_qty, amend_price, amend_coid, base_filled, base_quote, reduce_only)
    meta(key PK, value)                       journal_applied_seq

`pending` is the cancel or amend in flight (venues.trading.Pending: the lifecycle's
PENDING_CANCEL / PENDING_REPLACE). A store written before it had a `cancel_requested`
flag instead: opening it adds the new columns (`pending` = CANCEL where the flag was set,
on open orders) and drops the flag (SQLite >= 3.35), in one transaction. `venue_coid` is
the current venue order's id: a cancel-replace amend moves the order to a new one
(`amend_coid`, execution.ids), so `price`, `qty` and `venue_coid` are updated too.

`venue` is the order's provider slug; each venue has its own instruments (a canonical
symbol may have other scales on another venue), so the store holds one Registry per
venue. The key is (consumer_id, client_order_id) whatever the venue: the same id on
two venues is one order.

Idempotency: an order row is committed before its request leaves for the venue, and
its key (consumer_id, client_order_id) is the primary key, so a duplicate is found
here after any restart. `journal_applied_seq` is the last exec_seq whose state is in
`orders`: reports are journaled first, then applied here; on start-up the journal
records past it are applied again (recovery), so a crash between the two loses none.

Consumer ids: assigned here on a name's first contact, one more than the highest so
far (no two names share one, whatever the names), and kept for the life of the store:
a restarted consumer (or execution) finds its id again by name, so orders stay
idempotent by (consumer_id, client_order_id). At most `max_consumers` names are kept;
execution only meets names whose key exists (`channels.identity`). Execution owns these
ids (dispatch numbers consumers for market data on its own).

Durability: `synchronous=FULL` (power-loss safe, one fsync per commit) or `NORMAL`
(safe against a crash of the process).
"""

from __future__ import annotations

import os
import time
import sqlite3

from channels.messages import ProtocolError
from events import BadInput, ExecStatus, OrderType, Provider, Registry, Side, TimeInForce

from venues.trading import Order, Pending

SCHEMA = """
CREATE TABLE IF NOT EXISTS consumers (
    name TEXT PRIMARY KEY, id INTEGER UNIQUE NOT NULL, trading_enabled INTEGER NOT NULL,
    created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    consumer_id INTEGER NOT NULL, client_order_id TEXT NOT NULL, venue_coid TEXT UNIQUE NOT NULL,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, order_type INTEGER NOT NULL, tif INTEGER NOT NULL,
    price INTEGER NOT NULL, qty INTEGER NOT NULL, status INTEGER NOT NULL, filled INTEGER NOT NULL,
    cum_quote INTEGER NOT NULL, fee INTEGER NOT NULL, venue_order_id INTEGER NOT NULL,
    reason TEXT NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL, unknown_since_ns INTEGER NOT NULL, pending INTEGER NOT NULL DEFAULT 0,
    last_exec_seq INTEGER NOT NULL, venue TEXT NOT NULL,
    amends INTEGER NOT NULL DEFAULT 0, amend_qty INTEGER NOT NULL DEFAULT 0,
    amend_price INTEGER NOT NULL DEFAULT 0, amend_coid TEXT NOT NULL DEFAULT '',
    base_filled INTEGER NOT NULL DEFAULT 0, base_quote INTEGER NOT NULL DEFAULT 0,
    reduce_only INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer_id, client_order_id));
CREATE INDEX IF NOT EXISTS orders_by_status ON orders(status);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

COLUMNS = ("consumer_id", "client_order_id", "venue_coid", "symbol", "side", "order_type", "tif",
           "price", "qty", "status", "filled", "cum_quote", "fee", "venue_order_id", "reason",
           "created_ns", "updated_ns", "sent_ms", "unknown_since_ns", "pending",
           "last_exec_seq", "venue", "amends", "amend_qty", "amend_price", "amend_coid", "base_filled",
           "base_quote", "reduce_only")
# added after the first schema, with their defaults (a store written before them gets them on open)
ADDED = {"venue": "TEXT NOT NULL DEFAULT 'binance-spot'",  # before orders named their venue: Binance spot
         "pending": "INTEGER NOT NULL DEFAULT 0", "amends": "INTEGER NOT NULL DEFAULT 0",
         "amend_qty": "INTEGER NOT NULL DEFAULT 0", "amend_price": "INTEGER NOT NULL DEFAULT 0",
         "amend_coid": "TEXT NOT NULL DEFAULT ''", "base_filled": "INTEGER NOT NULL DEFAULT 0",
         "base_quote": "INTEGER NOT NULL DEFAULT 0",
         "reduce_only": "INTEGER NOT NULL DEFAULT 0"}  # before orders could be reduce-only: none was
_INSERT = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPDATE = ("UPDATE orders SET status=?, filled=?, cum_quote=?, fee=?, venue_order_id=?, reason=?, "
           "updated_ns=?, sent_ms=?, unknown_since_ns=?, pending=?, last_exec_seq=?, price=?, qty=?, "
           "venue_coid=?, amends=?, amend_qty=?, amend_price=?, amend_coid=?, base_filled=?, base_quote=? "
           "WHERE consumer_id=? AND client_order_id=?")
OPEN_STATUSES = tuple(int(s) for s in ExecStatus if not s.terminal)


def _row(o: Order) -> tuple:
    return (o.consumer_id, o.client_order_id, o.venue_client_order_id, o.instrument.symbol, int(o.side),
            int(o.order_type), int(o.tif), o.price, o.qty, int(o.status), o.filled, o.cum_quote, o.fee,
            o.venue_order_id, o.reason, o.created_ns, o.updated_ns, o.sent_ms, o.unknown_since_ns,
            int(o.pending), o.last_exec_seq, o.venue.slug, o.amends, o.amend_qty, o.amend_price, o.amend_coid,
            o.base_filled, o.base_quote, int(o.reduce_only))


def _update_row(o: Order) -> tuple:
    return (int(o.status), o.filled, o.cum_quote, o.fee, o.venue_order_id, o.reason, o.updated_ns,
            o.sent_ms, o.unknown_since_ns, int(o.pending), o.last_exec_seq, o.price, o.qty,
            o.venue_client_order_id, o.amends, o.amend_qty, o.amend_price, o.amend_coid, o.base_filled,
            o.base_quote, o.consumer_id, o.client_order_id)


def migrate(db: sqlite3.Connection) -> None:
    """Bring an orders table written by an older schema to this one (see the module docstring)."""
    cols = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
    missing = [c for c in ADDED if c not in cols]
    if not missing and "cancel_requested" not in cols:
        return
    db.execute("BEGIN")
    try:
        for c in missing:
            db.execute(f"ALTER TABLE orders ADD COLUMN {c} {ADDED[c]}")
        if "cancel_requested" in cols:
            marks = ", ".join("?" * len(OPEN_STATUSES))
            db.execute(f"UPDATE orders SET pending=? WHERE cancel_requested != 0 AND status IN ({marks})",
                       (int(Pending.CANCEL),) + OPEN_STATUSES)
            db.execute("ALTER TABLE orders DROP COLUMN cancel_requested")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class Store:
    """SQLite order store. One thread of one process (execution's main loop) uses it."""

    def __init__(self, path: str | os.PathLike, registries: Registry | dict[Provider, Registry], *,
                 synchronous: str = "FULL", max_consumers: int = 1024):
        """`registries`: the instruments of each venue traded (a single Registry: Binance spot's)."""
        self.path = os.fspath(path)
        self.max_consumers = max_consumers
        if isinstance(registries, Registry):
            registries = {Provider.BINANCE_SPOT: registries}
        self.registries = {Provider(p): r for p, r in registries.items()}
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(SCHEMA)
        migrate(self.db)
        # after the migration: an older store gets the column first
        self.db.execute("CREATE INDEX IF NOT EXISTS orders_by_amend_coid ON orders(amend_coid)")

    def add_registry(self, provider: Provider, registry: Registry) -> None:
        """The instruments of a venue that became available after start-up."""
        self.registries[Provider(provider)] = registry

    # -- consumers -------------------------------------------------------------------

    def consumer(self, name: str, *, default_enabled: bool = True) -> tuple[int, bool]:
        """(id, trading_enabled) of consumer `name`, recorded on first contact."""
        row = self.db.execute("SELECT id, trading_enabled FROM consumers WHERE name=?", (name,)).fetchone()
        if row:
            return row[0], bool(row[1])
        count, top = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM consumers").fetchone()
        if count >= self.max_consumers:
            raise ProtocolError("capacity", f"execution keeps at most {self.max_consumers} consumers: "
                                            f"{name!r} refused")
        cid = top + 1
        self.db.execute("INSERT INTO consumers VALUES (?, ?, ?, ?)", (name, cid, int(default_enabled),
                                                                        time.time_ns()))
        return cid, default_enabled

    def set_trading(self, name: str, enabled: bool) -> int:
        cid, _ = self.consumer(name, default_enabled=enabled)
        self.db.execute("UPDATE consumers SET trading_enabled=? WHERE name=?", (int(enabled), name))
        return cid

    def consumer_names(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT id, name FROM consumers"))

    # -- orders ----------------------------------------------------------------------

    def insert(self, order: Order) -> None:
        """Commit a new order (before it is sent); sqlite3.IntegrityError if its key exists."""
        self.db.execute(_INSERT, _row(order))

    def save(self, orders, applied_seq: int | None = None) -> None:
        """Commit the state of `orders` (and the journal watermark) in one transaction."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany(_UPDATE, [_update_row(o) for o in orders])
            if applied_seq is not None:
                db.execute("INSERT INTO meta VALUES ('journal_applied_seq', ?) "
                           "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (applied_seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def apply_state(self, consumer_id: int, client_order_id: str, status: int, filled: int, cum_quote: int,
                    venue_order_id: int, last_exec_seq: int) -> None:
        """Set a journaled report's state on an order row without loading it (recovery of an
        order on a venue whose instruments this store does not hold)."""
        self.db.execute("UPDATE orders SET status=?, filled=?, cum_quote=?, venue_order_id=CASE WHEN ?=0 THEN "
                        "venue_order_id ELSE ? END, last_exec_seq=? WHERE consumer_id=? AND client_order_id=?",
                        (status, filled, cum_quote, venue_order_id, venue_order_id, last_exec_seq, consumer_id,
                         client_order_id))

    def applied_seq(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='journal_applied_seq'").fetchone()
        return row[0] if row else 0

    def get(self, consumer_id: int, client_order_id: str) -> Order | None:
        row = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders WHERE consumer_id=? AND "
                              "client_order_id=?", (consumer_id, client_order_id)).fetchone()
        return self._order(row) if row else None

    def by_venue_coid(self, venue_coid: str) -> Order | None:
        """The order whose current venue order has this id, or whose amend in flight gives a new
        venue order this id (a cancel-replace)."""
        row = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders WHERE venue_coid=?",
                              (venue_coid,)).fetchone()
        if row is None:
            row = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders WHERE amend_coid=? AND amend_qty != 0",
                                  (venue_coid,)).fetchone()
        return self._order(row) if row else None

    def open_orders(self) -> list[Order]:
        """The open orders on the venues of this store's registries (another venue's stay
        in the store until an execution that trades it reconciles them)."""
        marks = ", ".join("?" * len(OPEN_STATUSES))
        slugs = tuple(p.slug for p in self.registries)
        vmarks = ", ".join("?" * len(slugs))
        rows = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders WHERE status IN ({marks}) "
                               f"AND venue IN ({vmarks}) ORDER BY created_ns", OPEN_STATUSES + slugs).fetchall()
        return [self._order(r) for r in rows]

    def all_orders(self) -> list[Order]:
        rows = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM orders ORDER BY created_ns").fetchall()
        return [self._order(r) for r in rows]

    def _order(self, row) -> Order:
        d = dict(zip(COLUMNS, row))
        venue = Provider.from_slug(d["venue"])
        registry = self.registries.get(venue)
        if registry is None:
            raise BadInput(f"order {d['client_order_id']!r} of consumer {d['consumer_id']} is on {venue.slug}, "
                           "which this execution does not trade (add it to --venues)")
        return Order(d["consumer_id"], d["client_order_id"], d["venue_coid"], registry.by_symbol(d["symbol"]),
                     Side(d["side"]), OrderType(d["order_type"]), TimeInForce(d["tif"]), d["price"], d["qty"],
                     ExecStatus(d["status"]), d["filled"], d["cum_quote"], d["fee"], d["venue_order_id"],
                     d["reason"], d["created_ns"], d["updated_ns"], d["sent_ms"], d["unknown_since_ns"],
                     Pending(d["pending"]), d["last_exec_seq"], venue, amends=d["amends"],
                     amend_qty=d["amend_qty"], amend_price=d["amend_price"], amend_coid=d["amend_coid"],
                     base_filled=d["base_filled"], base_quote=d["base_quote"], reduce_only=bool(d["reduce_only"]))

    def close(self) -> None:
        self.db.close()
