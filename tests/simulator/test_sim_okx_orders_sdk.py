"""The simulator's OKX order API driven by OKX's own SDK (python-okx 0.4.x: `okx.Trade`,
`okx.Account`, the WebSocket login payload of `okx.websocket.WsUtils`): code we did not
write signs, shapes and reads every request the way OKX's clients do."""

from __future__ import annotations

import orjson
import pytest

from simulator.okx_orders import DEFAULT_PASSPHRASE
from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .venue_testkit import connect

pytestmark = pytest.mark.timeout(30)
trade_mod = pytest.importorskip("okx.Trade", reason="python-okx (the dev extra) is not installed")
account_mod = pytest.importorskip("okx.Account", reason="python-okx (the dev extra) is not installed")


@pytest.fixture
def sdk(make_sim):
    sim = make_sim(venues=["okx"])
    rest = sim.endpoints["okx"]["rest"]
    kw = dict(api_key=DEFAULT_KEY, api_secret_key=DEFAULT_SECRET, passphrase=DEFAULT_PASSPHRASE, flag="0",
              domain=rest)
    return sim, trade_mod.TradeAPI(**kw), account_mod.AccountAPI(**kw)


def test_the_official_sdk_places_queries_amends_and_cancels(sdk):
    sim, trade, account = sdk
    r = trade.place_order(instId="BTC-USDT", tdMode="cash", clOrdId="sdk1", side="buy", ordType="limit",
                          px="60000", sz="0.001")
    assert r["code"] == "0" and r["data"][0]["sCode"] == "0"
    q = trade.get_order(instId="BTC-USDT", clOrdId="sdk1")
    assert q["data"][0]["state"] == "live" and q["data"][0]["sz"] == "0.001"
    a = trade.amend_order(instId="BTC-USDT", clOrdId="sdk1", newPx="60001", reqId="r7")
    assert a["code"] == "0" and a["data"][0]["reqId"] == "r7"
    assert trade.get_order(instId="BTC-USDT", clOrdId="sdk1")["data"][0]["px"] == "60001"
    assert [o["clOrdId"] for o in trade.get_order_list(instType="SPOT")["data"]] == ["sdk1"]
    c = trade.cancel_order(instId="BTC-USDT", clOrdId="sdk1")
    assert c["code"] == "0" and trade.get_order(instId="BTC-USDT", clOrdId="sdk1")["data"][0]["state"] == "canceled"
    nope = trade.get_order(instId="BTC-USDT", clOrdId="nope")
    assert nope["code"] == "51603"


def test_the_official_sdk_trades_a_swap_and_reads_the_account(sdk):
    sim, trade, account = sdk
    r = trade.place_order(instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="market", sz="2")
    assert r["code"] == "0", r
    sell = trade.place_order(instId="BTC-USDT", tdMode="cash", side="sell", ordType="market", sz="0.001")
    assert sell["code"] == "0", sell      # the SDK sends tgtCcy "": a sell defaults to base_ccy
    pos = account.get_positions(instType="SWAP")["data"]
    assert [(p["instId"], p["pos"]) for p in pos] == [("BTC-USDT-SWAP", "2")]
    details = {d["ccy"]: d for d in account.get_account_balance()["data"][0]["details"]}
    assert details["BTC"]["availBal"] == "999.999"
    bad = trade_mod.TradeAPI(api_key=DEFAULT_KEY, api_secret_key="wrong", passphrase=DEFAULT_PASSPHRASE, flag="0",
                             domain=sim.endpoints["okx"]["rest"]).get_order(instId="BTC-USDT", clOrdId="x")
    assert bad["code"] == "50113"


def test_the_sdk_login_payload_logs_in_on_the_private_websocket(make_sim):
    utils = pytest.importorskip("okx.websocket.WsUtils", reason="python-okx (the dev extra) is not installed")
    sim = make_sim(venues=["okx"])
    ws = connect(sim.endpoints["okx"]["ws"] + "/ws/v5/private")
    ws.send(utils.initLoginParams(False, DEFAULT_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET))
    ev = orjson.loads(ws.recv())
    assert (ev["event"], ev["code"]) == ("login", "0")
    ws.close()
