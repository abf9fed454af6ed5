"""Spot balances in the simulator: `GET /api/v3/account` (read with Binance's own SDK too),
locks of open orders, fills moving base and quote, `outboundAccountPosition` after each
change, and -2010 for an order the balances do not cover."""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_spot.spot import Spot

from simulator.accounts import DEFAULT_FUNDING, SpotAccount
from simulator.book import ASK, BID
from simulator.instruments import default_instruments
from simulator.matching import ExecEvent, Order
from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .test_sim_orders_api import Client, _event

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore::DeprecationWarning:binance_common")]
V = "binance-spot"
FUNDED = Decimal(DEFAULT_FUNDING)
# rest-api.md "Account information (USER_DATA)": the keys of the documented reply
ACCOUNT_KEYS = {"makerCommission", "takerCommission", "buyerCommission", "sellerCommission", "commissionRates",
                "canTrade", "canWithdraw", "canDeposit", "brokered", "requireSelfTradePrevention", "preventSor",
                "updateTime", "accountType", "balances", "permissions", "uid"}


@pytest.fixture
def spot(make_sim):
    sim = make_sim(venues=[V])
    return sim, Client(sim.endpoints[V]["rest"])


def balances(c: Client, **params) -> dict[str, tuple[Decimal, Decimal]]:
    status, body = c.signed("GET", "/api/v3/account", params)
    assert status == 200, body
    assert set(body) == ACCOUNT_KEYS
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in body["balances"]}


# -- the account itself (no server) ------------------------------------------------------

BTC = default_instruments(1)[0]   # BTC-USDT, prices at 2 decimals, quantities at 5


def test_a_limit_buy_locks_quote_its_fill_moves_base_and_quote_and_its_close_unlocks():
    acc = SpotAccount(["BTC", "USDT"], funding_units=100_000)
    o = Order(1, "b-1", BTC, BID, "LIMIT", "GTC", qty=200_000, price=30_000_00, created_ms=1)  # 2 BTC
    assert acc.on_exec(ExecEvent(o, "NEW", 1), 1) == ["USDT"]
    assert (acc.free["USDT"], acc.locked["USDT"]) == ((100_000 - 60_000) * 10**8, 60_000 * 10**8)
    o.executed, o.status = 100_000, "PARTIALLY_FILLED"   # 1 BTC at 29,999.50 (better than the limit)
    assert acc.on_exec(ExecEvent(o, "TRADE", 2, 100_000, 29_999_50), 2) == ["BTC", "USDT"]
    assert acc.free["BTC"] == (100_000 + 1) * 10**8
    assert acc.locked["USDT"] == 30_000 * 10**8
    assert acc.free["USDT"] == (100_000 - 30_000 - 29_999) * 10**8 - 50 * 10**6
    o.status = "CANCELED"
    assert acc.on_exec(ExecEvent(o, "CANCELED", 3), 3) == ["USDT"]
    assert acc.locked["USDT"] == 0 and acc.free["USDT"] == (100_000 - 29_999) * 10**8 - 50 * 10**6
    assert acc.update_ms == 3


def test_a_market_sell_locks_nothing_and_is_refused_beyond_the_base_held():
    acc = SpotAccount(["BTC", "USDT"], funding_units=1)
    sell = Order(2, "s-1", BTC, ASK, "MARKET", "GTC", qty=100_000, price=0, created_ms=1)
    assert not acc.shortfall(sell, 0)
    assert acc.shortfall(Order(3, "s-2", BTC, ASK, "MARKET", "GTC", qty=100_001, price=0, created_ms=1), 0)
    assert acc.on_exec(ExecEvent(sell, "NEW", 1), 1) == []
    sell.executed, sell.status = 100_000, "FILLED"
    acc.on_exec(ExecEvent(sell, "TRADE", 2, 100_000, 30_000_00), 2)
    assert (acc.free["BTC"], acc.free["USDT"], acc.locked["BTC"]) == (0, 30_001 * 10**8, 0)


# -- over HTTP and the user stream -----------------------------------------------------

def test_the_account_endpoint_states_every_asset_funded_and_the_official_sdk_reads_it(spot):
    sim, c = spot
    got = balances(c)
    assert got == {a: (FUNDED, Decimal(0)) for a in ("BTC", "ETH", "USDT")}
    sdk = Spot(config_rest_api=ConfigurationRestAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                                    base_path=sim.endpoints[V]["rest"]))
    account = sdk.rest_api.get_account(omit_zero_balances=True).data()
    assert account.account_type == "SPOT" and account.can_trade is True
    assert {b.asset: Decimal(b.free) for b in account.balances} == {a: FUNDED for a in ("BTC", "ETH", "USDT")}
    status, body = c.signed("GET", "/api/v3/account", {"omitZeroBalances": "maybe"})
    assert status == 400 and body["code"] == -1100
    status, body = c.signed("GET", "/api/v3/account", {}, key="someone-else")
    assert status == 401 and body["code"] == -2015


def test_a_resting_order_locks_and_its_cancel_unlocks_each_told_on_the_user_stream(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints[V]["ws"])
    status, _ = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                      price="50000", newClientOrderId="lk-1")
    assert status == 200
    assert _event(user)["x"] == "NEW"
    locked = _event(user, "outboundAccountPosition")
    assert locked["B"] == [{"a": "USDT", "f": f"{FUNDED - 500:.8f}", "l": "500.00000000"}]
    assert locked["u"] <= locked["E"]
    assert balances(c)["USDT"] == (FUNDED - 500, Decimal(500))
    c.cancel(symbol="BTCUSDT", origClientOrderId="lk-1")
    assert _event(user)["x"] == "CANCELED"
    assert _event(user, "outboundAccountPosition")["B"] == [{"a": "USDT", "f": f"{FUNDED:.8f}", "l": "0.00000000"}]
    user.close()
    _, account = c.signed("GET", "/api/v3/account", {"omitZeroBalances": "true"})
    assert account["updateTime"] >= locked["u"]


def test_a_market_buy_moves_base_and_quote_by_what_it_traded(spot):
    sim, c = spot
    user = c.user_stream(sim.endpoints[V]["ws"])
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5")
    assert status == 200 and body["status"] == "FILLED"
    spent = Decimal(body["cummulativeQuoteQty"])
    assert balances(c) == {"BTC": (FUNDED + Decimal("0.5"), 0), "ETH": (FUNDED, 0), "USDT": (FUNDED - spent, 0)}
    fills = len(body["fills"])
    updates = [_event(user, "outboundAccountPosition") for _ in range(fills)]  # one after each trade
    user.close()
    assert {b["a"]: b["f"] for b in updates[-1]["B"]} == {"BTC": f"{FUNDED + Decimal('0.5'):.8f}",
                                                          "USDT": f"{FUNDED - spent:.8f}"}


def test_an_order_the_balances_do_not_cover_is_refused_with_2010(spot):
    sim, c = spot
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1000",
                         price="2000000", newClientOrderId="rich-1")  # 2e9 USDT, funded with 1e9
    assert (status, body) == (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."})
    status, _ = c.query(symbol="BTCUSDT", origClientOrderId="rich-1")
    assert status == 400  # never placed
    assert balances(c)["USDT"] == (FUNDED, 0)
