"""The OKX v5 order adapter (spot and linear USDT swaps): the engine's `Venue`, over worker
threads, with order entry by REST (default) or over the private WebSocket.

`place`, `cancel`, `amend`, `query`, `list_open` and `query_account` are called by the
engine's thread; they only queue a job. Jobs of one order always go to the same worker
(by a hash of its clOrdId), so a cancel never overtakes its own order's placement. Each
worker owns one keep-alive REST connection. Outcomes come back through `emit(event)`:

    answer                                         event
    place: sCode 0                                 VenueOrderReported(ACK, source "rest"/"ws")
    cancel / amend: sCode 0                        nothing: the `orders` push reports the outcome
    sCode / code != 0                              VenueRequestRefused (query 51603: VenueOrderNotFound;
                                                   place 51016 "Duplicated clOrdId": duplicate=True)
    connection could not be opened                 VenueRequestRefused(code 0, "not sent: ...")
    timeout, reset, 5xx, 50001/50004/50013/50026   VenueOutcomeUnknown (with the signed timestamp)
    orders-pending (every page)                    VenueOpenOrdersListed / VenueOpenOrdersFailed
    balance + positions                            VenueAccountReported(full=True) / VenueAccountFailed

The private stream (private_ws.py) gives `orders` pushes (VenueOrderReported, or for a
failed amend VenueRequestRefused), `account` and `positions` pushes
(VenueAccountReported(full=False), once the engine asked for the account with
`query_account`: an engine that keeps no account state gets none), and the connection's
state.

`order_entry="ws"` (execution's `--order-entry ws`) places, cancels and amends over the
logged-in private connection and falls back to REST while there is none (nothing was sent
then); an unanswered WS request is an unknown outcome like an unanswered REST one. A WS
placement does not hold its worker for the answer (the reader thread turns the answer into
events, and a missing one into an unknown outcome); the order's cancel, amend and query wait
for that answer first (`_settle`), so none overtakes its placement. Place and amend carry `expTime` =
signed time + `recv_window_ms`, so the venue does not act on a request after that: an
order not found after it (plus the engine's grace) was never placed.

Cumulative quote is exact: the adapter sums fillSz x fillPx of each order's trades (by
tradeId, once each) and reports that sum whenever it covers the venue's accFillSz; else
accFillSz x avgPx (see parse.order).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from urllib.parse import urlsplit

import orjson

from events import BadInput, Instrument, OrderType, PeerGone, Provider, UnknownInstrument, to_decimal
from venues.trading import (
    Order, VenueAccountFailed, VenueAccountReported, VenueOpenOrdersFailed, VenueOpenOrdersListed,
    VenueOrderNotFound, VenueOrderReported, VenueOutcomeUnknown, VenueRequestRefused)
from venues.workers import RestWorkers, ask_until_up, tell_sent
from venues.wsreader import READ_TICK_S

from . import parse
from .private_ws import NotConnected, PrivateStream
from .rest import DUPLICATED_CLORDID, NO_SUCH_ORDER, NotSent, OkxRefused, OkxRest

INSTRUMENTS_PATH = "/api/v5/public/instruments"
SIDES = {1: "buy", 2: "sell"}
# our time in force -> OKX ordType of a limit order (a POST_ONLY/GTX member where events has one)
ORD_TYPES = {"GTC": "limit", "IOC": "ioc", "FOK": "fok", "GTX": "post_only", "POST_ONLY": "post_only"}
PAGE = 100                        # orders-pending: at most 100 per request, paged by `after`
SIM_PASSPHRASE = "meltica-sim-passphrase"


def passphrase_from_env(rest_url: str, env_prefix: str = "MELTICA_OKX") -> str:
    """The API key's passphrase: <prefix>_API_PASSPHRASE, else (a loopback venue only) the
    simulator's default; ValueError otherwise. Never printed."""
    value = os.environ.get(f"{env_prefix}_API_PASSPHRASE")
    if value:
        return value
    host = urlsplit(rest_url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
        return SIM_PASSPHRASE
    raise ValueError(f"no API passphrase: set {env_prefix}_API_PASSPHRASE (OKX keys have one)")


def fetch_registry(rest_url: str, *, timeout_s: float = 2.0, deadline_s: float = 30.0) -> parse.OkxRegistry:
    """SPOT and SWAP instruments from GET /api/v5/public/instruments, retrying until `deadline_s`."""
    def ask(rest: OkxRest) -> parse.OkxRegistry:
        entries = []
        for kind in ("SPOT", "SWAP"):
            entries.extend(rest.get(INSTRUMENTS_PATH, {"instType": kind}, signed=False))
        return parse.load_registry(entries)

    return ask_until_up(OkxRest(rest_url, timeout_s=timeout_s), ask, deadline_s)


class _Fills:
    """Per order (clOrdId): the trades seen and their summed quantity and quote. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by: dict[str, list] = {}   # clOrdId -> [trade ids, qty, quote]

    def add(self, coid: str, trade_id: int, qty: int, px: int) -> None:
        with self._lock:
            e = self._by.setdefault(coid, [set(), 0, 0])
            if trade_id not in e[0]:
                e[0].add(trade_id)
                e[1] += qty
                e[2] += qty * px

    def quote(self, coid: str, cum_qty: int) -> int | None:
        """The exact cumulative quote when the trades seen add up to `cum_qty`, else None."""
        if cum_qty == 0:
            return 0
        with self._lock:
            e = self._by.get(coid)
            return e[2] if e is not None and e[1] == cum_qty else None

    def forget(self, coid: str) -> None:
        with self._lock:
            self._by.pop(coid, None)


class OkxAdapter:
    provider = Provider.OKX
    fee_scale = parse.FEE_SCALE
    client_id_form = "alnum"     # clOrdId: alphanumerics, 1-32 characters (execution/ids.py)
    order_entries = ("rest", "ws")   # the order-entry paths this adapter offers (`order_entry`)
    # orders-pending: 60 requests / 2 s per user id, one instId or every instrument alike
    # ("GET / Order List"): one request for everything is never the dearer list
    list_all_from = 1

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str, registry, emit, *,
                 passphrase: str | None = None, workers: int = 2, timeout_s: float = 2.0,
                 recv_window_ms: int = 5000, dlq=None, telemetry=None, order_entry: str = "rest",
                 stream_lifetime_s: float | None = None):
        # stream_lifetime_s: OKX states no connection lifetime; its 64008 notice moves us (private_ws)
        if order_entry not in self.order_entries:
            raise ValueError(f"order_entry must be one of {self.order_entries}: order_entry={order_entry!r}")
        if not isinstance(registry, parse.OkxRegistry):   # a plain Registry: spot only
            reg = parse.OkxRegistry()
            for vs, inst in registry.venue_symbols(self.provider).items():
                reg.add(inst)
                reg.map_venue(self.provider, vs, inst.symbol)
            registry = reg
        passphrase = passphrase if passphrase is not None else passphrase_from_env(rest_url)
        self.rest_url, self.ws_url = rest_url, ws_url
        self.registry = registry
        self.emit = emit
        self.recv_window_ms = recv_window_ms
        self.order_entry = order_entry
        self.dlq, self.tel = dlq, telemetry
        self.fills = _Fills()
        self.account_followed = False    # account pushes go to the engine once it asked (query_account)
        self._req_ids = itertools.count(1)
        self._placing: dict[str, threading.Event] = {}   # vcoid -> set once its WS placement's outcome is out
        mk = lambda: OkxRest(rest_url, api_key, api_secret, passphrase, timeout_s=timeout_s)  # noqa: E731
        self.workers = RestWorkers(mk, workers, "okx-rest", dlq=dlq, venue="okx")
        self._submit = self.workers.submit
        self.stream = PrivateStream(ws_url, api_key, api_secret, passphrase, self._on_push, self._on_bad, emit,
                                    timeout_s=timeout_s, dlq=dlq, telemetry=telemetry)

    def __repr__(self) -> str:
        return f"OkxAdapter({self.rest_url}, order_entry={self.order_entry})"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and the private stream; with WS order entry (set by the constructor
        or by the process before start), wait for its login so the first orders need not take REST."""
        self.workers.start()
        self.stream.start()
        if self.order_entry == "ws":
            self.stream.wait_up(self.stream.timeout_s)

    def stop(self) -> None:
        self.workers.stop()
        self.stream.stop()
        self.workers.join()

    # -- the engine's Venue ------------------------------------------------------------

    def order_args(self, o: Order) -> dict:
        """The place-order body of `o` (REST and WS alike)."""
        spec = self.registry.spec(self.registry.venue_symbol(self.provider, o.instrument.id))
        args = {"instId": spec.inst_id, "tdMode": spec.td_mode, "clOrdId": o.venue_client_order_id,
                "side": SIDES[int(o.side)], "sz": spec.to_sz(o.qty)}
        if o.order_type is OrderType.LIMIT:
            try:
                args["ordType"] = ORD_TYPES[o.tif.name]
            except KeyError:
                raise BadInput(f"okx has no order type for time in force {o.tif.name}") from None
            args["px"] = to_decimal(o.price, o.instrument.px_scale)
        else:
            args["ordType"] = "market"
            if spec.inst_type == "SPOT":
                args["tgtCcy"] = "base_ccy"     # sz in the base currency (a buy defaults to quote)
        if o.reduce_only:   # a boolean in the body (net mode); refused 51169/51170 if it would not reduce
            args["reduceOnly"] = True
        return args

    def place(self, o: Order) -> None:
        vcoid = o.venue_client_order_id
        try:
            args = self.order_args(o)
        except BadInput as e:
            self.emit(VenueRequestRefused(vcoid, "place", 0, f"not sent: {e}"))
            return
        stamps = (o.consumer_id, o.client_order_id, o.created_ns, time.time_ns())
        self._submit(vcoid, self._place, vcoid, args, stamps)

    def cancel(self, o: Order) -> None:
        vs = self.registry.venue_symbol(self.provider, o.instrument.id)
        self._submit(o.venue_client_order_id, self._cancel, o.venue_client_order_id, vs)

    def amend(self, o: Order, qty: int, price: int) -> None:
        vcoid = o.venue_client_order_id
        try:
            spec = self.registry.spec(self.registry.venue_symbol(self.provider, o.instrument.id))
            args = {"instId": spec.inst_id, "clOrdId": vcoid,
                    "reqId": f"a{time.time_ns() & 0xFFFFFFFFFFFF:x}{next(self._req_ids):x}"}
            if qty != o.qty:
                args["newSz"] = spec.to_sz(qty)
            if price != o.price:
                args["newPx"] = to_decimal(price, o.instrument.px_scale)
        except BadInput as e:
            self.emit(VenueRequestRefused(vcoid, "amend", 0, f"not sent: {e}"))
            return
        if "newSz" not in args and "newPx" not in args:
            self.emit(VenueRequestRefused(vcoid, "amend", 0, "not sent: neither quantity nor price changes"))
            return
        self._submit(vcoid, self._amend, vcoid, args)

    def query(self, o: Order) -> None:
        vs = self.registry.venue_symbol(self.provider, o.instrument.id)
        self._submit(o.venue_client_order_id, self._query, o.venue_client_order_id, vs)

    def list_open(self, instrument: Instrument | None, request_id: int) -> None:
        vs = self.registry.venue_symbol(self.provider, instrument.id) if instrument is not None else None
        self._submit(vs or "*", self._list_open, request_id, vs)

    def query_account(self) -> None:
        self.account_followed = True
        self._submit("account", self._account)

    # -- jobs (worker threads) ---------------------------------------------------------

    def _entry(self, rest: OkxRest, op: str, path: str, args: dict, exp: bool, stamp: list) -> tuple[list, str]:
        """Send one order-entry request the configured way; (data, "ws" | "rest"). `stamp`
        gets [path, sent_ns, replied_ns] (time.time_ns; replied 0: no answer)."""
        exp_ms = self.recv_window_ms if exp else 0
        if self.order_entry == "ws":
            try:
                stamp[:] = ["ws", time.time_ns(), 0]
                data = self.stream.request(op, args, exp_ms)
                stamp[2] = time.time_ns()
                return data, "ws"
            except NotConnected:
                if self.tel is not None:
                    self.tel.inc("exec.order.ws_fallback", venue="okx", op=op)
        return self._rest_entry(rest, path, args, exp, stamp), "rest"

    def _rest_entry(self, rest: OkxRest, path: str, args: dict, exp: bool, stamp: list) -> list:
        """One order-entry request over REST; its data. `stamp` as `_entry`'s."""
        stamp[:] = ["rest", time.time_ns(), 0]
        try:
            return rest.post(path, args, self.recv_window_ms if exp else 0)
        finally:
            stamp[1:] = [rest.sent_ns or stamp[1], rest.replied_ns]

    def _place(self, rest: OkxRest, vcoid: str, args: dict, stamps: tuple) -> None:
        sent_ms = time.time_ns() // 1_000_000
        if self.order_entry == "ws" and self._place_ws(vcoid, args, stamps, sent_ms):
            return
        stamp: list = ["rest", 0, 0]
        try:
            data = self._rest_entry(rest, "/api/v5/trade/order", args, True, stamp)
        except NotSent as e:
            self.emit(VenueRequestRefused(vcoid, "place", 0, f"not sent: {e}"))
            return
        except (OkxRefused, PeerGone) as e:
            data = e
        self._placed(vcoid, stamps, stamp, data, "rest", sent_ms)

    def _place_ws(self, vcoid: str, args: dict, stamps: tuple, sent_ms: int) -> bool:
        """Hand the placement to the private connection and return (False: none is up, nothing
        sent); its outcome comes on the connection's reader thread."""
        placed = self._placing[vcoid] = threading.Event()
        stamp: list = ["ws", time.time_ns(), 0]

        def done(out) -> None:
            try:
                if not isinstance(out, PeerGone):
                    stamp[2] = time.time_ns()
                self._placed(vcoid, stamps, stamp, out, "ws", sent_ms)
            finally:
                if self._placing.get(vcoid) is placed:
                    del self._placing[vcoid]
                placed.set()

        try:
            self.stream.request_nowait("order", args, self.recv_window_ms, done)
        except NotConnected:
            self._placing.pop(vcoid, None)
            placed.set()
            if self.tel is not None:
                self.tel.inc("exec.order.ws_fallback", venue="okx", op="order")
            return False
        except PeerGone as e:   # the send failed: it may have left
            done(e)
        return True

    def _placed(self, vcoid: str, stamps: tuple, stamp: list, out, how: str, sent_ms: int) -> None:
        """A placement's outcome (its answer's data, OkxRefused or PeerGone) -> its events, then
        telemetry."""
        if isinstance(out, OkxRefused):
            self.emit(VenueRequestRefused(vcoid, "place", out.code, out.msg, out.code == DUPLICATED_CLORDID))
        elif isinstance(out, PeerGone):
            self.emit(VenueOutcomeUnknown(vcoid, "place", str(out), sent_ms))
        else:
            try:
                self.emit(parse.placed(out[0], how))
            except (BadInput, IndexError, KeyError, TypeError, ValueError) as e:
                self._bad_reply("place", vcoid, out, e)
        self._sent(vcoid, stamps, stamp)

    def _settle(self, vcoid: str) -> None:
        """Wait until the WS placement of `vcoid` (if one is out) has its outcome: its answer, or
        an unknown outcome after the stream's timeout (looked for at least every READ_TICK_S)."""
        ev = self._placing.get(vcoid)
        if ev is not None:
            ev.wait(self.stream.timeout_s + 2 * READ_TICK_S)

    def _sent(self, vcoid: str, stamps: tuple, stamp: list) -> None:
        """Tell telemetry when a placement left (venues.workers.tell_sent), by its path and times."""
        path, sent_ns, replied_ns = stamp
        tell_sent(self.tel, vcoid, stamps, sent_ns or stamps[3], replied_ns, path, venue="okx")

    def _bad_reply(self, action: str, vcoid: str, data, e: Exception) -> None:
        if self.dlq is not None:
            self.dlq.put("bad_order_reply", priority="high", venue="okx", raw=orjson.dumps(data), error=str(e))
        self.emit(VenueOutcomeUnknown(vcoid, action, f"unreadable reply: {type(e).__name__}: {e}"))

    def _cancel(self, rest: OkxRest, vcoid: str, inst_id: str) -> None:
        self._settle(vcoid)
        try:
            self._entry(rest, "cancel-order", "/api/v5/trade/cancel-order", {"instId": inst_id, "clOrdId": vcoid},
                        False, [])
        except OkxRefused as e:
            self.emit(VenueRequestRefused(vcoid, "cancel", e.code, e.msg))
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "cancel", str(e)))

    def _amend(self, rest: OkxRest, vcoid: str, args: dict) -> None:
        self._settle(vcoid)
        sent_ms = time.time_ns() // 1_000_000
        try:
            self._entry(rest, "amend-order", "/api/v5/trade/amend-order", args, True, [])
        except OkxRefused as e:
            self.emit(VenueRequestRefused(vcoid, "amend", e.code, e.msg))
        except NotSent as e:
            self.emit(VenueRequestRefused(vcoid, "amend", 0, f"not sent: {e}"))
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "amend", str(e), sent_ms))

    def _report(self, d: dict, source: str):
        coid = d.get("clOrdId") or ""
        spec = self.registry.spec(d["instId"])
        cum = spec.qty(d.get("accFillSz") or "")
        return parse.order(d, self.registry, source, self.fills.quote(coid, cum) if coid else None)

    def _query(self, rest: OkxRest, vcoid: str, inst_id: str) -> None:
        self._settle(vcoid)
        try:
            data = rest.get("/api/v5/trade/order", {"instId": inst_id, "clOrdId": vcoid})
        except OkxRefused as e:
            if e.code == NO_SUCH_ORDER:
                self.emit(VenueOrderNotFound(vcoid))
            else:
                self.emit(VenueRequestRefused(vcoid, "query", e.code, e.msg))
            return
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "query", str(e)))
            return
        try:
            r = self._report(data[0], "query")
        except (BadInput, IndexError, KeyError, TypeError, ValueError) as e:
            self._bad_reply("query", vcoid, data, e)
            return
        self.emit(r)
        if isinstance(r, VenueOrderReported) and r.status is not None and r.status.terminal:
            self.fills.forget(vcoid)     # its last push may never come

    def _list_open(self, rest: OkxRest, request_id: int, inst_id: str | None) -> None:
        items: list = []
        params = {"instId": inst_id, "limit": str(PAGE)} if inst_id else {"limit": str(PAGE)}
        try:
            while True:
                page = rest.get("/api/v5/trade/orders-pending", params)
                items.extend(page)
                if len(page) < PAGE:
                    break
                params = {**params, "after": page[-1]["ordId"]}
        except OkxRefused as e:
            self.emit(VenueOpenOrdersFailed(request_id, f"refused: {e.code} {e.msg}"))
            return
        except PeerGone as e:
            self.emit(VenueOpenOrdersFailed(request_id, str(e)))
            return
        except (KeyError, TypeError) as e:
            self.emit(VenueOpenOrdersFailed(request_id, f"unreadable reply: {type(e).__name__}: {e}"))
            return
        reports = []
        for item in items:
            try:
                r = self._report(item, "open_orders")
                if isinstance(r, VenueOrderReported):
                    reports.append(r)
            except UnknownInstrument:   # an instrument we do not trade (another client of the account)
                if self.tel is not None:
                    self.tel.inc("exec.reconcile.foreign")
            except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
                if self.dlq is not None:
                    self.dlq.put("bad_open_order", priority="high", venue="okx", raw=orjson.dumps(item),
                                 error=f"{type(e).__name__}: {e}")
        self.emit(VenueOpenOrdersListed(tuple(reports), request_id))

    def _account(self, rest: OkxRest) -> None:
        try:
            bal = rest.get("/api/v5/account/balance")
            pos = rest.get("/api/v5/account/positions")
            ev = VenueAccountReported(parse.balances(bal), parse.positions(pos, self.registry), full=True,
                                      event_ts_ns=parse.latest_ns(bal + pos) or time.time_ns(), source="rest")
        except OkxRefused as e:
            self.emit(VenueAccountFailed(f"refused: {e.code} {e.msg}"))
            return
        except PeerGone as e:
            self.emit(VenueAccountFailed(str(e)))
            return
        except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
            self.emit(VenueAccountFailed(f"unreadable reply: {type(e).__name__}: {e}"))
            return
        self.emit(ev)

    # -- the private stream (its reader thread) ----------------------------------------------

    def _on_push(self, channel: str, data: list, raw: bytes) -> None:
        try:
            if channel == "orders":
                for d in data:
                    self._on_order(d)
            elif channel in ("account", "positions") and not self.account_followed:
                return    # an engine that keeps no account state never asks for it
            elif channel == "account":
                balances = parse.balances(data)
                if balances:
                    self.emit(VenueAccountReported(balances, event_ts_ns=parse.latest_ns(data) or time.time_ns(),
                                                   source="stream"))
            elif channel == "positions":
                positions = parse.positions(data, self.registry)
                if positions:
                    ts = parse.latest_ns(data) or time.time_ns()
                    self.emit(VenueAccountReported(positions=positions, event_ts_ns=ts, source="stream"))
            elif self.tel is not None:
                self.tel.inc("exec.stream.ignored", event=channel)
        except (BadInput, KeyError, TypeError, ValueError, AttributeError) as e:
            self._on_bad(raw, f"{type(e).__name__}: {e}")

    def _on_order(self, d: dict) -> None:
        coid = d.get("clOrdId") or ""
        spec = self.registry.spec(d["instId"])
        if coid and d.get("tradeId"):
            self.fills.add(coid, int(d["tradeId"]), spec.qty(d.get("fillSz") or ""),
                           parse.price(d.get("fillPx") or "", spec.inst.px_scale))
        r = parse.order(d, self.registry, "stream",
                        self.fills.quote(coid, spec.qty(d.get("accFillSz") or "")) if coid else None)
        self.emit(r)
        if coid and isinstance(r, VenueOrderReported) and r.status is not None and r.status.terminal:
            self.fills.forget(coid)

    def _on_bad(self, raw: bytes, error: str) -> None:
        if self.dlq is not None:
            self.dlq.put("bad_user_stream_frame", priority="high", venue="okx", raw=raw, error=error)
        if self.tel is not None:
            self.tel.inc("exec.stream.bad_frames", venue="okx")
