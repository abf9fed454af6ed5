"""Signed REST requests to Binance USD-M futures (`/fapi`): the spot client's signing and
outcome rules (`..rest.BinanceRest`: HMAC-SHA256 of the query string, key in
X-MBX-APIKEY; 2xx -> body, 4xx -> BinanceRefused, 5xx / -1006 / -1007 / timeout -> PeerGone
with the outcome unknown, no connection -> NotSent) with the futures endpoints.

    rest = FuturesRest("https://fapi.binance.com", key, secret)
    rest.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTX",
                   quantity="0.001", price="30000", newClientOrderId="m...", newOrderRespType="RESULT")

The listenKey endpoints are USER_STREAM: the API key header, no signature.
One instance per thread (http.client is not thread-safe).
"""

from __future__ import annotations

from ..rest import BinanceRest

ORDER = "/fapi/v1/order"
LISTEN_KEY = "/fapi/v1/listenKey"
NO_SUCH_LISTEN_KEY = -1125      # "This listenKey does not exist."


class FuturesRest(BinanceRest):
    """A keep-alive connection to one Binance USD-M REST base URL."""

    def __repr__(self) -> str:  # never show the credentials
        return f"FuturesRest({self._host}:{self._port})"

    def exchange_info(self) -> dict:
        return self.request("GET", "/fapi/v1/exchangeInfo")

    def new_order(self, **params) -> dict:
        return self.request("POST", ORDER, params, signed=True)

    def modify_order(self, **params) -> dict:
        return self.request("PUT", ORDER, params, signed=True)

    def cancel_order(self, symbol: str, orig_client_order_id: str) -> dict:
        return self.request("DELETE", ORDER, {"symbol": symbol, "origClientOrderId": orig_client_order_id},
                            signed=True)

    def get_order(self, symbol: str, orig_client_order_id: str) -> dict:
        return self.request("GET", ORDER, {"symbol": symbol, "origClientOrderId": orig_client_order_id},
                            signed=True)

    def open_orders(self, symbol: str | None = None) -> list:
        return self.request("GET", "/fapi/v1/openOrders", {"symbol": symbol} if symbol else {}, signed=True)

    def balances(self) -> list:
        return self.request("GET", "/fapi/v3/balance", {}, signed=True)

    def position_risk(self) -> list:
        return self.request("GET", "/fapi/v3/positionRisk", {}, signed=True)

    # -- the user stream's listenKey (USER_STREAM: keyed, not signed) ----------------------

    def new_listen_key(self) -> str:
        return str(self.request("POST", LISTEN_KEY, keyed=True)["listenKey"])

    def keepalive_listen_key(self) -> dict:
        return self.request("PUT", LISTEN_KEY, keyed=True)

    def close_listen_key(self) -> dict:
        return self.request("DELETE", LISTEN_KEY, keyed=True)
