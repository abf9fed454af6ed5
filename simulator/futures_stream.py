"""Binance USD-M user data, as Binance serves it since 2026-04-23: listenKey streams on
`wss://fstream.binance.com/private`; and the account those streams report (a USDT wallet
and one-way positions).

  POST   /fapi/v1/listenKey     -> {"listenKey": k}: the account's active key (one per
                                   account, extended 60 min), or a new one
  PUT    /fapi/v1/listenKey     -> {"listenKey": k}, 60 more minutes; -1125 when there is none
  DELETE /fapi/v1/listenKey     -> {}; the key's connections are closed
  (USER_STREAM: the X-MBX-APIKEY header, no signature)
  WS     /private/ws/<listenKey>                       raw frames, every event of the key
         /private/ws?listenKey=<k>&events=E1/E2        raw frames, those events only
         /private/stream[?listenKey=<k>[&events=..] | ?streams=<k>]
                                                       combined frames {"stream": k, "data": ev}
         on any of them: {"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": [<listenKey>], "id"}
         -> {"result": null, "id"} (what Binance's SDK does on /private/stream); LIST_SUBSCRIPTIONS
         (a key named in the URL that does not exist: HTTP 400 {"code": -1125, ...}, no upgrade;
         one subscribed by message that does not exist: accepted, never delivers)

Events, one JSON object per text frame, in this order per fill:
  TRADE_LITE (a fill, few fields), ORDER_TRADE_UPDATE (every order change: x NEW, TRADE,
  CANCELED, EXPIRED, AMENDMENT), ACCOUNT_UPDATE (m "ORDER": the wallet and the position of
  the symbol after the fill); `listenKeyExpired` when the key runs out (then the key's
  connections are closed). The server pings every `ping_interval_s` (aiohttp heartbeat).

Positions, one-way mode (positionSide BOTH): a fill on the position's side adds to it (entry
price: the size-weighted average, kept exact as a fraction, shown rounded); a fill against
it closes up to its size and realizes (fill price - entry) x closed x direction into the
USDT wallet; the rest opens the other way at the fill price. Unrealized PnL is taken at the
book's mid (Binance uses the mark price, which the simulator does not model). No fees,
funding or margin checks.

Faults (simulator/faults.py): duplicate_report (the next ORDER_TRADE_UPDATE twice),
reorder_report (the next ORDER_TRADE_UPDATE after the one that follows it, or 1 s late),
disconnect_userstream (close every /private connection); drop_response / delay_response act
on the order REST (futures_api.py). server_shutdown and delay_subscribe are WebSocket-API
faults: refused here.
"""

from __future__ import annotations

import asyncio
import secrets
from fractions import Fraction
from typing import Any, Callable

import orjson
from aiohttp import WSMsgType, web

from .book import ASK, BID
from .faults import FaultBox, FaultError
from .hub import Client, Hub
from .instruments import Instrument, format_decimal
from .matching import ExecEvent, Order

LISTEN_KEY_TTL_S = 3600.0
WALLET_SCALE = 8
START_WALLET = 10_000 * 10**WALLET_SCALE    # 10,000 USDT


def _round(value: Fraction, decimals: int) -> int:
    """`value` as a mantissa at `decimals`, rounded half-even."""
    return round(value * 10**decimals)


class Position:
    """One symbol's net position: size (mantissa at qty decimals, signed), cost (size x entry,
    exact), realized PnL (exact)."""

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.size = 0
        self.cost = Fraction(0)      # size x entry price, in quote units (signed)
        self.realized = Fraction(0)

    def fill(self, side: int, qty: int, price: int) -> Fraction:
        """Apply one fill; return the PnL it realized (quote units)."""
        q = Fraction(qty, 10**self.inst.qty_decimals)
        p = Fraction(price, 10**self.inst.price_decimals)
        signed = q if side == BID else -q
        size = Fraction(self.size, 10**self.inst.qty_decimals)
        realized = Fraction(0)
        if size == 0 or (size > 0) == (signed > 0):
            self.cost += signed * p
            size += signed
        else:
            closing = min(abs(signed), abs(size))
            entry = self.cost / size
            direction = 1 if size > 0 else -1
            realized = (p - entry) * closing * direction
            self.cost -= entry * closing * direction
            size += closing * (1 if signed > 0 else -1)
            rest = abs(signed) - closing
            if rest:
                self.cost = (rest if signed > 0 else -rest) * p
                size = rest if signed > 0 else -rest
            elif size == 0:
                self.cost = Fraction(0)
        self.size = int(size * 10**self.inst.qty_decimals)
        self.realized += realized
        return realized

    @property
    def entry(self) -> Fraction:
        return self.cost / Fraction(self.size, 10**self.inst.qty_decimals) if self.size else Fraction(0)

    def unrealized(self, mid: Fraction | None) -> Fraction:
        if not self.size or mid is None:
            return Fraction(0)
        return (mid - self.entry) * Fraction(self.size, 10**self.inst.qty_decimals)


