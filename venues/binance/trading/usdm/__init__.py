"""Binance USD-M futures orders: signed REST under /fapi (`rest.py`), the listenKey user
stream on the WebSocket `/private` URL (`stream.py`), payloads -> venue events
(`parse.py`), and the adapter execution drives (`adapter.py`).

Supports: LIMIT (GTC, IOC, FOK, GTX post-only) and MARKET orders in one-way position
mode, by base-asset quantity, `reduceOnly`; cancel, query and modify (`PUT /fapi/v1/order`)
by client order id; the open-orders list; wallet balances and positions (REST and
ACCOUNT_UPDATE). Not supported: hedge mode (positionSide LONG/SHORT), conditional (algo)
orders, priceMatch, batch orders, the WebSocket trading API. Shares the HMAC signing and
the keep-alive connection with the spot package (`..rest.BinanceRest`): the scheme is the
same, only the paths and the base URL differ. What we rely on: ../../PROTOCOL.md.
"""
