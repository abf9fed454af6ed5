"""The consumer side of dispatch: register, subscribe, read the ring, trading switch."""

from __future__ import annotations

import os
import time

import numpy as np
import orjson
import zmq

from channels.identity import consumer_key
from channels.names import dispatch_endpoint
from channels.server import control_socket
from events import EVENT, Closed, Command, Kind, PeerGone, ResultStatus
from events.errors import BadInput
from core.run import RunContext
from shm import RingClosed, RingError, RingReader, SpinPark, WaitStrategy

_CRITICAL = np.zeros(256, bool)
for _k in Kind:
    _CRITICAL[int(_k)] = _k.critical


class Result(dict):
    """A control result (`channels.messages.reply`): the reply dict, with typed accessors."""

    @property
    def ok(self) -> bool:
        return bool(self.get("ok"))

    @property
    def code(self) -> str | None:
        return self.get("code")

    @property
    def reason(self) -> str:
        return self.get("reason") or ""

    @property
    def error(self) -> dict | None:
        """{"code", "message"} of a failed command, None when it succeeded."""
        return None if self.ok else {"code": self.code, "message": self.reason}

    @property
    def routing_version(self) -> int:
        return int(self.get("routing_version", 0))


class Consumer:
    """One registered consumer: its control socket, its ring, its trading switch.

    Use from one thread. Batches returned by `events()` are valid until the next call.
    """

    def __init__(self, name: str, run: RunContext | str | None = None, control: str | None = None,
                 *, timeout_s: float = 3.0, filter_stale: bool = True,
                 wait: WaitStrategy | None = None, heartbeat_s: float = 5.0):
        ctx = run if isinstance(run, RunContext) else RunContext.from_env(run)
        self.name = name
        self.run = ctx
        self.key = consumer_key(ctx.run_dir, name)  # proves the name to dispatch and execution
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self._next_beat = time.monotonic() + heartbeat_s
        self.filter_stale = filter_stale
        # events(timeout_s) spins a few rounds, then parks on the ring's futex: dispatch's
        # publish wakes it within microseconds, and an idle consumer burns no CPU that
        # dispatch or ingest need (2 cores shared by every process of a run).
        self.wait = wait or SpinPark(spins=10, max_park_ns=2_000_000)
        self.endpoint = control or dispatch_endpoint(ctx.run_dir)
        self._ctx = zmq.Context.instance()
        self._sock = self._socket()
        self._rid = 0
        self._closed = False
        self.reader: RingReader | None = None
        self.min_routing_version = 0  # market data stamped before this is stale
        self.filtered = 0             # stale market-data records dropped so far
        self.recoveries = 0           # times we re-registered with a restarted dispatch
        self._restore: dict = {}  # dispatch's own listing of our subscriptions, for a restart
        self._wanted_trading: bool | None = None
        self._next_check = 0.0
        try:
            self._register()
        except BaseException:
            self._sock.close(0)
            raise

    def _register(self) -> None:
        res = self._request("register", pid=os.getpid())
        if not res.ok:
            raise BadInput(f"register {self.name!r} refused: {res.error}")
        self.consumer_id: int = res["consumer_id"]
        self.ring_name: str = res["rings"]["md"]
        self._trading = bool(res["trading_enabled"])
        self.reader = RingReader.attach(self.run.namespace, self.ring_name, EVENT, start="oldest")

    # -- control ---------------------------------------------------------------------

    def _socket(self) -> zmq.Socket:
        sock = control_socket(self._ctx, zmq.DEALER)
        sock.connect(self.endpoint)
        return sock

    def _frame(self, cmd: str, fields: dict) -> tuple[int, bytes]:
        self._rid += 1
        return self._rid, orjson.dumps({"cmd": cmd, "request_id": self._rid, "consumer": self.name,
                                        "key": self.key, **fields})

    def _request(self, cmd: str, **fields) -> Result:
        if self._closed:
            raise Closed(f"consumer {self.name!r} is closed")
        rid, frame = self._frame(cmd, fields)
        self._sock.send(frame)
        deadline = time.monotonic() + self.timeout_s
        acked = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1):
                raise PeerGone(f"dispatch did not answer {cmd} within {self.timeout_s}s "
                               f"(acked={acked}) at {self.endpoint}")
            reply = orjson.loads(self._sock.recv())
            if reply.get("request_id") != rid:
                continue  # a late reply to an earlier, timed-out request, or a heartbeat's
            if reply.get("type") == "ack":
                acked = True
                continue
            if reply.get("code") == "busy":  # not done: our earlier replies were unread; again
                time.sleep(min(0.01, max(0.0, left)))
                self._sock.send(frame)
                continue
            self._next_beat = time.monotonic() + self.heartbeat_s  # any request shows we live
            return Result(reply)

    def _beat(self) -> None:
        """Show dispatch we live (a heartbeat, not waited for); drop the replies of earlier ones."""
        now = time.monotonic()
        if now < self._next_beat:
            return
        self._next_beat = now + self.heartbeat_s
        try:
            while True:
                self._sock.recv(zmq.NOBLOCK)  # only stale replies can wait here between requests
        except zmq.Again:
            pass
        try:
            self._sock.send(self._frame("heartbeat", {})[1], zmq.NOBLOCK)
        except zmq.Again:
            pass

    def subscribe(self, symbol: str, providers=None, kinds=None) -> Result:
        """Receive `kinds` ("book", "trade", "ticker"; all by default) of `symbol` from
        `providers` (slugs; all by default)."""
        res = self._request("subscribe", symbol=symbol, providers=_list(providers), kinds=_list(kinds))
        self._remember(res)
        return res

    def merged_subscribe(self, symbol: str, providers) -> Result:
        """Receive one MERGED record per closed window of `symbol` over >= 2 `providers`."""
        res = self._request("merged_subscribe", symbol=symbol, providers=_list(providers))
        self._remember(res)
        return res

    def unsubscribe(self, symbol: str, providers=None, kinds=None, merged: bool = False) -> Result:
        """Stop receiving; market data already in the ring from before is filtered out."""
        res = self._request("unsubscribe", symbol=symbol, providers=_list(providers),
                            kinds=_list(kinds), merged=merged)
        if res.ok and res.get("changed"):
            self.min_routing_version = max(self.min_routing_version, res.routing_version)
        self._remember(res)
        return res

    def _remember(self, res: Result) -> None:
        """After a change, keep dispatch's own listing of what we now receive: replaying
        it after a dispatch restart restores exactly that, partial unsubscribes included."""
        if res.ok and res.get("changed", True):
            listing = self._request("list_subscriptions")
            if listing.ok:
                self._restore = {"subscriptions": listing.get("subscriptions", []),
                                 "merged": listing.get("merged", [])}

    def set_trading_mode(self, enabled: bool) -> Result:
        """Ask dispatch (and through it execution) to switch trading on or off."""
        res = self._request("set_trading_mode", enabled=bool(enabled))
        if res.ok:
            self._trading = bool(res["trading_enabled"])
            self._wanted_trading = bool(enabled)
        return res

    def list_subscriptions(self) -> Result:
        return self._request("list_subscriptions")

    def heartbeat(self) -> Result:
        return self._request("heartbeat")

    @property
    def trading_enabled(self) -> bool:
        """The local trading switch: order clients must refuse to send while it is off."""
        return self._trading

    # -- events ----------------------------------------------------------------------

    def events(self, max_n: int = 1024, timeout_s: float = 0.0) -> np.ndarray:
        """The next batch of records (EVENT dtype, maybe empty), waiting up to `timeout_s`.

        Critical records (ControlAck/Result, ExecReport) are always included; market
        data stamped with a routing_version older than our last effective unsubscribe is
        dropped. The batch is valid until the next call.
        """
        r = self.reader
        if self._closed:
            raise Closed(f"consumer {self.name!r} is closed")
        if r is None:  # dispatch restarted and we could not re-register yet
            return self._recover(timeout_s)
        r.release()
        try:
            if timeout_s:
                self.wait.reset()
                batch = r.wait_read(max_n, timeout_s, self.wait)
            else:
                batch = r.try_read(max_n)
        except RingClosed:
            batch = r.try_read(0)
        if self.heartbeat_s:
            self._beat()
        if len(batch) == 0:
            now = time.monotonic()
            if now >= self._next_check:  # a cheap check, at most 4 times a second
                self._next_check = now + 0.25
                if r.writer_state() != "alive":
                    return self._recover(0)
            return batch
        crit = _CRITICAL[batch["kind"]]
        if crit.any():
            self._follow_switch(batch[crit])
        if self.filter_stale and self.min_routing_version:
            keep = crit | (batch["routing_version"] >= self.min_routing_version)
            if not keep.all():
                self.filtered += int(len(keep) - keep.sum())
                return batch[keep]
        return batch

    def _recover(self, timeout_s: float) -> np.ndarray:
        """Dispatch went away: detach, then re-register and subscribe again once it is back.

        Market data is not replayed (a new dispatch starts from the live feed); the
        subscriptions, merged subscriptions and the trading mode last in effect (ours or
        an operator's) are restored.
        """
        if self.reader is not None:
            self.reader.release()
            self.reader.close()
            self.reader = None
            self._sock.close(0)
            self._sock = self._socket()
        saved, self.timeout_s = self.timeout_s, min(self.timeout_s, 0.5)
        try:
            self._register()
            self.min_routing_version = 0  # a new dispatch numbers its routing table afresh
            for sub in self._restore.get("subscriptions", []):
                self._request("subscribe", symbol=sub["symbol"],
                              providers=None if sub["provider"] == "*" else [sub["provider"]],
                              kinds=None if sub["kind"] == "*" else [sub["kind"]])
            for m in self._restore.get("merged", []):
                self._request("merged_subscribe", symbol=m["symbol"], providers=m["providers"])
            if self._wanted_trading is not None:
                self.set_trading_mode(self._wanted_trading)
            self.recoveries += 1
        except (PeerGone, BadInput, RingError):
            if self.reader is not None:
                self.reader.close()
                self.reader = None
            time.sleep(min(timeout_s, 0.1))
        finally:
            self.timeout_s = saved
        return _EMPTY

    def _follow_switch(self, crit: np.ndarray) -> None:
        for rec in crit:
            if rec["kind"] != Kind.CONTROL_RESULT:
                continue
            res = rec["result"]
            if res["command"] == Command.SET_TRADING_MODE and res["status"] == ResultStatus.OK and res["trading"] >= 0:
                self._trading = bool(res["trading"])
                self._wanted_trading = self._trading  # an operator's switch, too, outlives a dispatch restart

    def __iter__(self):
        """Yield single records (private copies) until the consumer is closed."""
        while not self._closed:
            for rec in self.events(256, timeout_s=0.05):
                yield rec.copy()

    def dispatch_state(self) -> str:
        """State of dispatch as the ring shows it: alive, closed, dead or replaced."""
        return self.reader.writer_state() if self.reader is not None else "closed"

    # -- lifecycle -------------------------------------------------------------------

    def close(self, unregister: bool = True) -> None:
        """Unregister (dispatch releases the ring and subscriptions) and detach."""
        if self._closed:
            return
        try:
            if unregister:
                try:
                    self._request("unregister")
                except PeerGone:
                    pass  # dispatch is gone; it will find our pid dead anyway
        finally:
            self._closed = True
            if self.reader is not None:
                self.reader.release()
                self.reader.close()
                self.reader = None
            self._sock.close(0)

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_EMPTY = np.zeros(0, EVENT)


def _list(x):
    if x is None:
        return None
    return [x] if isinstance(x, str) else list(x)
