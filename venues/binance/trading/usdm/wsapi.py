"""Binance USD-M order entry over the WebSocket API: `order.place`, `order.modify`,
`order.cancel`, `order.status` on `wss://ws-fapi.binance.com/ws-fapi/v1`.

The connection, the per-request HMAC signature, the envelope and the outcomes are the spot
WebSocket API's (`..wsapi.WsApiSession`: Binance signs and answers both alike; checked against
Binance's USD-M SDK 18.1.0, whose `websocket_api` sends these four methods with the REST
parameters); what differs is the URL and that a placement asks for an ACK reply (USD-M has no
FULL reply: the fills come on the user stream) and that `order.modify` exists. Each method
returns False, having sent nothing, when the session is down: the adapter takes REST.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from events import PeerGone
from venues.trading import VenueOutcomeUnknown, VenueRequestRefused

from ..rest import BinanceRefused, NotSent
from ..wsapi import WsOrderEntry

WS_API_URL = "wss://ws-fapi.binance.com/ws-fapi/v1"
WS_API_PATH = "/ws-fapi/v1"
STREAM_HOST = "fstream.binance.com"


def ws_api_url(ws_url: str) -> str:
    """The WebSocket API URL for user-stream URL `ws_url`: Binance's own (another host) for
    fstream.binance.com; else (a simulator, a proxy) the same host with /ws-fapi/v1."""
    u = urlsplit(ws_url)
    if u.hostname == STREAM_HOST:
        return WS_API_URL
    return f"{u.scheme}://{u.netloc}{WS_API_PATH}"


class UsdmWsEntry(WsOrderEntry):
    """The adapter's WebSocket path (see the module docstring and `WsOrderEntry`)."""

    def place(self, vcoid: str, params: dict, stamps: tuple) -> bool:
        ts, t0 = self.session.now_ms(), time.time_ns()
        try:
            ans = self.session.request("order.place", params, timestamp_ms=ts)
        except NotSent:
            return self._fallback("place")
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "place", e.code, e.msg))
            self.sent(vcoid, stamps, t0, time.time_ns(), "ws")
            return True
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "place", str(e), ts))
            self.sent(vcoid, stamps, t0, 0, "ws")
            return True
        self.reports(vcoid, "place", ans.result, self.source)
        self.sent(vcoid, stamps, ans.sent_ns, ans.replied_ns, "ws")
        return True

    def modify(self, vcoid: str, params: dict) -> bool:
        try:
            ans = self.session.request("order.modify", params)
        except NotSent:
            return self._fallback("amend")
        except BinanceRefused as e:
            self.emit(VenueRequestRefused(vcoid, "amend", e.code, e.msg))
            return True
        except PeerGone as e:
            self.emit(VenueOutcomeUnknown(vcoid, "amend", str(e)))
            return True
        self.reports(vcoid, "amend", ans.result, "amend")
        return True
