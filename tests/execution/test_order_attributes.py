"""Post-only and reduce-only from the control message to the venue's parameters, the store's
new column (and the migration of a store written before it), and each venue's "duplicate
client order id" refusal read as a flag by its adapter."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

from channels import messages as M
from events import BadInput, Instrument, OrderType, Provider, Side, TimeInForce
from execution import validation
from execution.store import Store
from venues.binance.trading.adapter import BinanceSpotAdapter, limit_params
from venues.binance.trading.rest import duplicate_refusal
from venues.binance.trading.usdm.adapter import order_params
from venues.trading import Order

from .fakes import BTC, registry

pytestmark = pytest.mark.timeout(10)
KEY = "0" * 32
PERP = Instrument("BTC-USDT-PERP", px_scale=2, sz_scale=3, tick=10, lot=1, min_notional=5 * 10**5)


def perp_registry():
    reg = registry()
    reg.add(PERP)
    reg.map_venue(Provider.BINANCE_USDM, "BTCUSDT", "BTC-USDT-PERP")
    return reg


def new_order(**fields):
    return M.parse(orjson.dumps({"cmd": "new_order", "request_id": 1, "consumer": "c1", "key": KEY,
                                 "client_order_id": "o-1", **fields}), M.EXECUTION_COMMANDS)


def order(inst=BTC, tif=TimeInForce.GTC, otype=OrderType.LIMIT, reduce_only=False, venue=Provider.BINANCE_SPOT):
    return Order(1, "o-1", "m-1", inst, Side.BUY, otype, tif, 6000000 if otype is OrderType.LIMIT else 0, 100,
                 venue=venue, reduce_only=reduce_only)


# -- the control message -------------------------------------------------------------------

def test_new_order_takes_reduce_only_as_a_bool_and_defaults_to_false():
    assert new_order(reduce_only=True).reduce_only is True
    assert new_order().reduce_only is False
    with pytest.raises(M.ProtocolError) as e:
        new_order(reduce_only="yes")
    assert e.value.code == "malformed" and "reduce_only must be true or false" in str(e.value)


# -- validation ---------------------------------------------------------------------------

def test_post_only_and_its_gtx_alias_are_a_limit_orders_time_in_force():
    reg = registry()
    for name in ("POST_ONLY", "GTX"):
        c = validation.check_new_order(reg, "BTC-USDT", "buy", "limit", name, "0.001", "60000")
        assert c.tif is TimeInForce.POST_ONLY
    with pytest.raises(BadInput, match="post-only is a limit order's time in force"):
        validation.check_new_order(reg, "BTC-USDT", "buy", "market", "POST_ONLY", "0.001", None)
    with pytest.raises(BadInput, match="tif must be one of"):
        validation.check_new_order(reg, "BTC-USDT", "buy", "limit", "post_only", "0.001", "60000")


def test_reduce_only_is_for_futures_and_swaps_and_refused_on_spot():
    reg = perp_registry()
    c = validation.check_new_order(reg, "BTC-USDT-PERP", "sell", "market", None, "0.001", None, reduce_only=True)
    assert c.reduce_only is True
    assert validation.check_new_order(reg, "BTC-USDT", "sell", "market", None, "0.001", None).reduce_only is False
    with pytest.raises(BadInput, match="futures and swaps only, not to spot: symbol=BTC-USDT"):
        validation.check_new_order(reg, "BTC-USDT", "sell", "market", None, "0.001", None, reduce_only=True)
    with pytest.raises(BadInput, match="reduce_only must be true or false"):
        validation.check_new_order(reg, "BTC-USDT-PERP", "sell", "market", None, "0.001", None, reduce_only=1)


def test_a_reduce_only_order_below_the_minimum_notional_is_let_through_to_close_a_small_position():
    reg = perp_registry()   # PERP: minimum notional 5 USDT
    with pytest.raises(BadInput, match="below the venue minimum"):
        validation.check_new_order(reg, "BTC-USDT-PERP", "sell", "limit", "GTC", "0.001", "1000")
    c = validation.check_new_order(reg, "BTC-USDT-PERP", "sell", "limit", "GTC", "0.001", "1000", reduce_only=True)
    assert (c.qty, c.price, c.reduce_only) == (1, 100000, True)


# -- the store ----------------------------------------------------------------------------

def test_reduce_only_is_stored_and_a_store_written_before_it_gets_the_column(tmp_path):
    path = tmp_path / "orders.sqlite"
    reg = perp_registry()
    store = Store(path, {Provider.BINANCE_SPOT: reg, Provider.BINANCE_USDM: reg}, synchronous="NORMAL")
    store.insert(order(PERP, TimeInForce.POST_ONLY, reduce_only=True, venue=Provider.BINANCE_USDM))
    store.close()
    db = sqlite3.connect(path)   # as the schema before reduce_only left it (SQLite >= 3.35)
    db.execute("ALTER TABLE orders DROP COLUMN reduce_only")
    db.commit()
    db.close()
    store = Store(path, {Provider.BINANCE_SPOT: reg, Provider.BINANCE_USDM: reg}, synchronous="NORMAL")
    try:
        (old,) = store.all_orders()
        assert (old.reduce_only, old.tif) == (False, TimeInForce.POST_ONLY)   # none was reduce-only then
        o = order(PERP, reduce_only=True, venue=Provider.BINANCE_USDM)
        o.client_order_id, o.venue_client_order_id = "o-2", "m-2"
        store.insert(o)
        assert store.get(1, "o-2").reduce_only is True
    finally:
        store.close()


# -- the adapters' parameters ---------------------------------------------------------------

def test_binance_spot_post_only_is_a_limit_maker_without_time_in_force():
    assert limit_params(order(tif=TimeInForce.POST_ONLY)) == {"type": "LIMIT_MAKER"}
    assert limit_params(order(tif=TimeInForce.IOC)) == {"type": "LIMIT", "timeInForce": "IOC"}
    sent = []
    a = BinanceSpotAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "k", "s", registry(), sent.append)
    a._submit = lambda vcoid, fn, *args: sent.append(args)   # the job, not run
    o = order(tif=TimeInForce.POST_ONLY)
    a.place(o)
    params = sent[-1][1]
    assert (params["type"], "timeInForce" in params, params["price"]) == ("LIMIT_MAKER", False, "60000")
    o.amend_coid = "m-1b"
    a.amend(o, 100, 6000100)                          # a price change: cancel-replace, still maker-only
    params = sent[-1][1]
    assert (params["type"], "timeInForce" in params, params["price"]) == ("LIMIT_MAKER", False, "60001")


def test_binance_usdm_maps_post_only_to_gtx_and_sends_reduce_only():
    p = order_params(order(PERP, TimeInForce.POST_ONLY, reduce_only=True, venue=Provider.BINANCE_USDM), "BTCUSDT")
    assert (p["timeInForce"], p["reduceOnly"], p["price"]) == ("GTX", "true", "60000")
    p = order_params(order(PERP, TimeInForce.IOC, OrderType.MARKET, venue=Provider.BINANCE_USDM), "BTCUSDT")
    assert "reduceOnly" not in p and "timeInForce" not in p


# -- the duplicate refusal ------------------------------------------------------------------

def test_binance_spot_reads_only_its_duplicate_order_text_as_a_duplicate():
    assert duplicate_refusal(-2010, "Duplicate order sent.")
    assert not duplicate_refusal(-2010, "Order would immediately match and take.")
    assert not duplicate_refusal(-2010, "Account has insufficient balance for requested action.")
    assert not duplicate_refusal(-1013, "Duplicate order sent.")
