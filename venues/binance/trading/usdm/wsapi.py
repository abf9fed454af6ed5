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

from urllib.parse import urlsplit

from venues.trading import VenueOutcomeUnknown, VenueRequestRefused

from ..rest import BinanceRefused
from ..wsapi import Answer, WsOrderEntry
from .rest import DUPLICATE_CLIENT_ORDER_ID

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
    """The adapter's WebSocket path (see the module docstring and `WsOrderEntry`): place, cancel
    and status as spot's, with an ACK reply and USD-M's duplicate code; modify here."""

    def place_params(self, params: dict) -> dict:
        return params                  # the adapter's: newOrderRespType ACK already

    def duplicate(self, e: BinanceRefused) -> bool:
        return e.code == DUPLICATE_CLIENT_ORDER_ID

    def modify(self, vcoid: str, params: dict) -> bool:
        self.settle(vcoid)

        def done(out, _sent_ns) -> None:
            if isinstance(out, Answer):
                self.reports(vcoid, "amend", out.result, "amend")
            elif isinstance(out, BinanceRefused):
                self.emit(VenueRequestRefused(vcoid, "amend", out.code, out.msg))
            else:
                self.emit(VenueOutcomeUnknown(vcoid, "amend", str(out)))

        return self._call("amend", "order.modify", params, done)