class Account:
    """The USDT wallet and the positions of the simulated account."""

    def __init__(self, mids: Callable[[Instrument], Fraction | None]):
        self.wallet = Fraction(START_WALLET, 10**WALLET_SCALE)
        self.positions: dict[str, Position] = {}
        self.mids = mids

    def fill(self, o: Order, qty: int, price: int) -> Position:
        pos = self.positions.get(o.symbol)
        if pos is None:
            pos = self.positions[o.symbol] = Position(o.inst)
        self.wallet += pos.fill(o.side, qty, price)
        return pos

    def wallet_text(self) -> str:
        return format_decimal(_round(self.wallet, WALLET_SCALE), WALLET_SCALE, WALLET_SCALE)

    def position_fields(self, pos: Position) -> dict[str, str]:
        i = pos.inst
        return {"pa": format_decimal(pos.size, i.qty_decimals, i.qty_decimals),
                "ep": format_decimal(_round(pos.entry, i.price_decimals + 3), i.price_decimals + 3, i.price_decimals + 3),
                "up": format_decimal(_round(pos.unrealized(self.mids(i)), WALLET_SCALE), WALLET_SCALE, WALLET_SCALE),
                "cr": format_decimal(_round(pos.realized, WALLET_SCALE), WALLET_SCALE, WALLET_SCALE)}

    def unrealized_total(self) -> Fraction:
        return sum((p.unrealized(self.mids(p.inst)) for p in self.positions.values()), Fraction(0))


def order_trade_update(ev: ExecEvent, tif: str, reduce_only: bool, avg: str, modify_id: str = "") -> dict[str, Any]:
    """The ORDER_TRADE_UPDATE of one matching-engine event (x REPLACED -> AMENDMENT, with `M`
    the request's modifyId when it had one)."""
    o = ev.order
    pd, qd = o.inst.price_decimals, o.inst.qty_decimals
    traded = ev.x == "TRADE"
    body = {
        "s": o.symbol, "c": o.client_order_id, "S": "BUY" if o.side == BID else "SELL", "o": o.type, "f": tif,
        "q": format_decimal(o.qty, qd, qd), "p": format_decimal(o.price, pd, pd), "ap": avg, "sp": "0",
        "x": "AMENDMENT" if ev.x == "REPLACED" else ev.x, "X": o.status, "i": o.order_id,
        "l": format_decimal(ev.last_qty, qd, qd), "z": format_decimal(o.executed, qd, qd),
        "L": format_decimal(ev.last_price, pd, pd), "T": ev.ts_ms, "t": ev.trade_id if traded else 0,
        "b": "0", "a": "0", "m": ev.maker, "R": reduce_only, "wt": "CONTRACT_PRICE", "ot": o.type, "ps": "BOTH",
        "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
    }
    if traded:
        body["N"], body["n"] = o.inst.quote, "0"
    if ev.x == "EXPIRED":
        body["er"] = "0"
    if ev.x == "REPLACED" and modify_id:
        body["M"] = modify_id
    return {"e": "ORDER_TRADE_UPDATE", "E": ev.ts_ms, "T": ev.ts_ms, "o": body}


