"""Binance spot orders: signed REST (`/api/v3/order`, `/api/v3/openOrders`,
`/api/v3/exchangeInfo`) and the user data stream over the WebSocket API
(`userDataStream.subscribe.signature` on /ws-api/v3, `executionReport` events; userstream.py).

Supports: LIMIT (GTC, IOC, FOK), LIMIT_MAKER (our POST_ONLY) and MARKET orders, buy and
sell, by base quantity;
cancel and query by client order id; HMAC-SHA256 signatures (API key in the
X-MBX-APIKEY header, never logged); recvWindow; exchangeInfo PRICE_FILTER, LOT_SIZE,
NOTIONAL / MIN_NOTIONAL. Not supported: quote-quantity market orders, order lists
(OCO), stop orders, amend, SBE. The same code talks to the simulator and the venue:
only the base URLs and the credentials differ.
"""
