"""The consumer SDK's order entry and exec-report stream (talks to `execution`).

    from consumer.orders import OrderClient
    with OrderClient(consumer) as oc:          # anything with .name and .trading_enabled
        r = oc.submit_limit("o-1", "BTC-USDT", "buy", qty="0.01", price="30000", tif="GTC")
        oc.submit_limit("o-3", "BTC-USDT", "buy", qty="0.01", price="30000", venue="okx")  # several venues
        # r["status"]: "accepted" | "duplicate" | "rejected" | "suppressed" (never sent)
        oc.submit_limit_nowait("o-2", "BTC-USDT", "buy", qty="0.01", price="30000")  # returns at once
        for a in oc.poll_replies():                  # answers so far, never waits (timeout_s=0)
            print(a["client_order_id"], a["status"])  # ... | "unknown" (no answer in time)
        for rec in oc.poll_reports(timeout_s=1.0):   # EVENT records, kind EXEC_REPORT
            print(rec["exec"]["exec_seq"], ExecStatus(rec["exec"]["status"]).name)
        oc.amend("o-1", qty="0.005")                 # and/or price="29990"; the outcome is a report
        oc.account("binance-spot").balances["USDT"].free   # balances, positions (consumer/account.py)

Order entry: a DEALER socket to execution's control endpoint (default
`channels.names.execution_endpoint(run_dir)`), every request carrying the consumer's
key (`channels.identity`, created in the run directory on first use). Execution answers a new order only after it has
persisted it, so an answer takes a disk write. Two ways to ask:

- `submit` / `submit_limit` / `submit_market` / `cancel` / `amend` / `query` / `hello`
  wait for their answer (`timeout_s`, then PeerGone) and return it.
- `<same>_nowait` send and return the request id at once; `poll_replies()` hands out
  the answers received since its last call, in arrival order, each the execution's
  reply plus `cmd`, `client_order_id` and `late`; `pending` is the client order ids
  still awaiting one. This is the path for a market-data loop.

Requests are matched to answers by request id (unique for the life of the client);
every request gets one answer. A blocking call made while `_nowait` requests are
outstanding keeps their answers for `poll_replies`. A `_nowait` request without an
answer after `timeout_s` is answered here, by `poll_replies`:

    "unknown"     (code "no_answer") it was sent, and execution may or may not have
                  acted on it (restarting, stalled); should its real answer still
                  come, it is handed out as well, with `late` true
    "suppressed"  (code "execution_unreachable") no connection to execution came up
                  in time: it never left this process, and never will

Amend: `amend(client_order_id, qty=None, price=None)` changes an open order's total
quantity and/or limit price (decimal strings). Its answer is "accepted" (sent to the
venue) or "rejected" (code: "order_closed", "order_busy" while a cancel or amend of the
order is in flight or the venue has not acknowledged it, "validation", a limit's name,
"trading_disabled"). The outcome is an exec report: the new `price` / `qty` /
`remaining` with reason "amended", or the unchanged ones with the venue's `reject_code`
and reason "amend refused: ..." / "amend not applied ...". Its status is the order's
(ACK, PARTIAL): an amend is not a status. Execution does the amend as the venue can
(Binance spot: in place, keeping queue priority, for a quantity decrease at the same
price; else by cancel-replace, which loses priority). An amend is not idempotent by key:
after "unknown", `query` the order before amending again.

After "unknown", `query` the order, or send the same request again: execution is
idempotent by (consumer, client_order_id), so a resent order is placed at most once
(the second answer is "duplicate", with the order's state). While
`consumer.trading_enabled` is false, new orders are suppressed here and never sent
(code "trading_disabled"); cancels and queries still go out.

A request is handed to ZeroMQ only while a connection to execution is up
(ZMQ_IMMEDIATE): until then it waits in this client, in order, and leaves on the next
call (`poll_replies`, any request, `flush`); so requests made while execution is down
are not delivered in a burst, long after, to the next execution process.

Exec reports, exactly once and in exec_seq order: the SDK attaches to the `exec` ring
(start "latest") and reads the journal (`channels.journal`) for whatever it
missed: everything after its cursor on start, any gap the ring shows, and everything
after a restart of execution (a new ring) or an eviction. Records with an exec_seq
below the cursor are dropped, so each report is delivered once.

The cursor (the last exec_seq handed out) is kept in `<run_dir>/consumers/<name>.exec_seq`
and committed when the next `poll_reports` starts (or on `commit()`): at-least-once
across a crash between handing out a batch and that commit. A consumer that keeps
the last exec_seq in its own durable state passes `resume_from=` and gets exactly once.

The exec channel also carries ACCOUNT records (balances and positions per venue; same
exec_seq sequence): `poll_reports` applies them to `account(venue)` (consumer/account.py)
and hands out only this consumer's exec reports; with `monitor_all` it hands out every
record of the channel, both kinds (select by `rec["kind"]`).
"""

