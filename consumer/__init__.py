"""The consumer SDK: what a strategy imports to receive market data from dispatch.

    from consumer import Consumer

    with Consumer("alpha") as c:              # registers; run from MELTICA_RUN / MELTICA_RUN_DIR
        print(c.subscribe("BTC-USDT", providers=["binance-spot"], kinds=["book", "trade"]))
        print(c.merged_subscribe("BTC-USDT", ["binance-spot", "okx"]))
        c.set_trading_mode(True)              # the local switch follows dispatch's result
        for _ in range(100):
            batch = c.events(max_n=512, timeout_s=0.5)   # numpy EVENT records, a view
            for rec in batch:
                if rec["kind"] == Kind.TRADE:
                    print(rec["provider"], rec["trade"]["px"], rec["routing_version"])
        c.unsubscribe("BTC-USDT")             # market data routed before this is filtered out

(`from events import Kind` for the kinds.) Every command returns the ControlResult
(`Result`: the reply dict of `channels.messages`, with `.ok`, `.code`, `.reason`,
`.error` = {"code", "message"} or None, `.routing_version`); a bad command is a result
with ok False (unknown instrument or provider, malformed, merged with fewer than two
providers), never an exception. `PeerGone` is raised when dispatch does not answer
within `timeout_s`.

- `Consumer(name, run=None, control=None, timeout_s=3.0, filter_stale=True, heartbeat_s=5.0)`:
  registers `name` (with this pid, and its key from the run directory: see
  `channels.identity`) and attaches its lossless ring `consumer.<name>.md`.
  `consumer_id` is stamped in every record's header.
- `events(max_n, timeout_s)`: the next batch; valid until the next call. Iterating the
  consumer yields single records (copies) instead. It also sends a heartbeat every
  `heartbeat_s`: dispatch releases a registration that stays silent (30 s by default).
- Critical records (ControlAck, ControlResult, ExecReport) are always delivered; market
  data stamped with a `routing_version` older than the last effective unsubscribe is
  dropped (`filtered` counts them).
- `trading_enabled`: the local switch, set by `set_trading_mode` results, which carry
  execution's state (execution owns the switch; also those of a command sent by an
  operator for this consumer: the ring's ControlResult carries it in `result.trading`).
  Order clients check it.
- `close()`: unregister and detach; also on leaving the `with` block.
"""

from .client import Consumer, Result

__all__ = ["Consumer", "Result"]
