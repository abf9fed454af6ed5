"""Signed REST requests to OKX v5 over one keep-alive HTTP connection (venues/keepalive.py:
the connection, and NotSent / PeerGone when the venue did not answer).

    rest = OkxRest("https://openapi.okx.com", key, secret, passphrase)
    rest.post("/api/v5/trade/order", {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": "m...",
                                      "side": "buy", "ordType": "limit", "sz": "0.001", "px": "30000"})

Private requests carry OK-ACCESS-KEY, OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (UTC, ISO
8601 with milliseconds: 2020-12-08T09:08:57.715Z) and OK-ACCESS-SIGN = base64(HMAC-SHA256(
secret, timestamp + METHOD + requestPath + body)); a GET's query string is part of the
requestPath, a POST's JSON body is the body (docs: "Overview > REST Authentication").
The key, secret and passphrase are never logged and never part of an error message.

Every reply is {"code", "msg", "data": [...]}. Outcomes, by cause (events.errors):
    code "0"                                  -> `data`
    code "1"/"2" with data[0].sCode != "0"    -> OkxRefused(sCode, sMsg): the operation failed
    another code with HTTP 4xx                -> OkxRefused(code, msg)
    HTTP 5xx, codes 50001/50004/50013/50026, a timeout or a dropped connection after
    sending                                   -> PeerGone: the outcome is UNKNOWN; never retry
                                                 blindly (50004: "API endpoint request timeout
                                                 (does not mean that the request was successful
                                                 or failed, please check the request result)")
    no connection could be opened             -> NotSent (a PeerGone): the venue never saw it

One instance per thread (http.client is not thread-safe).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

import orjson

from events import PeerGone, VenueRefused
from venues.keepalive import KeepAliveHttp, NotSent  # noqa: F401 (NotSent: an outcome of this client)

NO_SUCH_ORDER = 51603            # "Order does not exist" (GET /api/v5/trade/order)
DUPLICATED_CLORDID = 51016       # "Duplicated clOrdId": an earlier placement of ours landed
STATUS_UNKNOWN_CODES = frozenset({50001, 50004, 50013, 50026})


class OkxRefused(VenueRefused):
    """The venue refused a request: its `code` (sCode of the operation, else the reply's) and `msg`."""

    def __init__(self, http_status: int, code: int, msg: str, path: str):
        super().__init__(f"{path}: HTTP {http_status}, code {code}: {msg}")
        self.http_status, self.code, self.msg = http_status, code, msg


def iso_ms(ms: int) -> str:
    """OK-ACCESS-TIMESTAMP of a Unix time in milliseconds: 2020-12-08T09:08:57.715Z."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def sign(secret: bytes, prehash: str) -> str:
    """base64(HMAC-SHA256(secret, prehash)): OKX's REST and WebSocket login signature."""
    return base64.b64encode(hmac.new(secret, prehash.encode(), hashlib.sha256).digest()).decode()


def _int(code) -> int:
    try:
        return int(code)
    except (TypeError, ValueError):
        return -1


class OkxRest(KeepAliveHttp):
    """A keep-alive connection to one OKX REST base URL."""

    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "", passphrase: str = "", *,
                 timeout_s: float = 2.0, max_idle_s: float = 30.0, clock_ms=None):
        super().__init__(base_url, timeout_s=timeout_s, max_idle_s=max_idle_s)
        self._key, self._secret, self._passphrase = api_key, api_secret.encode(), passphrase
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.sent_ms = 0       # the venue timestamp the last request was signed with

    def __repr__(self) -> str:  # never show the credentials
        return f"OkxRest({self._host}:{self._port})"

    def headers(self, method: str, request_path: str, body: str) -> dict:
        """The four OK-ACCESS-* headers of one request (see the module docstring)."""
        self.sent_ms = self._clock_ms()
        ts = iso_ms(self.sent_ms)
        return {"OK-ACCESS-KEY": self._key, "OK-ACCESS-PASSPHRASE": self._passphrase,
                "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign(self._secret, ts + method + request_path + body)}

    def request(self, method: str, path: str, params: dict | None = None, *, signed: bool = True,
                exp_ms: int = 0) -> list:
        """Send one request (GET: `params` in the query; POST: as the JSON body); return `data`.

        `exp_ms` > 0: the `expTime` header, that many ms after the signed timestamp (docs:
        "Overview > Transaction timeouts": place and amend requests arriving later are not
        processed), so a request the venue did not answer is dead after a known time."""
        body = ""
        request_path = f"{self._prefix}{path}"
        if method == "GET":
            if params:
                request_path += "?" + urlencode(params)
        else:
            body = orjson.dumps(params or {}).decode()
        headers = {"Content-Type": "application/json"} if body else {}
        if signed:
            headers.update(self.headers(method, request_path, body))
            if exp_ms:
                headers["expTime"] = str(self.sent_ms + exp_ms)
        what = f"{method} {path}"
        status, raw = self.exchange(method, request_path, what, headers=headers, body=body or None)
        return answer(status, raw, what)

    def get(self, path: str, params: dict | None = None, *, signed: bool = True) -> list:
        return self.request("GET", path, params, signed=signed)

    def post(self, path: str, body: dict, exp_ms: int = 0) -> list:
        return self.request("POST", path, body, exp_ms=exp_ms)


def answer(status: int, raw: bytes, what: str) -> list:
    """`data` of an OKX reply, or the error it stands for (see the module docstring).

    Shared by REST and WebSocket order entry (whose answers carry the same code/data).
    """
    if status >= 500:
        raise PeerGone(f"{what}: HTTP {status}; outcome unknown")
    try:
        doc = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        if status == 200:
            raise PeerGone(f"{what}: unreadable reply; outcome unknown") from None
        raise OkxRefused(status, 0, raw[:200].decode("utf-8", "replace"), what) from None
    if not isinstance(doc, dict):
        raise PeerGone(f"{what}: reply is not an object; outcome unknown")
    code = _int(doc.get("code"))
    data = doc.get("data")
    if code == 0 and status < 300:
        return data if isinstance(data, list) else []
    if code in STATUS_UNKNOWN_CODES:
        raise PeerGone(f"{what}: code {code}: {doc.get('msg', '')}; outcome unknown")
    if code in (1, 2) and isinstance(data, list) and data and isinstance(data[0], dict):
        s = _int(data[0].get("sCode"))
        if s in STATUS_UNKNOWN_CODES:
            raise PeerGone(f"{what}: sCode {s}: {data[0].get('sMsg', '')}; outcome unknown")
        raise OkxRefused(status, s, str(data[0].get("sMsg", "")), what)
    raise OkxRefused(status, code, str(doc.get("msg", "")), what)