from __future__ import annotations

import os
import time

import numpy as np
import zmq

from channels.identity import consumer_key
from channels.journal import JournalError, JournalReader
from channels.names import EXEC_RING, consumer_file, execution_endpoint, journal_path
from events import EVENT, Closed, PeerGone
from core.run import RunContext
from shm import ReaderEvicted, RingClosed, RingError, RingReader, SegmentNotFound

from .account import AccountBook, AccountView
from .requests import Requests


class OrderClient:
    """Order entry and the exec-report stream of one consumer. One thread uses it."""

    def __init__(self, consumer, *, endpoint: str | None = None, run: RunContext | None = None,
                 timeout_s: float = 2.0, monitor_all: bool = False, resume_from: int | None = None,
                 context: zmq.Context | None = None):
        self.consumer = consumer
        self.name = consumer.name
        self.run = run or RunContext.from_env()
        self.endpoint = endpoint or execution_endpoint(self.run.run_dir)
        self.monitor_all = monitor_all
        self._ctx = context or zmq.Context.instance()
        self._timeout_s = timeout_s
        key = consumer_key(self.run.run_dir, self.name)
        self._req: Requests | None = Requests(self._ctx, self.endpoint, self.name, key, timeout_s)
        self.consumer_id: int | None = None
        self.suppressed = 0
        self._cursor_path = consumer_file(self.run.run_dir, self.name, "exec_seq")
        if resume_from is None:
            resume_from = self._read_cursor()
        self.committed = resume_from
        self.next_seq = resume_from + 1
        self._reader: RingReader | None = None
        self._journal: JournalReader | None = None
        self._last_check = 0.0
        self.accounts = AccountBook()   # from the ACCOUNT records read (consumer/account.py)

    @property
    def timeout_s(self) -> float:
        """How long a request waits for its answer (both paths)."""
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._timeout_s = value
        if self._req is not None:
            self._req.timeout_s = value

    def _requests(self) -> Requests:
        if self._req is None:
            raise Closed(f"order client of consumer {self.name!r} is closed")
        return self._req

    # -- requests that wait for their answer ----------------------------------------------

    def request(self, cmd: str, **fields) -> dict:
        """Send one control request and return its reply; PeerGone after `timeout_s`.

        Answers to `_nowait` requests that arrive meanwhile are kept for `poll_replies`.
        """
        reply = self._requests().request(cmd, fields.get("client_order_id"), fields)
        if cmd == "hello":
            self._hello_answered(reply)
        return reply

    def hello(self) -> dict:
        """Register with execution; learn this consumer's id (exec reports carry it)."""
        return self.request("hello")

    def _hello_answered(self, reply: dict) -> None:
        if reply.get("ok") and "consumer_id" in reply:
            self.consumer_id = int(reply["consumer_id"])

    def _suppressed(self, client_order_id: str) -> dict:
        self.suppressed += 1
        return {"type": "result", "request_id": None, "cmd": "new_order", "ok": False, "status": "suppressed",
                "code": "trading_disabled", "client_order_id": client_order_id,
                "reason": f"trading switch of consumer {self.name!r} is off: order not sent"}

    @staticmethod
    def _order_fields(client_order_id, symbol, side, order_type, qty, price, tif, ref_price, venue,
                      reduce_only=False) -> dict:
        fields = {"client_order_id": client_order_id, "symbol": symbol, "side": side, "type": order_type,
                  "qty": qty}
        for k, v in (("price", price), ("tif", tif), ("ref_price", ref_price), ("venue", venue)):
            if v is not None:
                fields[k] = v
        if reduce_only:  # sent only when set: the request stays what it was for every other order
            fields["reduce_only"] = reduce_only
        return fields

    def submit(self, client_order_id: str, symbol: str, side: str, order_type: str, qty: str,
               price: str | None = None, tif: str | None = None, ref_price: str | None = None,
               venue: str | None = None, reduce_only: bool = False) -> dict:
        """Send a new order (decimal strings) to `venue` (a provider slug; None: execution's only
        venue); the reply says accepted, duplicate or rejected. `tif` "POST_ONLY" (or "GTX"): a
        limit order that only rests; `reduce_only`: a futures or swap order that may only reduce
        the position (refused on spot)."""
        if not self.consumer.trading_enabled:
            return self._suppressed(client_order_id)
        return self.request("new_order", **self._order_fields(client_order_id, symbol, side, order_type, qty,
                                                               price, tif, ref_price, venue, reduce_only))

    def submit_limit(self, client_order_id: str, symbol: str, side: str, qty: str, price: str,
                     tif: str = "GTC", venue: str | None = None, reduce_only: bool = False) -> dict:
        return self.submit(client_order_id, symbol, side, "limit", qty, price=price, tif=tif, venue=venue,
                           reduce_only=reduce_only)

    def submit_market(self, client_order_id: str, symbol: str, side: str, qty: str,
                      ref_price: str | None = None, venue: str | None = None, reduce_only: bool = False) -> dict:
        return self.submit(client_order_id, symbol, side, "market", qty, ref_price=ref_price, venue=venue,
                           reduce_only=reduce_only)

    def cancel(self, client_order_id: str) -> dict:
        return self.request("cancel", client_order_id=client_order_id)

    def amend(self, client_order_id: str, qty: str | None = None, price: str | None = None) -> dict:
        """Change an open order's total quantity and/or limit price (decimal strings; None: keep).
        The reply says accepted (sent) or rejected; the outcome comes as an exec report."""
        return self.request("amend", **self._amend_fields(client_order_id, qty, price))

    @staticmethod
    def _amend_fields(client_order_id: str, qty, price) -> dict:
        fields = {"client_order_id": client_order_id}
        if qty is not None:
            fields["qty"] = qty
        if price is not None:
            fields["price"] = price
        return fields

    def query(self, client_order_id: str) -> dict:
        return self.request("query", client_order_id=client_order_id)

    # -- requests that return at once; answers through poll_replies ------------------------

    def request_nowait(self, cmd: str, **fields) -> int:
        """Send one control request without waiting; return its request id (see `poll_replies`)."""
        return self._requests().enqueue(cmd, fields.get("client_order_id"), fields, blocking=False)

    def hello_nowait(self) -> int:
        """`hello` without waiting: `consumer_id` is set when `poll_replies` hands out its answer."""
        return self.request_nowait("hello")

    def submit_nowait(self, client_order_id: str, symbol: str, side: str, order_type: str, qty: str,
                      price: str | None = None, tif: str | None = None, ref_price: str | None = None,
                      venue: str | None = None, reduce_only: bool = False) -> int:
        """Send a new order and return its request id at once; the answer comes through `poll_replies`.

        After an answer "unknown" the order may or may not exist: `query` it, or submit it
        again with the same `client_order_id` - execution places it at most once.
        """
        if not self.consumer.trading_enabled:
            return self._requests().answer_locally("new_order", client_order_id, self._suppressed(client_order_id))
        return self.request_nowait("new_order", **self._order_fields(client_order_id, symbol, side, order_type,
                                                                      qty, price, tif, ref_price, venue,
                                                                      reduce_only))

    def submit_limit_nowait(self, client_order_id: str, symbol: str, side: str, qty: str, price: str,
                            tif: str = "GTC", venue: str | None = None, reduce_only: bool = False) -> int:
        return self.submit_nowait(client_order_id, symbol, side, "limit", qty, price=price, tif=tif, venue=venue,
                                  reduce_only=reduce_only)

    def submit_market_nowait(self, client_order_id: str, symbol: str, side: str, qty: str,
                             ref_price: str | None = None, venue: str | None = None, reduce_only: bool = False) -> int:
        return self.submit_nowait(client_order_id, symbol, side, "market", qty, ref_price=ref_price,
                                  venue=venue, reduce_only=reduce_only)

    def cancel_nowait(self, client_order_id: str) -> int:
        return self.request_nowait("cancel", client_order_id=client_order_id)

    def amend_nowait(self, client_order_id: str, qty: str | None = None, price: str | None = None) -> int:
        return self.request_nowait("amend", **self._amend_fields(client_order_id, qty, price))

    def query_nowait(self, client_order_id: str) -> int:
        return self.request_nowait("query", client_order_id=client_order_id)

    def poll_replies(self, timeout_s: float = 0.0) -> list[dict]:
        """The answers to `_nowait` requests since the last call, in arrival order.

        Each is execution's reply (`status`: accepted | duplicate | rejected (+ code,
        reason) | ok (query, hello) ...) plus `request_id`, `cmd`, `client_order_id` and `late`;
        or a local answer: "suppressed" (never sent) or "unknown" (sent, no answer within
        `timeout_s`). Never waits unless `timeout_s` > 0, then until there is one.
        """
        out = self._requests().poll(timeout_s)
        for a in out:
            if a["cmd"] == "hello":
                self._hello_answered(a)
        return out

    def flush(self, timeout_s: float = 0.0) -> int:
        """Send requests queued for want of a connection, waiting up to `timeout_s`; return how many are left.

        Every `_nowait` call and `poll_replies` does this without waiting.
        """
        return self._requests().flush(timeout_s)

    @property
    def pending(self) -> frozenset:
        """The client order ids of `_nowait` requests awaiting an answer (until `poll_replies` hands it out)."""
        return self._requests().pending_ids()

    def statistics(self) -> dict:
        """Counts of the request channel: sent, answered, busy (sent again), unknown, unsent, late, stray; and pending."""
        req = self._requests()
        return {**req.counts, "pending": req.pending_count(), "suppressed": self.suppressed}

    # -- the exec-report stream ----------------------------------------------------------

    def _read_cursor(self) -> int:
        try:
            return int(self._cursor_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def commit(self) -> None:
        """Persist the cursor: every report up to `next_seq - 1` was handled."""
        seq = self.next_seq - 1
        if seq == self.committed:
            return
        tmp = self._cursor_path.with_name(self._cursor_path.name + ".tmp")
        tmp.write_text(f"{seq}\n")
        os.replace(tmp, self._cursor_path)
        self.committed = seq

    def _attach(self) -> None:
        if self._journal is None:
            try:
                self._journal = JournalReader(journal_path(self.run.run_dir))
            except (FileNotFoundError, JournalError):
                return
            self.accounts.backfill(self._journal, self.next_seq - 1)  # the account before our cursor
        if self._reader is None:
            try:
                self._reader = RingReader.attach(self.run.namespace, EXEC_RING, EVENT, start="latest")
            except (SegmentNotFound, RingError):
                self._reader = None

    def _detach_ring(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except RingError:
                pass
            self._reader = None

    def _from_journal(self, last: int, max_n: int) -> np.ndarray:
        if self._journal is None or last < self.next_seq:
            return np.zeros(0, EVENT)
        return self._journal.read(self.next_seq, min(max_n, last - self.next_seq + 1))

    def _take(self, batch: np.ndarray, max_n: int) -> np.ndarray:
        """Turn a ring batch (copied) into the next in-order records, filling gaps from the journal."""
        seqs = batch["exec"]["exec_seq"]
        batch = batch[seqs >= self.next_seq]
        if not len(batch):
            return batch
        first = int(batch[0]["exec"]["exec_seq"])
        if first > self.next_seq:  # missed on the ring (we attached late, or were evicted): the journal has it
            return self._from_journal(first - 1, max_n)
        return batch

    def _read(self, max_n: int, wait_s: float) -> np.ndarray:
        self._attach()
        out = np.zeros(0, EVENT)
        r = self._reader
        if r is not None:
            try:
                view = r.wait_read(max_n, timeout_s=wait_s) if wait_s > 0 else r.try_read(max_n)
                batch = np.array(view)  # copy: the slots go back to the writer now
                r.release()
                out = self._take(batch, max_n)
            except (ReaderEvicted, RingClosed):
                self._detach_ring()
        elif wait_s > 0:
            time.sleep(min(wait_s, 0.01))  # no ring yet (execution starting): look again soon
        if not len(out) and self._journal is not None:
            out = self._from_journal(self._journal.last_seq(), max_n)
            now = time.monotonic()
            if r is not None and now - self._last_check > 0.1:
                self._last_check = now
                if r.writer_state() != "alive":  # execution restarted or stopped: a new ring comes
                    self._detach_ring()
        if len(out):
            self.next_seq = int(out[-1]["exec"]["exec_seq"]) + 1
            self.accounts.apply(out)
        return out

    def poll_reports(self, max_n: int = 256, timeout_s: float = 0.0) -> np.ndarray:
        """The next exec reports (copies of EVENT records), waiting up to `timeout_s`.

        Only this consumer's reports unless `monitor_all`; commits the previous batch first.
        """
        self.commit()
        if self.consumer_id is None and not self.monitor_all:
            self.hello()
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            out = self._read(max_n, min(left, 0.05) if left > 0 else 0.0)
            if not self.monitor_all and len(out):
                out = out[out["consumer_id"] == self.consumer_id]
            if len(out) or time.monotonic() >= deadline:
                return out

    def account(self, venue) -> AccountView:
        """Balances and positions of `venue` (slug or Provider) as of the records read so far
        (`poll_reports` keeps it current)."""
        self._attach()
        return self.accounts.account(venue)

    def wait_for(self, client_order_id: str, statuses, timeout_s: float = 5.0) -> list:
        """Poll until a report of `client_order_id` has one of `statuses`; return its reports."""
        want = {int(s) for s in statuses}
        key = client_order_id.encode()
        seen = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for rec in self.poll_reports(timeout_s=min(0.2, max(0.0, deadline - time.monotonic()))):
                if rec["exec"]["client_order_id"] == key:
                    seen.append(rec.copy())
                    if int(rec["exec"]["status"]) in want:
                        return seen
        raise PeerGone(f"no report of {client_order_id!r} with status in {sorted(want)} within {timeout_s}s; "
                       f"saw {[int(r['exec']['status']) for r in seen]}")

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self.commit()
        self._detach_ring()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._req is not None:
            self._req.close()
            self._req = None

    def __enter__(self) -> "OrderClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
