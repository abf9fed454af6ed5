"""OKX v5 trading payloads -> instruments and venue events. Venue enums map through tables;
an unknown value is a BadInput, never a silent default.

Sizes: OKX states spot sizes in the base currency and swap sizes in contracts of `ctVal`
base units each. Our quantities are base units at the instrument's `sz_scale` for both,
so a swap instrument's `sz_scale` is decimals(lotSz) + decimals(ctVal): one contract
step times ctVal is then a whole mantissa and `sz = qty / ctVal` is exact both ways
(`Spec.to_sz`, `Spec.qty`). A quote amount is base qty x price (contracts x ctVal x px).

An `orders` channel push (docs: "WS / Order channel", example as of 2026-06):

    {"arg": {"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT", "uid": "614488474791936"},
     "data": [{"accFillSz": "0.001", "amendResult": "", "avgPx": "31527.1", "cancelSource": "",
               "clOrdId": "", "code": "0", "cTime": "1654084334977", "execType": "M",
               "fee": "-0.02522168", "feeCcy": "USDT", "fillFee": "-0.02522168", "fillFeeCcy": "USDT",
               "fillPx": "31527.1", "fillSz": "0.001", "fillTime": "1654084353263", "instId": "BTC-USDT",
               "instType": "SPOT", "msg": "", "ordId": "452197707845865472", "ordType": "limit",
               "px": "31527.1", "reqId": "", "side": "sell", "state": "filled", "sz": "0.001",
               "tdMode": "cash", "tradeId": "242589207", "uTime": "1654084353264", ...}]}

`state` drives the lifecycle; `accFillSz` (cumulative, contracts for swaps) the fills;
`tradeId`/`fillSz`/`fillPx`/`fillFee` the trade of this push (in REST order objects they
describe the last trade instead, so query reports carry only the cumulative figures).
A cancel for IOC/FOK remainders (cancelSource 14/13) is our EXPIRED, as is a post-only
order cancelled because it would take liquidity (31); every other cancel is CANCELLED.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import BadInput, ExecStatus, Instrument, Provider, Registry, to_decimal, to_mantissa
from venues.trading import Balance, Position, VenueOrderReported, VenueRequestRefused

from ..markets import to_canonical

PROVIDER = Provider.OKX
FEE_SCALE = 10     # OKX fees carry up to 8 decimals on spot, more on swaps: "-0.0000112345"

STATE: dict[str, ExecStatus] = {
    "live": ExecStatus.ACK,
    "partially_filled": ExecStatus.PARTIAL,
    "filled": ExecStatus.FILLED,
    "canceled": ExecStatus.CANCELLED,
    "mmp_canceled": ExecStatus.CANCELLED,
}
EXPIRING_CANCELS = {"13": "FOK order was canceled due to incompletely filled",
                    "14": "IOC order was partially canceled due to incompletely filled",
                    "31": "the post-only order would take liquidity"}


@dataclass(frozen=True)
class Spec:
    """How one instrument's sizes travel: venue `sz` strings at `sz_dec` decimals, each unit
    `ct` of our base mantissas (spot: sz_dec = sz_scale, ct = 1)."""

    inst: Instrument
    inst_id: str
    inst_type: str          # "SPOT" | "SWAP"
    sz_dec: int
    ct: int
    ct_ccy: str = ""

    @property
    def td_mode(self) -> str:
        return "cash" if self.inst_type == "SPOT" else "cross"

    def to_sz(self, qty: int) -> str:
        """The venue `sz` of base quantity `qty` (exact: BadInput when not a whole step)."""
        n, rem = divmod(qty, self.ct)
        if rem:
            raise BadInput(f"{self.inst_id}: qty {qty} at scale {self.inst.sz_scale} is not a whole number "
                           f"of contracts of {self.ct}")
        return to_decimal(n, self.sz_dec)

    def qty(self, sz: str) -> int:
        """Base quantity mantissa of a venue size string ("" or absent: 0)."""
        return to_mantissa(sz, self.sz_dec) * self.ct if sz else 0


class OkxRegistry(Registry):
    """A Registry that also knows each instrument's size spec (`specs`, by instId)."""

    def __init__(self, instruments=()):
        super().__init__(instruments)
        self.specs: dict[str, Spec] = {}

    def spec(self, inst_id: str) -> Spec:
        try:
            return self.specs[inst_id]
        except KeyError:
            inst = self.by_venue(PROVIDER, inst_id)   # UnknownInstrument (a BadInput)
            if len(inst_id.split("-")) != 2:
                raise BadInput(f"{inst_id}: no contract size known for this instrument") from None
            return Spec(inst, inst_id, "SPOT", inst.sz_scale, 1)


