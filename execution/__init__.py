"""Execution: the only path from a strategy to a venue and back (LM-04, LM-06).

    consumer SDK (consumer/orders.py) --ZMQ DEALER--> control.py (ROUTER)
        -> engine.py: validate (validation.py), pre-trade limits (limits.py),
           idempotency by (consumer_id, client_order_id) persisted first (store.py)
        -> the order's venue's adapter (venues/<venue>/trading/; one per venue traded,
           `--venues`) -> venue
    venue REST replies + user-data stream -> engine -> lifecycle.py (one transition
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
    engine      deterministic core, injected clock, no I/O of its own; one VenueSlot per venue
    reconcile   reconciliation bookkeeping: open-orders lists out, what each expects, backoff
    control     ZeroMQ ROUTER: order entry and set_trading_mode
    process     the main loop of `python -m execution`
"""