class FuturesStreams:
    """The account's listen key, its /private connections, and the events they carry."""

    def __init__(self, faults: FaultBox, clock_ms: Callable[[], int], account: Account, *,
                 lifetime_s: float = 24 * 3600.0, ping_interval_s: float = 180.0,
                 listen_key_ttl_s: float = LISTEN_KEY_TTL_S):
        self.faults, self.clock_ms, self.account = faults, clock_ms, account
        self.lifetime_s, self.ping_interval_s, self.ttl_s = lifetime_s, ping_interval_s, listen_key_ttl_s
        self.hub = Hub("binance-usdm/private")
        self.key: str | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.describe: Callable[[Order], tuple[str, bool, str]] = lambda o: (o.tif, False, "0")
        self.modify_id = ""           # the modifyId of the modify being carried out (set by the API)
        self._late: tuple | None = None   # an ORDER_TRADE_UPDATE held back by reorder_report
        self.counts = {k: 0 for k in ("reports", "reports_unheard", "account_updates", "trade_lites",
                                      "keys_created", "keepalives", "keys_expired", "keys_deleted", "refused",
                                      "subscribes")}

    # -- listenKey ---------------------------------------------------------------------
    def create_key(self) -> str:
        if self.key is None:
            self.key = secrets.token_urlsafe(48)[:64]
            self.counts["keys_created"] += 1
        self._extend()
        return self.key

    def keepalive(self) -> bool:
        if self.key is None:
            return False
        self.counts["keepalives"] += 1
        self._extend()
        return True

    def delete_key(self) -> None:
        if self.key is not None:
            self.counts["keys_deleted"] += 1
            self._end_key(None)

    def expire_key(self) -> int:
        """The key runs out now: listenKeyExpired to its connections, which are then closed."""
        if self.key is None:
            return 0
        self.counts["keys_expired"] += 1
        frame = orjson.dumps({"e": "listenKeyExpired", "E": self.clock_ms(), "listenKey": self.key})
        return self._end_key(frame)

    def forget_key(self) -> None:
        """The venue loses the key without a word (tests): connections stay, a keepalive gets -1125."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.key = None

    def _extend(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_later(self.ttl_s, self.expire_key)

    def _end_key(self, frame: bytes | None) -> int:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        key, self.key = self.key, None
        clients = [c for c in self.hub.clients if key in c.state["keys"]]
        for client in clients:
            if frame is not None:
                client.push(None, self._wrap(client, key, frame))
            asyncio.get_running_loop().call_later(0.05, self.hub.close, client, False)
        return len(clients)

    # -- connections -------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/private/ws", self.serve)
        app.router.add_get("/private/ws/{key}", self.serve)
        app.router.add_get("/private/stream", self.serve)
        app.on_shutdown.append(self.hub.shutdown)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """One /private connection: raw (`/private/ws...`) or combined (`/private/stream...`)."""
        combined = request.path.endswith("/stream")
        named = request.match_info.get("key") or request.query.get("listenKey")
        keys = {named} if named else {k for k in request.query.get("streams", "").split("/") if k}
        if named is not None and named != self.key:
            self.counts["refused"] += 1
            return web.Response(body=orjson.dumps({"code": -1125, "msg": "This listenKey does not exist."}),
                                status=400, content_type="application/json")
        events = request.query.get("events")
        ws = web.WebSocketResponse(autoping=True, heartbeat=self.ping_interval_s, max_msg_size=1 << 16)
        await ws.prepare(request)
        client = Client(self.hub, ws, request, combined)
        client.state.update(keys=keys, events=set(events.replace(",", "/").split("/")) if events else None)
        self.hub.clients.add(client)
        self.hub.connections_total += 1
        writer = asyncio.create_task(client.run_writer())
        lifetime = asyncio.get_running_loop().call_later(self.lifetime_s, self.hub.close, client, False)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(client, msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        except ConnectionResetError:
            pass
        finally:
            lifetime.cancel()
            client.closed = True
            self.hub.clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    def _on_text(self, client: Client, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS of listen keys, as on the market streams
        (what Binance's own SDK sends on /private/stream: {"method": "SUBSCRIBE", "params": [key]})."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            client.push(None, orjson.dumps({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}}))
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        method = msg.get("method") if isinstance(msg, dict) else None
        params = msg.get("params", []) if isinstance(msg, dict) else None
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list) \
                and all(isinstance(p, str) for p in params):
            keys = client.state["keys"]
            client.state["keys"] = keys | set(params) if method == "SUBSCRIBE" else keys - set(params)
            self.counts["subscribes"] += method == "SUBSCRIBE"
            client.push(None, orjson.dumps({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            client.push(None, orjson.dumps({"result": sorted(client.state["keys"]), "id": rid}))
        else:
            client.push(None, orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": rid}))

    @staticmethod
    def _wrap(client: Client, key: str, raw: bytes) -> bytes:
        return b'{"stream":"' + key.encode() + b'","data":' + raw + b"}" if client.wrap else raw

    def _send(self, kind: str, raw: bytes, copies: int = 1) -> int:
        sent, key = 0, self.key
        for client in tuple(self.hub.clients):
            wanted = client.state.get("events")
            if key in client.state["keys"] and (wanted is None or kind in wanted):
                frame = self._wrap(client, key, raw)
                for _ in range(copies):
                    client.push(None, frame)
                sent += 1
        self.hub.sent[kind] = self.hub.sent.get(kind, 0) + sent * copies
        return sent

    # -- events ------------------------------------------------------------------------
    def on_event(self, ev: ExecEvent) -> None:
        """One matching-engine event: its reports, and on a fill the account's change."""
        o = ev.order
        tif, reduce_only, avg = self.describe(o)
        if ev.x == "TRADE":
            pos = self.account.fill(o, ev.last_qty, ev.last_price)
            pd, qd = o.inst.price_decimals, o.inst.qty_decimals
            self.counts["trade_lites"] += 1
            self._send("TRADE_LITE", orjson.dumps({
                "e": "TRADE_LITE", "E": ev.ts_ms, "T": ev.ts_ms, "s": o.symbol,
                "q": format_decimal(o.qty, qd, qd), "p": format_decimal(o.price, pd, pd), "m": ev.maker,
                "c": o.client_order_id, "S": "BUY" if o.side == BID else "SELL",
                "L": format_decimal(ev.last_price, pd, pd), "l": format_decimal(ev.last_qty, qd, qd),
                "t": ev.trade_id, "i": o.order_id}))
        copies = 2 if self.faults.take("duplicate_report") else 1
        self.counts["reports"] += 1
        raw = orjson.dumps(order_trade_update(ev, tif, reduce_only, avg, self.modify_id))
        late, self._late = self._late, None
        if late is None and self.faults.take("reorder_report"):
            self._late = (raw, copies)
            asyncio.get_running_loop().call_later(1.0, self._send_late, self._late)
        else:
            self._send_update(raw, copies)
            if late is not None:                   # the held one after the one that followed it
                self._send_update(*late)
        if ev.x == "TRADE":
            self.counts["account_updates"] += 1
            wallet = self.account.wallet_text()
            self._send("ACCOUNT_UPDATE", orjson.dumps({
                "e": "ACCOUNT_UPDATE", "E": ev.ts_ms, "T": ev.ts_ms,
                "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
                      "P": [{"s": o.symbol, **self.account.position_fields(pos), "bep": "0", "mt": "cross",
                             "iw": "0", "ps": "BOTH"}]}}))

    def _send_update(self, raw: bytes, copies: int) -> None:
        if not self._send("ORDER_TRADE_UPDATE", raw, copies):
            self.counts["reports_unheard"] += 1

    def _send_late(self, late: tuple) -> None:
        if self._late is late:
            self._late = None
            self._send_update(*late)

    def apply_fault(self, spec: dict[str, Any]) -> bool:
        """Apply an immediate user-stream fault; False when `spec` is not one."""
        name = spec["fault"]
        if name in ("server_shutdown", "delay_subscribe"):
            raise FaultError(f"fault not supported by binance-usdm (a WebSocket API fault): fault={name!r}")
        if name != "disconnect_userstream":
            return False
        self.faults.count_injected(name)
        self.faults.count_applied(name, self.hub.close_all(spec["abrupt"]))
        return True

    def stats(self) -> dict[str, Any]:
        return {"listen_key": self.key is not None, **self.counts, **self.hub.stats()}


def mid_of(book, inst: Instrument) -> Fraction | None:
    """The book's mid price (in quote units), or None with a side empty."""
    bid, ask = book.best(BID), book.best(ASK)
    return None if bid is None or ask is None else Fraction(bid + ask, 2 * 10**inst.price_decimals)
