"""The simulator's binance-usdm order API and /private user stream, driven by Binance's own
USD-M SDK (binance-sdk-derivatives-trading-usds-futures): its REST calls, its pydantic
models of the replies, and its user-data subscription (SUBSCRIBE of the listen key on
/private/stream), so the simulator cannot drift from what Binance's client expects."""

from __future__ import annotations

import asyncio

import pytest

from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import DerivativesTradingUsdsFutures

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

pytestmark = pytest.mark.timeout(40)
V = "binance-usdm"


def rest_sdk(sim) -> DerivativesTradingUsdsFutures:
    return DerivativesTradingUsdsFutures(config_rest_api=ConfigurationRestAPI(
        api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET, base_path=sim.endpoints[V]["rest"]))


def test_sdk_orders_modify_query_cancel_and_the_account(make_sim):
    sim = make_sim(venues=[V])
    api = rest_sdk(sim).rest_api
    placed = api.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC", quantity=0.01,
                           price=60000.0, new_client_order_id="sdk-1").data()
    assert (placed.status, placed.client_order_id, placed.orig_qty, placed.position_side) == (
        "NEW", "sdk-1", "0.01000", "BOTH")
    modified = api.modify_order(symbol="BTCUSDT", side="BUY", quantity=0.005, price=60001.5,
                                orig_client_order_id="sdk-1", modify_id=7).data()
    assert (modified.status, modified.orig_qty, modified.price) == ("NEW", "0.00500", "60001.50")
    queried = api.query_order(symbol="BTCUSDT", orig_client_order_id="sdk-1").data()
    assert (queried.order_id, queried.time_in_force, queried.price) == (placed.order_id, "GTC", "60001.50")
    assert api.cancel_order(symbol="BTCUSDT", orig_client_order_id="sdk-1").data().status == "CANCELED"
    api.new_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity=0.002)
    (balance,) = api.futures_account_balance_v3().data()
    assert balance.asset == "USDT" and balance.balance is not None
    (position,) = api.position_information_v3().data()
    assert (position.symbol, position.position_side, position.position_amt) == ("BTCUSDT", "BOTH", "-0.00200")


def test_sdk_user_stream_subscribes_the_listen_key_and_reads_every_event(make_sim):
    sim = make_sim(venues=[V])
    api = rest_sdk(sim).rest_api
    got: list = []

    async def run():
        key = (await asyncio.to_thread(api.start_user_data_stream)).data().listen_key
        cfg = ConfigurationWebSocketStreams(stream_url=sim.endpoints[V]["ws"])
        streams = DerivativesTradingUsdsFutures(config_ws_streams=cfg).websocket_streams
        conn = await streams.create_connection()
        try:
            handle = await conn.user_data(key)
            handle.on("message", got.append)
            for _ in range(200):    # the subscription is answered before events flow
                if sim.stats()[V]["orders"]["userstream"]["subscribes"]:
                    break
                await asyncio.sleep(0.01)
            await asyncio.to_thread(api.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=0.002,
                                    new_client_order_id="sdk-m")
            await asyncio.to_thread(api.keepalive_user_data_stream)
            for _ in range(300):
                if any(type(m.actual_instance).__name__ == "AccountUpdate" for m in got):
                    break
                await asyncio.sleep(0.01)
        finally:
            await conn.close_connection(close_session=True)

    asyncio.run(run())
    events = [m.actual_instance for m in got]
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["OrderTradeUpdate", "TradeLite"] and "AccountUpdate" in kinds
    new = events[0]
    assert (new.o.c, new.o.x, new.o.X, new.o.ps, new.o.S) == ("sdk-m", "NEW", "NEW", "BOTH", "BUY")
    account = events[kinds.index("AccountUpdate")]
    assert account.a.m == "ORDER" and account.a.B[0].a == "USDT" and account.a.P[0].s == "BTCUSDT"


def test_sdk_websocket_api_places_modifies_queries_and_cancels(make_sim):
    from binance_common.configuration import ConfigurationWebSocketAPI
    sim = make_sim(venues=[V])

    async def run():
        cfg = ConfigurationWebSocketAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                        stream_url=sim.endpoints[V]["ws"] + "/ws-fapi/v1")
        conn = await DerivativesTradingUsdsFutures(config_ws_api=cfg).websocket_api.create_connection()
        try:
            placed = (await conn.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                                           quantity=0.002, price=60000.0, new_client_order_id="sdk-ws")).data()
            modified = (await conn.modify_order(symbol="BTCUSDT", side="BUY", quantity=0.001, price=60000.5,
                                                orig_client_order_id="sdk-ws")).data()
            queried = (await conn.query_order(symbol="BTCUSDT", orig_client_order_id="sdk-ws")).data()
            cancelled = (await conn.cancel_order(symbol="BTCUSDT", orig_client_order_id="sdk-ws")).data()
            return placed, modified, queried, cancelled
        finally:
            await conn.close_connection(close_session=True)

    placed, modified, queried, cancelled = asyncio.run(run())
    assert (placed.result.status, placed.result.client_order_id) == ("NEW", "sdk-ws")
    assert (modified.result.orig_qty, modified.result.price) == ("0.00100", "60000.50")
    assert queried.result.order_id == placed.result.order_id
    assert cancelled.result.status == "CANCELED"
    seen = sim.call(lambda: dict(sim.venues[V].orders.requests))
    assert seen["WS order.place"] == seen["WS order.modify"] == seen["WS order.cancel"] == 1
