"""The deterministic core of execution: the engine's shared state and the publish path.

No I/O of its own: the clock, the store, the publisher (journal + ring) and the venue
adapters are injected, so a test drives it with a fake clock and a fake venue. One
thread calls it (the main loop). Venue calls (`place`, `cancel`, `query`, `list_open`)
only start a request; their outcome comes back as a venue event (venues.trading).

Each route reads top to bottom in its own module; `Engine`'s methods of the same names
hand over to them:
    commands.py       hello, set_trading_mode, submit, cancel, amend, query (from consumers)
    venue_events.py   a venue's reports, refusals, unknown outcomes, "not found"; queries
    reconcile.py      open-orders lists, user-stream (re)connects, polling while it is down
    account.py        balances and positions per venue; their ACCOUNT records
    slots.py          one `VenueSlot` per venue: adapter, instruments, stream state, down
This module keeps what they share (open orders, idempotency keys, consumer switches,
the query backoff table) and the publish path. Order of effects for a report: lifecycle
step (`apply`) -> `flush()`: journal append (durable) -> store commit (with the journal
watermark) -> ring publish. A new order is committed to the store before `venue.place`.

Many venues: the engine drives one adapter per venue (`venues`: {Provider: adapter}).
An order names its venue (one venue configured: that one by default); it goes to that
venue's adapter, and that venue's events (`on_venue(ev, provider)`) apply to it.
Idempotency, the exec_seq journal, the ring, the pre-trade limits and the trading
switch are one for all venues. A venue whose user stream has been down longer than
`venue_down_after_ns`, or that could not be started (`set_down`), is down: its new
orders are rejected with the reason (code `venue_down`); the other venues trade on.
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from events import EVENT, BadInput, ExecStatus, Kind, Provider
from events.ids import event_id, mix64
from events.records import stamp_header
from venues.trading import (
    Order, UserStreamConnected, UserStreamDisconnected, VenueAccountFailed, VenueAccountReported,
    VenueOpenOrdersFailed, VenueOpenOrdersListed, VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown,
    VenueRequestRefused)

from . import account, commands, lifecycle, reconcile, venue_events
from .limits import LimitBook
from .model import AmendOrder, CancelOrder, QueryOrder, SetTradingMode, SubmitOrder
from .publisher import ExecPublisher
from .reconcile import Listings
from .slots import Venue, VenueSlot
from .store import Store


class Engine:
    """Order entry, idempotency, lifecycle and reconciliation over one or more venues."""

    def __init__(self, store: Store, publisher: ExecPublisher, venues: Venue | dict[Provider, Venue | None], *,
                 clock: Callable[[], int], limits: LimitBook | None = None, telemetry=None, dlq=None,
                 trading_default: bool = True, query_backoff_ns: tuple[int, int] = (100_000_000, 2_000_000_000),
                 poll_interval_ns: int = 1_000_000_000, not_found_grace_ms: int = 2000,
                 venue_down_after_ns: int = 10_000_000_000):
        self.store = store
        self.publisher = publisher
        self.clock = clock
        if not isinstance(venues, dict):
            venues = {venues.provider: venues}
        self.slots: dict[Provider, VenueSlot] = {}
        for p, adapter in venues.items():
            p = Provider(p)
            self.slots[p] = VenueSlot(p, adapter, store.registries.get(p),
                                      Listings(query_backoff_ns, adapter.list_all_from if adapter else 1), clock())
        self.venue_down_after_ns = venue_down_after_ns
        self.limits = limits or LimitBook()
        self.tel = telemetry
        self.dlq = dlq
        self.trading_default = trading_default
        self.backoff_min, self.backoff_max = query_backoff_ns
        self.poll_interval_ns = poll_interval_ns
        self.not_found_grace_ms = not_found_grace_ms  # clock skew and queueing before signing
        self.open: dict[str, Order] = {}          # venue client order id -> open order
        # other venue client order ids of open orders: an amend's new venue order (in flight),
        # venue orders a cancel-replace replaced (their late reports are dropped)
        self.aliases: dict[str, Order] = {}
        self.by_key: dict[tuple[int, str], Order] = {}
        self.names: dict[int, str] = store.consumer_names()
        self.switch: dict[str, bool] = {}
        self.cids: dict[str, int] = {}               # consumer name -> id, once the store told us
        self.retry: dict[str, tuple[int, int]] = {}  # vcoid -> (next query ns, backoff ns)
        self.dirty: dict[str, Order] = {}            # orders changed since the last flush
        # (order, step, report, reject code, reason text, price, qty) of each report to publish
        self._pending: list[tuple[Order, lifecycle.Step, VenueOrderReported | None, int, str, int, int]
                            | account.Change] = []
        self.accounts = account.Accounts()
        self._buf = np.zeros(256, EVENT)

    @property
    def venue(self) -> Venue:
        """The adapter of the only venue (single-venue callers and tests)."""
        if len(self.slots) != 1:
            raise AttributeError("engine.venue: this engine has several venues; use engine.slots")
        return next(iter(self.slots.values())).adapter

    @property
    def stream_up(self) -> bool:
        """Every venue's user stream is up."""
        return all(s.stream_up for s in self.slots.values())

    def venue_status(self) -> dict:
        now = self.clock()
        return {p.slug: {"stream_up": s.stream_up, "down": s.down(now, self.venue_down_after_ns) or None,
                         "open_orders": sum(1 for o in self.open.values() if o.venue is p)}
                for p, s in self.slots.items()}

    def set_down(self, provider: Provider, reason: str) -> None:
        """Venue `provider` could not be started: its orders are rejected with `reason`."""
        self.slots[Provider(provider)].down_reason = reason
        self.inc("exec.venue.down", venue=Provider(provider).slug)

    def attach(self, provider: Provider, adapter: Venue, registry) -> None:
        """Venue `provider` is started late (it was down at start-up): take its orders from now on."""
        slot = self.slots[Provider(provider)]
        self.store.add_registry(provider, registry)
        slot.adapter, slot.registry, slot.down_reason = adapter, registry, ""
        slot.listings.list_all_from = adapter.list_all_from
        for o in self.store.open_orders():
            if o.venue is slot.provider and o.venue_client_order_id not in self.open:
                self.track(o)
        self.reconcile(provider)

    # -- shared state ----------------------------------------------------------------

    def inc(self, name: str, **labels) -> None:
        if self.tel is not None:
            self.tel.inc(name, **labels)

    def consumer(self, name) -> tuple[int, bool]:
        """(id, trading switch) of consumer `name`; the store is asked once per consumer in
        this process (its id never changes; the switch lives here from then on): the query cost
        each new order ~0.1 ms before its receipt, with execution's loop idle between orders."""
        if not isinstance(name, str) or not name:
            raise BadInput(f"consumer must be a non-empty string: consumer={name!r}")
        cid = self.cids.get(name)
        if cid is not None:
            return cid, self.switch[name]
        cid, enabled = self.store.consumer(name, default_enabled=self.trading_default)
        self.names[cid] = name
        self.switch.setdefault(name, enabled)
        self.cids[name] = cid
        return cid, self.switch[name]

    def find(self, cid: int, coid: str) -> Order | None:
        """An order by its idempotency key (consumer id, client order id)."""
        return self.by_key.get((cid, coid)) or self.store.get(cid, coid)

    def lookup(self, ids) -> Order | None:
        """An order by any of the venue client order ids a venue report names."""
        for vcoid in ids:
            o = self.open.get(vcoid) or self.aliases.get(vcoid)
            if o is not None:
                return o
        for vcoid in ids:
            if vcoid:
                o = self.store.by_venue_coid(vcoid)
                if o is not None:
                    return o
        return None

    def order_of(self, vcoid: str) -> Order | None:
        """The open order a venue client order id of ours names (its own, or an alias)."""
        return self.open.get(vcoid) or self.aliases.get(vcoid)

    def track(self, o: Order) -> None:
        if o.open:
            self.open[o.venue_client_order_id] = o
            self.by_key[(o.consumer_id, o.client_order_id)] = o
            if o.amend_qty and o.amend_coid:
                self.aliases[o.amend_coid] = o

    def state(self, o: Order) -> dict:
        return commands.order_state(o, self.names.get(o.consumer_id, str(o.consumer_id)))

    # -- the routes (commands.py, venue_events.py, reconcile.py) ---------------------

    def hello(self, consumer: str) -> dict:
        return commands.hello(self, consumer)

    def set_trading_mode(self, cmd: SetTradingMode) -> dict:
        return commands.set_trading_mode(self, cmd)

    def submit(self, cmd: SubmitOrder) -> dict:
        return commands.submit(self, cmd)

    def cancel(self, cmd: CancelOrder) -> dict:
        return commands.cancel(self, cmd)

    def amend(self, cmd: AmendOrder) -> dict:
        return commands.amend(self, cmd)

    def query(self, cmd: QueryOrder) -> dict:
        return commands.query(self, cmd)

    def on_venue(self, ev, provider: Provider | None = None) -> None:
        """Apply one event of venue `provider` (venues.trading; None: the only venue)."""
        if provider is None:
            if len(self.slots) != 1:
                raise TypeError("a venue event needs its provider when the engine has several venues")
            slot = next(iter(self.slots.values()))
        else:
            slot = self.slots[Provider(provider)]
        if isinstance(ev, VenueOrderReported):
            venue_events.on_report(self, ev)
        elif isinstance(ev, VenueRequestRefused):
            venue_events.on_refused(self, ev)
        elif isinstance(ev, VenueOutcomeUnknown):
            venue_events.on_unknown(self, ev)
        elif isinstance(ev, VenueOrderNotFound):
            venue_events.on_not_found(self, ev)
        elif isinstance(ev, VenueOpenOrdersListed):
            reconcile.on_listed(self, slot, ev)
        elif isinstance(ev, VenueOpenOrdersFailed):
            reconcile.on_list_failed(self, slot, ev)
        elif isinstance(ev, UserStreamConnected):
            reconcile.on_stream_connected(self, slot)
        elif isinstance(ev, UserStreamDisconnected):
            reconcile.on_stream_disconnected(self, slot)
        elif isinstance(ev, VenueAccountReported):
            account.on_reported(self, slot, ev)
        elif isinstance(ev, VenueAccountFailed):
            account.on_failed(self, slot, ev)
        else:
            raise TypeError(f"not a venue event: {ev!r}")

    def reconcile(self, provider: Provider | None = None, *, poll: bool = False) -> None:
        """List open orders of venue `provider` (None: every venue started); reconcile.py.
        Not a poll: ask for its account as well (account.py)."""
        reconcile.reconcile(self, provider, poll=poll)
        if not poll:
            for p, slot in self.slots.items():
                if provider is None or p is Provider(provider):
                    account.query(self, slot)

    def tick(self) -> int:
        """Run due queries and list retries; poll (list) open orders while a user stream is
        down. Returns work done."""
        now = self.clock()
        return venue_events.run_due_queries(self, now) + reconcile.poll(self, now) + account.run_due(self, now)

    def apply(self, o: Order, s: lifecycle.Step, r: VenueOrderReported | None, reason: str = "",
              reject_code: int = 0, note: str = "") -> None:
        """Move order `o` by lifecycle step `s`; its report goes out at the next `flush`.
        `reason`: why the order ended (REJECTED, EXPIRED; kept on the order); `note`: what a
        report of an open order says ("amended", "amend refused: ...")."""
        o.status, o.filled, o.cum_quote, o.pending = s.status, s.filled, s.cum_quote, s.pending
        o.fee += s.fee
        o.updated_ns = self.clock()
        if reason:
            o.reason = reason
        text = o.reason if s.status in (ExecStatus.REJECTED, ExecStatus.EXPIRED) else note
        self._pending.append((o, s, r, reject_code, text, o.price, o.qty))
        self.dirty[o.venue_client_order_id] = o

    def publish_account(self, c: account.Change) -> None:
        """Queue an ACCOUNT record (account.py); it goes out at the next `flush`, in order."""
        self._pending.append(c)

    # -- recovery and flush ------------------------------------------------------------

    def recover(self) -> int:
        """Apply journaled reports the store missed, load open orders; return how many reports."""
        applied = self.store.applied_seq()
        replayed = []
        seq = applied + 1
        while seq <= self.publisher.last_seq:
            recs = self.publisher.journal.read(seq, 1024)
            for rec in recs:
                if int(rec["kind"]) != Kind.EXEC_REPORT:
                    continue  # ACCOUNT records: account.restore below
                p = rec["exec"]
                try:
                    o = self.store.get(int(rec["consumer_id"]), p["client_order_id"].decode())
                except BadInput:  # an order of a venue not traded now: its row takes the state as is
                    self.store.apply_state(int(rec["consumer_id"]), p["client_order_id"].decode(), int(p["status"]),
                                           int(p["filled"]), int(p["cum_quote"]), int(p["venue_order_id"]),
                                           int(p["exec_seq"]))
                    replayed.append(None)
                    continue
                if o is None:
                    continue
                o.status, o.filled, o.cum_quote = ExecStatus(int(p["status"])), int(p["filled"]), int(p["cum_quote"])
                o.price, o.qty = int(p["price"]), int(p["qty"])  # an amend's, if the report was one
                o.venue_order_id = int(p["venue_order_id"]) or o.venue_order_id
                o.last_exec_seq = int(p["exec_seq"])
                replayed.append(o)
                self.store.save([o])
            seq += len(recs)
        self.store.save([], self.publisher.last_seq)
        self.accounts.restore_journal(self.publisher.journal)  # the account state it states (account.py)
        for o in self.store.open_orders():
            self.track(o)
        if self.tel is not None and replayed:
            self.tel.inc("exec.recovery.replayed", len(replayed))
        return len(replayed)

    def flush(self) -> int:
        """Journal, commit and publish the reports made since the last flush; return how many."""
        pending, self._pending = self._pending, []
        n = len(pending)
        if n:
            if n > len(self._buf):
                self._buf = np.zeros(max(n, 2 * len(self._buf)), EVENT)
            recs = self._buf[:n]
            recs.view(np.uint8)[:] = 0
            first = self.publisher.last_seq + 1
            for i, item in enumerate(pending):
                if isinstance(item, account.Change):
                    account.fill(recs[i], first + i, item, self.clock())
                    self.inc("exec.account.records", venue=item.provider.slug)
                    continue
                o, s, r, code, text, price, qty = item
                self._fill(recs[i], first + i, o, s, r, code, text, price, qty)
                o.last_exec_seq = first + i
                self.inc("exec.reports", status=s.status.name, venue=o.venue.slug)
            self.publisher.append(recs)
        if n or self.dirty:
            self.store.save(list(self.dirty.values()), self.publisher.last_seq if n else None)
            for o in self.dirty.values():
                if not o.open:
                    self.open.pop(o.venue_client_order_id, None)
                    self.by_key.pop((o.consumer_id, o.client_order_id), None)
                    self.retry.pop(o.venue_client_order_id, None)
                    if self.aliases:
                        for k in [k for k, v in self.aliases.items() if v is o]:
                            del self.aliases[k]
            self.dirty.clear()
        self.publisher.pump()
        return n

    def _fill(self, rec, seq: int, o: Order, s: lifecycle.Step, r: VenueOrderReported | None, code: int,
              text: str, price: int, qty: int) -> None:
        inst = o.instrument
        now = self.clock()
        stamp_header(rec, Kind.EXEC_REPORT, int(o.venue), inst.id, consumer_id=o.consumer_id,
                     seq_provider=seq, ingest_ts_ns=now, event_ts_ns=(r.event_ts_ns if r else 0) or now,
                     event_id=event_id(int(o.venue), Kind.EXEC_REPORT, inst.id, seq),
                     trace_id=mix64(zlib.crc32(o.venue_client_order_id.encode())))
        p = rec["exec"]
        p["exec_seq"] = seq
        p["venue_order_id"] = o.venue_order_id
        p["venue_trade_id"] = s.trade_id
        p["venue_update_id"] = r.update_id if r else 0
        # the state after this step (later steps of the same flush have moved `o` on)
        p["price"], p["qty"], p["filled"], p["remaining"] = price, qty, s.filled, qty - s.filled
        p["last_px"], p["last_qty"], p["cum_quote"], p["fee"] = s.last_px, s.last_qty, s.cum_quote, s.fee
        p["status"], p["side"], p["order_type"], p["tif"] = s.status, o.side, o.order_type, o.tif
        p["px_scale"], p["sz_scale"], p["reject_code"] = inst.px_scale, inst.sz_scale, max(-32768, min(32767, code))
        p["quote_scale"], p["fee_scale"] = inst.px_scale + inst.sz_scale, self.slots[o.venue].adapter.fee_scale
        p["client_order_id"] = o.client_order_id.encode()
        p["fee_asset"] = (r.fee_asset if r else "").encode()[:16]
        p["reason"] = text.encode()[:96]