def decimals(text: str) -> int:
    frac = text.partition(".")[2].rstrip("0")
    return len(frac)


def instrument(info: dict) -> Spec:
    """The Spec of one entry of GET /api/v5/public/instruments (SPOT or SWAP).

        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctValCcy": "BTC",
         "tickSz": "0.1", "lotSz": "0.01", "minSz": "0.01", "state": "live", ...}
    """
    inst_type, inst_id = info["instType"], info["instId"]
    tick, lot = info["tickSz"], info["lotSz"]
    ps, ld = decimals(tick), decimals(lot)
    if inst_type == "SPOT":
        inst = Instrument(to_canonical(inst_id), px_scale=ps, sz_scale=ld, tick=to_mantissa(tick, ps),
                          lot=to_mantissa(lot, ld))
        return Spec(inst, inst_id, "SPOT", ld, 1)
    if inst_type != "SWAP":
        raise BadInput(f"{inst_id}: instType {inst_type!r} is not traded (SPOT, SWAP)")
    ct_val = info["ctVal"]
    cd = decimals(ct_val)
    ct = to_mantissa(ct_val, cd)
    if ct <= 0:
        raise BadInput(f"{inst_id}: ctVal must be positive: {ct_val!r}")
    if info.get("ctValCcy") and info["ctValCcy"] != inst_id.split("-")[0]:
        raise BadInput(f"{inst_id}: ctValCcy {info['ctValCcy']!r} is not the base currency (inverse swap)")
    inst = Instrument(to_canonical(inst_id), px_scale=ps, sz_scale=ld + cd, tick=to_mantissa(tick, ps),
                      lot=to_mantissa(lot, ld) * ct)
    return Spec(inst, inst_id, "SWAP", ld, ct, info.get("ctValCcy", ""))


def load_registry(entries: list[dict], registry: OkxRegistry | None = None) -> OkxRegistry:
    """Register every live SPOT and linear SWAP instrument of instruments replies; skip the rest."""
    registry = registry if registry is not None else OkxRegistry()
    for info in entries:
        if info.get("state", "live") != "live":
            continue
        try:
            spec = instrument(info)
        except (KeyError, TypeError, BadInput):
            continue   # an instrument we cannot trade exactly (inverse, odd steps): skip it
        registry.add(spec.inst)
        registry.map_venue(PROVIDER, spec.inst_id, spec.inst.symbol)
        registry.specs[spec.inst_id] = spec
    return registry


INT64_MAX = 2**63 - 1


def venue_id(text, name: str) -> int:
    """An ordId / tradeId as the int64 the exec record holds (OKX sends decimal strings,
    19 digits today, below 2^63); BadInput beyond, never a silently altered id."""
    n = int(text)
    if not 0 <= n <= INT64_MAX:
        raise BadInput(f"{name} does not fit an int64: {name}={text!r}")
    return n


def _ms_to_ns(ms) -> int:
    return int(ms) * 1_000_000 if ms else 0


def price(text: str, scale: int) -> int:
    """A price mantissa at `scale`; an average finer than that is rounded half up (avgPx)."""
    if not text:
        return 0
    d = decimals(text)
    if d <= scale:
        return to_mantissa(text, scale)
    m = to_mantissa(text, d)
    q, r = divmod(m, 10 ** (d - scale))
    return q + (1 if 2 * r >= 10 ** (d - scale) else 0)


def fee(text) -> int:
    """The charge of a fee field at FEE_SCALE (OKX: negative = charged, so it is negated);
    0 when absent or not exact there."""
    if not text:
        return 0
    try:
        return -to_mantissa(text, FEE_SCALE)
    except BadInput:
        return 0


def state_of(d: dict) -> tuple[ExecStatus, str]:
    try:
        status = STATE[d["state"]]
    except KeyError:
        raise BadInput(f"unknown OKX order state: {d.get('state')!r}") from None
    why = EXPIRING_CANCELS.get(str(d.get("cancelSource") or ""))
    if status is ExecStatus.CANCELLED and why:
        return ExecStatus.EXPIRED, why
    return status, ""


