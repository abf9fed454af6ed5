"""Debug rendering of records: a dict with decimal strings and names, or JSON (orjson)."""

from __future__ import annotations

import numpy as np
import orjson

from .fixed import to_decimal
from .kinds import (AccountEntry, AccountSource, Command, ExecStatus, Kind, OrderType, Provider, ResultStatus, Side,
                    TimeInForce)
from .records import HEADER, PAYLOADS


def _name(enum, value):
    try:
        return enum(int(value)).name
    except ValueError:
        return int(value)


def _provider(value) -> str | int:
    try:
        return Provider(int(value)).slug
    except ValueError:
        return int(value)


def _text(b: bytes) -> str:
    return bytes(b).rstrip(b"\x00").decode("utf-8", "replace")


def to_dict(rec) -> dict:
    """Render one EVENT record (a row) as a plain dict, money as decimal strings."""
    out = {n: int(rec[n]) for n in HEADER.names}
    kind = Kind(out["kind"])
    out["kind"] = kind.name
    out["provider"] = _provider(out["provider"])
    field, dtype = PAYLOADS[kind]
    p = rec[field]
    if kind is Kind.BOOK:
        ps, ss = int(p["px_scale"]), int(p["sz_scale"])
        nb, na = int(p["n_bids"]), int(p["n_asks"])
        out["book"] = {
            "last_update_id": int(p["last_update_id"]),
            "bids": [[to_decimal(p["bid_px"][i], ps), to_decimal(p["bid_sz"][i], ss)] for i in range(nb)],
            "asks": [[to_decimal(p["ask_px"][i], ps), to_decimal(p["ask_sz"][i], ss)] for i in range(na)],
        }
    elif kind is Kind.TRADE:
        ps, ss = int(p["px_scale"]), int(p["sz_scale"])
        out["trade"] = {"trade_id": int(p["trade_id"]), "px": to_decimal(p["px"], ps),
                        "sz": to_decimal(p["sz"], ss), "side": _name(Side, p["side"])}
    elif kind is Kind.TICKER:
        ps, ss = int(p["px_scale"]), int(p["sz_scale"])
        out["ticker"] = {"bid_px": to_decimal(p["bid_px"], ps), "bid_sz": to_decimal(p["bid_sz"], ss),
                         "ask_px": to_decimal(p["ask_px"], ps), "ask_sz": to_decimal(p["ask_sz"], ss),
                         "update_id": int(p["update_id"])}
    elif kind is Kind.MERGED:
        ps, ss = int(p["px_scale"]), int(p["sz_scale"])
        out["merged"] = {
            "merge_id": int(p["merge_id"]), "window_open_ns": int(p["window_open_ns"]),
            "window_close_ns": int(p["window_close_ns"]), "event_count": int(p["event_count"]),
            "legs": [{"provider": _provider(leg["provider"]), "seq_provider": int(leg["seq_provider"]),
                      "event_ts_ns": int(leg["event_ts_ns"]),
                      "bid_px": to_decimal(leg["bid_px"], ps), "bid_sz": to_decimal(leg["bid_sz"], ss),
                      "ask_px": to_decimal(leg["ask_px"], ps), "ask_sz": to_decimal(leg["ask_sz"], ss)}
                     for leg in p["legs"][: int(p["n_legs"])]],
        }
    elif kind is Kind.EXEC_REPORT:
        ps, ss = int(p["px_scale"]), int(p["sz_scale"])
        out["exec"] = {
            "exec_seq": int(p["exec_seq"]), "client_order_id": _text(p["client_order_id"]),
            "venue_order_id": int(p["venue_order_id"]), "status": _name(ExecStatus, p["status"]),
            "side": _name(Side, p["side"]), "order_type": _name(OrderType, p["order_type"]),
            "tif": _name(TimeInForce, p["tif"]),
            "price": to_decimal(p["price"], ps), "qty": to_decimal(p["qty"], ss),
            "filled": to_decimal(p["filled"], ss), "remaining": to_decimal(p["remaining"], ss),
            "last_px": to_decimal(p["last_px"], ps), "last_qty": to_decimal(p["last_qty"], ss),
            "cum_quote": to_decimal(p["cum_quote"], int(p["quote_scale"])),
            "fee": to_decimal(p["fee"], int(p["fee_scale"])),
            "fee_asset": _text(p["fee_asset"]), "venue_trade_id": int(p["venue_trade_id"]),
            "venue_update_id": int(p["venue_update_id"]), "reject_code": int(p["reject_code"]),
            "reason": _text(p["reason"]),
        }
    elif kind is Kind.CONTROL_ACK:
        out["ack"] = {"request_id": int(p["request_id"]), "command": _name(Command, p["command"])}
    elif kind is Kind.CONTROL_RESULT:
        out["result"] = {"request_id": int(p["request_id"]), "command": _name(Command, p["command"]),
                         "status": _name(ResultStatus, p["status"]), "error_code": int(p["error_code"]),
                         "routing_version": int(p["routing_version"]), "message": _text(p["message"])}
    elif kind is Kind.ACCOUNT:
        entry = _name(AccountEntry, p["entry"])
        out["account"] = {"exec_seq": int(p["exec_seq"]), "entry": entry,
                          "source": _name(AccountSource, p["source"]), "asset": _text(p["asset"])}
        if entry == "BALANCE":
            sc = int(p["scale"])
            out["account"].update(free=to_decimal(p["free"], sc), locked=to_decimal(p["locked"], sc))
        elif entry == "POSITION":
            out["account"].update(symbol=_text(p["symbol"]), size=to_decimal(p["size"], int(p["sz_scale"])),
                                  entry_px=to_decimal(p["entry_px"], int(p["px_scale"])),
                                  unrealized_pnl=to_decimal(p["unrealized_pnl"], int(p["pnl_scale"])))
    return out


def to_json(rec) -> bytes:
    """Render one record as JSON bytes (orjson)."""
    return orjson.dumps(to_dict(rec))


def batch_to_dicts(batch: np.ndarray) -> list[dict]:
    return [to_dict(r) for r in batch]
