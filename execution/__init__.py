"""Execution: the only path from a strategy to a venue and back (LM-04, LM-06).

    consumer SDK (consumer/orders.py) --ZMQ DEALER--> control.py (ROUTER)
        -> commands.py (via engine.py): validate (validation.py), pre-trade limits (limits.py),
           idempotency by (consumer_id, client_order_id) persisted first (store.py)
        -> the order's venue's adapter (venues/<venue>/trading/; one per venue traded,
           `--venues`) -> venue
    venue REST replies + user-data stream -> venue_events.py / reconcile.py -> lifecycle.py (one transition
    table) -> journal.py (append, gap-free exec_seq, fsync) -> store.py -> exec ring

Modules:
    model       commands (SubmitOrder, CancelOrder, ...), venue events (past tense), Order
    ids         venue client order id derived from (consumer_id, client_order_id)
    lifecycle   the transition table and the idempotent apply of venue reports
    validation  field checks before anything leaves
    limits      per-consumer pre-trade limits (notional, open orders, rate)
    store       SQLite (WAL) idempotency and order store; consumer name -> id
    journal     append-only file of EVENT records; exec_seq N at offset N * 768
    publisher   journal + exec ring: append (durable) before publish
    engine      deterministic core (shared state, journal/publish path), injected clock, no I/O
    commands    consumers' commands: hello, set_trading_mode, submit, cancel, query
    venue_events  a venue's reports, refusals, unknown outcomes, "not found"; query backoff
    reconcile   open-orders lists (what each expects, backoff), stream reconnects, polling
    slots       the venue adapter protocol; one VenueSlot per venue (stream state, down)
    control     ZeroMQ ROUTER: order entry and set_trading_mode
    process     the main loop of `python -m execution`
"""