def order(d: dict, registry: OkxRegistry, source: str, quote: int | None = None):
    """One order object (orders push, GET /trade/order, orders-pending) -> VenueOrderReported,
    or VenueRequestRefused for a push that reports a failed amend (amendResult -1).

    `quote`: the order's cumulative quote when the caller summed every trade (exact); else
    accFillSz x avgPx (exact when avgPx is, else rounded half up at px_scale + sz_scale).
    """
    spec = registry.spec(d["instId"])
    inst = spec.inst
    ps, ss = inst.px_scale, inst.sz_scale
    ids = (d["clOrdId"],) if d.get("clOrdId") else ()
    req = d.get("reqId") or ""
    if source == "stream" and req and str(d.get("amendResult", "")) == "-1":
        return VenueRequestRefused(ids[0] if ids else "", "amend", int(d.get("code") or 0),
                                   str(d.get("msg") or "amend failed"))
    status, reason = state_of(d)
    cum = spec.qty(d.get("accFillSz") or "")
    if quote is None:
        quote = avg_quote(cum, d.get("avgPx") or "", ps, ss)
    trade = source == "stream" and bool(d.get("tradeId"))
    return VenueOrderReported(
        client_order_ids=ids, status=status, venue_order_id=venue_id(d["ordId"], "ordId"), cum_qty=cum,
        cum_quote=quote,
        last_qty=spec.qty(d.get("fillSz") or "") if trade else 0,
        last_px=price(d.get("fillPx") or "", ps) if trade else 0,
        trade_id=venue_id(d["tradeId"], "tradeId") if trade else -1,
        fee=fee(d.get("fillFee")) if trade else 0,
        fee_asset=(d.get("fillFeeCcy") or "") if trade else "",
        update_id=int(d.get("uTime") or 0), reason=reason,
        event_ts_ns=_ms_to_ns(d.get("uTime") or d.get("cTime")), source="amend" if req else source,
        price=price(d.get("px") or "", ps), qty=spec.qty(d.get("sz") or ""), amended=bool(req))


def avg_quote(cum: int, avg_px: str, ps: int, ss: int) -> int:
    """cum x avgPx at ps + ss (rounded half up when avgPx is finer than px_scale)."""
    if not cum or not avg_px:
        return 0
    d = max(decimals(avg_px), ps)
    m = to_mantissa(avg_px, d) * cum
    if d == ps:
        return m
    q, r = divmod(m, 10 ** (d - ps))
    return q + (1 if 2 * r >= 10 ** (d - ps) else 0)


def placed(d: dict, source: str = "rest") -> VenueOrderReported:
    """A successful place answer {"clOrdId", "ordId", "sCode": "0", "ts"}: the order is accepted (ACK)."""
    ids = (d["clOrdId"],) if d.get("clOrdId") else ()
    return VenueOrderReported(ids, ExecStatus.ACK, venue_id(d["ordId"], "ordId"), 0, 0,
                              event_ts_ns=_ms_to_ns(d.get("ts")), source=source)


def latest_ns(entries: list) -> int:
    """The newest `uTime` (ms) of account or position entries, in ns (0: none): the venue's
    time of a snapshot or an update, so the engine can order them."""
    best = 0
    for e in entries:
        if isinstance(e, dict):
            for t in [e.get("uTime")] + [d.get("uTime") for d in e.get("details") or () if isinstance(d, dict)]:
                if t and str(t).isdigit():
                    best = max(best, int(t))
    return best * 1_000_000


def _amount(text, name: str) -> tuple[int, int]:
    text = str(text or "0")
    d = decimals(text)
    return to_mantissa(text, d), d


def balances(entries: list[dict]) -> tuple[Balance, ...]:
    """Balances of GET /api/v5/account/balance data[*].details (or an `account` push):
    `availBal` free, `frozenBal` locked, each at the finer of their two scales."""
    out = []
    for acct in entries:
        for c in acct.get("details") or ():
            free, fd = _amount(c.get("availBal"), "availBal")
            locked, ld = _amount(c.get("frozenBal"), "frozenBal")
            scale = max(fd, ld)
            out.append(Balance(str(c["ccy"]), free * 10 ** (scale - fd), locked * 10 ** (scale - ld), scale))
    return tuple(out)


def positions(entries: list[dict], registry: OkxRegistry) -> tuple[Position, ...]:
    """Net-mode positions of GET /api/v5/account/positions (or a `positions` push): `pos`
    (contracts, signed) -> base size; `avgPx` entry; `upl` as OKX reports it, in `ccy`.
    Instruments we do not trade are left out."""
    out = []
    for p in entries:
        try:
            spec = registry.spec(p["instId"])
        except BadInput:
            continue
        pos = str(p.get("pos") or "0")
        neg = pos.startswith("-")
        size = spec.qty(pos.lstrip("-"))
        upl, us = _amount(str(p.get("upl") or "0").lstrip("-"), "upl")
        if str(p.get("upl") or "").startswith("-"):
            upl = -upl
        out.append(Position(spec.inst, -size if neg else size, price(p.get("avgPx") or "", spec.inst.px_scale),
                            upl, us, str(p.get("ccy") or "")))
    return tuple(out)
