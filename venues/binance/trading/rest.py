"""Signed REST requests to Binance spot over one keep-alive HTTP connection
(venues/keepalive.py: the connection, and NotSent / PeerGone when the venue did not answer).

    rest = BinanceRest("http://127.0.0.1:8080", key, secret)
    rest.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                   quantity="0.001", price="30000", newClientOrderId="m...")

SIGNED endpoints get `timestamp` and `recvWindow`, then `signature` = hex HMAC-SHA256 of
the query string with the secret; the key travels in the X-MBX-APIKEY header. The
key and secret are never logged and never part of an error message.

Outcomes, by cause (events.errors):
    a JSON reply with HTTP 2xx     -> the decoded body
    HTTP 4xx with {"code", "msg"}  -> BinanceRefused (VenueRefused): the venue said no
    HTTP 5xx, codes -1006/-1007, a timeout or a dropped connection after sending
                                   -> PeerGone: the outcome is UNKNOWN; never retry blindly
    no connection could be opened  -> NotSent (a PeerGone): the venue never saw it

One instance per thread (http.client is not thread-safe).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import orjson

from events import PeerGone, VenueRefused
from venues.keepalive import KeepAliveHttp, NotSent  # noqa: F401 (NotSent: an outcome of this client)

NO_SUCH_ORDER = -2013
NEW_ORDER_REJECTED = -2010       # with the venue's reason in `msg`


def duplicate_refusal(code: int, msg: str) -> bool:
    """A placement refused because its client order id is taken by an open order of ours
    (-2010 "Duplicate order sent."): an earlier placement of it landed."""
    return code == NEW_ORDER_REJECTED and "duplicate order" in msg.lower()

UNKNOWN_ORDER = -2011
STATUS_UNKNOWN_CODES = (-1006, -1007)  # "execution status unknown"


class BinanceRefused(VenueRefused):
    """The venue refused a request: its `code` (e.g. -2010) and `msg`."""

    def __init__(self, http_status: int, code: int, msg: str, path: str):
        super().__init__(f"{path}: HTTP {http_status}, code {code}: {msg}")
        self.http_status, self.code, self.msg = http_status, code, msg


class BinanceRest(KeepAliveHttp):
    """A keep-alive connection to one Binance REST base URL."""

    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "", *, timeout_s: float = 2.0,
                 recv_window_ms: int = 5000, max_idle_s: float = 30.0, clock_ms=None):
        super().__init__(base_url, timeout_s=timeout_s, max_idle_s=max_idle_s)
        self._key = api_key
        self._secret = api_secret.encode()
        self.recv_window_ms = recv_window_ms
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def __repr__(self) -> str:  # never show the credentials
        return f"BinanceRest({self._host}:{self._port})"

    def sign(self, params: dict) -> str:
        """The signed query string of `params` (adds timestamp and recvWindow)."""
        params = {**params, "timestamp": self._clock_ms(), "recvWindow": self.recv_window_ms}
        query = urlencode(params)
        sig = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={sig}"

    def request(self, method: str, path: str, params: dict | None = None, *, signed: bool = False,
                keyed: bool = False):
        """Send one request; return the decoded JSON reply (see the module docstring)."""
        query = self.sign(params or {}) if signed else urlencode(params or {})
        url = f"{self._prefix}{path}" + (f"?{query}" if query else "")
        headers = {"X-MBX-APIKEY": self._key} if (signed or keyed) else {}
        status, body = self.exchange(method, url, f"{method} {path}", headers=headers)
        if 200 <= status < 300:
            return orjson.loads(body) if body else {}
        if status >= 500:
            raise PeerGone(f"{method} {path}: HTTP {status}; outcome unknown")
        try:
            err = orjson.loads(body)
            code, msg = int(err.get("code", 0)), str(err.get("msg", ""))
        except (orjson.JSONDecodeError, AttributeError, ValueError):
            code, msg = 0, body[:200].decode("utf-8", "replace")
        if code in STATUS_UNKNOWN_CODES:
            raise PeerGone(f"{method} {path}: HTTP {status}, code {code}: {msg}; outcome unknown")
        raise BinanceRefused(status, code, msg, path)

    # -- endpoints --------------------------------------------------------------------

    def exchange_info(self) -> dict:
        return self.request("GET", "/api/v3/exchangeInfo")

    def new_order(self, **params) -> dict:
        return self.request("POST", "/api/v3/order", params, signed=True)

    def cancel_order(self, symbol: str, orig_client_order_id: str) -> dict:
        return self.request("DELETE", "/api/v3/order", {"symbol": symbol,
                                                        "origClientOrderId": orig_client_order_id}, signed=True)

    def amend_keep_priority(self, symbol: str, orig_client_order_id: str, new_qty: str) -> dict:
        """PUT /api/v3/order/amend/keepPriority: reduce the quantity in place; the order keeps
        its client order id (sent again as newClientOrderId; else the venue makes one up)."""
        return self.request("PUT", "/api/v3/order/amend/keepPriority",
                            {"symbol": symbol, "origClientOrderId": orig_client_order_id,
                             "newClientOrderId": orig_client_order_id, "newQty": new_qty}, signed=True)

    def cancel_replace(self, **params) -> dict:
        """POST /api/v3/order/cancelReplace (HTTP 409 for a partial failure: a BinanceRefused)."""
        return self.request("POST", "/api/v3/order/cancelReplace", params, signed=True)

    def get_order(self, symbol: str, orig_client_order_id: str) -> dict:
        return self.request("GET", "/api/v3/order", {"symbol": symbol,
                                                     "origClientOrderId": orig_client_order_id}, signed=True)

    def open_orders(self, symbol: str | None = None) -> list:
        return self.request("GET", "/api/v3/openOrders", {"symbol": symbol} if symbol else {}, signed=True)

    def account(self) -> dict:
        """GET /api/v3/account (weight 20), zero balances left out: the account's balances."""
        return self.request("GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True)
