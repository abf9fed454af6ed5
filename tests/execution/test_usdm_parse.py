"""Binance USD-M payloads -> venue events (venues/binance/trading/usdm/parse.py), from the
documented examples of Binance's USDⓈ-M futures docs ("Event: Order Update", "Event: Balance
and Position Update", "New Order", "Futures Account Balance V3", "Position Information V3"),
and the adapter's handling of stream events it does not pass on."""

from __future__ import annotations

import enum

import pytest

from events import BadInput, ExecStatus, Instrument, OrderType, Provider, Side, TimeInForce
from venues.binance.trading.usdm import parse
from venues.binance.trading.usdm.adapter import BinanceUsdmAdapter, order_params
from venues.binance.trading.usdm.stream import private_url, split_frame
from venues.binance.trading.usdm.wsapi import ws_api_url
from venues.trading import Order, VenueAccountReported

pytestmark = pytest.mark.timeout(10)

# GET /fapi/v1/exchangeInfo, one symbol as Binance lists BTCUSDT (filters trimmed to those we read)
INFO = {"symbols": [
    {"symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING",
     "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3,
     "filters": [{"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": "0.10"},
                 {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                 {"filterType": "MIN_NOTIONAL", "notional": "100"}]},
    {"symbol": "BTCUSDT_261225", "pair": "BTCUSDT", "contractType": "CURRENT_QUARTER", "status": "TRADING",
     "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
     "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.1"},
                 {"filterType": "LOT_SIZE", "stepSize": "0.001"}]},
    {"symbol": "ETHUSDT", "status": "SETTLING", "baseAsset": "ETH", "quoteAsset": "USDT", "filters": []},
]}


def otu(**o) -> dict:
    """An ORDER_TRADE_UPDATE as documented ("Event: Order Update"), with `o` fields overridden."""
    body = {"s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.001", "p": "0",
            "ap": "0", "sp": "7103.04", "x": "NEW", "X": "NEW", "i": 8886774, "l": "0", "z": "0", "L": "0",
            "N": "USDT", "n": "0", "T": 1568879465650, "t": 0, "b": "0", "a": "9.91", "m": False, "R": False,
            "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0,
            "ss": 0, "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0}
    body.update(o)
    return {"e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650, "o": body}


@pytest.fixture
def reg():
    return parse.load_registry(INFO)


def test_exchange_info_lists_perpetuals_and_dated_contracts_in_base_units(reg):
    btc = reg.by_venue(Provider.BINANCE_USDM, "BTCUSDT")
    assert (btc.symbol, btc.px_scale, btc.sz_scale, btc.tick, btc.lot) == ("BTC-USDT-PERP", 1, 3, 1, 1)
    assert btc.min_notional == 100 * 10**4
    assert reg.by_venue(Provider.BINANCE_USDM, "BTCUSDT_261225").symbol == "BTC-USDT-261225"
    assert "ETH-USDT-PERP" not in reg   # not TRADING


def test_the_documented_new_event_is_an_ack_with_its_quantity(reg):
    r = parse.order_trade_update(otu(), reg, parse.Quotes())
    assert (r.status, r.client_order_ids, r.venue_order_id, r.cum_qty, r.cum_quote) == (
        ExecStatus.ACK, ("TEST",), 8886774, 0, 0)
    assert (r.qty, r.price, r.trade_id, r.fee, r.fee_asset, r.amended) == (1, 0, -1, 0, "", False)
    assert r.event_ts_ns == 1568879465651 * 10**6


def test_trades_seen_one_by_one_sum_to_an_exact_cumulative_quote(reg):
    q = parse.Quotes()
    common = dict(o="LIMIT", p="30000.0", q="0.003", x="TRADE", N="USDT")
    a = parse.order_trade_update(otu(X="PARTIALLY_FILLED", l="0.001", z="0.001", L="30000.0", ap="30000",
                                     t=11, n="0.01200000", **common), reg, q)
    b = parse.order_trade_update(otu(X="PARTIALLY_FILLED", l="0.001", z="0.002", L="29999.9", ap="29999.95",
                                     t=12, **common), reg, q)
    c = parse.order_trade_update(otu(X="FILLED", l="0.001", z="0.003", L="29999.9", ap="29999.93333",
                                     t=13, **common), reg, q)
    assert (a.cum_quote, b.cum_quote) == (300000 * 1, 300000 + 299999)
    assert c.cum_quote == 300000 + 2 * 299999 and c.status is ExecStatus.FILLED   # not ap x z
    assert (a.last_qty, a.last_px, a.trade_id, a.fee, a.fee_asset) == (1, 300000, 11, 1_200_000, "USDT")
    assert q.inexact == 0 and len(q) == 0      # a terminal order is forgotten


def test_a_missed_trade_takes_avg_times_qty_exact_or_rounded_half_even(reg):
    q = parse.Quotes()
    # the first trade this adapter sees covers two: ap has the price scale's decimals -> exact
    r = parse.order_trade_update(otu(X="PARTIALLY_FILLED", x="TRADE", l="0.001", z="0.002", L="30000.1",
                                     ap="30000.05", q="0.003"), reg, q)
    assert r.cum_quote == 3000005 * 2 // 10 and q.inexact == 0    # 30000.05 x 0.002 = 60.0001 at scale 4
    r = parse.order_trade_update(otu(X="FILLED", x="TRADE", l="0.001", z="0.003", L="30000.0", ap="30000.0333",
                                     q="0.003", c="other"), reg, q)
    assert r.cum_quote == 900001 and q.inexact == 1                  # 90.0000999 -> 90.0001 (half-even)


def test_a_rest_reply_teaches_the_exact_quote_the_stream_continues_from(reg):
    q = parse.Quotes()
    rest = parse.order_response({"clientOrderId": "m1", "cumQty": "0.002", "cumQuote": "60.0001",
                                 "executedQty": "0.002", "orderId": 7, "avgPrice": "30000.05", "origQty": "0.003",
                                 "price": "30001.0", "reduceOnly": False, "side": "BUY", "positionSide": "BOTH",
                                 "status": "PARTIALLY_FILLED", "symbol": "BTCUSDT", "timeInForce": "GTC",
                                 "type": "LIMIT", "origType": "LIMIT", "updateTime": 1566818724722}, reg, q)
    assert (rest.status, rest.cum_qty, rest.cum_quote, rest.price, rest.qty) == (
        ExecStatus.PARTIAL, 2, 600001, 300010, 3)
    r = parse.order_trade_update(otu(c="m1", X="FILLED", x="TRADE", l="0.001", z="0.003", L="29999.9",
                                     ap="29999.99999", q="0.003", p="30001.0", o="LIMIT"), reg, q)
    assert r.cum_quote == 600001 + 299999 and q.inexact == 0


def test_an_amendment_reports_the_new_price_and_quantity(reg):
    r = parse.order_trade_update(otu(o="LIMIT", x="AMENDMENT", X="NEW", p="29000.5", q="0.002"), reg,
                                 parse.Quotes())
    assert (r.status, r.amended, r.price, r.qty) == (ExecStatus.ACK, True, 290005, 2)


def test_unknown_statuses_and_execution_types_are_bad_input(reg):
    with pytest.raises(BadInput):
        parse.order_trade_update(otu(X="NEW_INSURANCE"), reg, parse.Quotes())
    with pytest.raises(BadInput):
        parse.order_trade_update(otu(x="RESTATED"), reg, parse.Quotes())
    assert parse.order_trade_update(otu(X="EXPIRED", x="EXPIRED", er="6"), reg, parse.Quotes()).reason == "6"


def test_account_update_carries_the_wallet_and_one_way_positions(reg):
    ev = {"e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938, "a": {"m": "ORDER", "B": [
        {"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"},
        {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.12345678"}], "P": [
        {"s": "BTCUSDT", "pa": "0.010", "ep": "30123.456", "bep": "0", "cr": "200", "up": "-0.123456789",
         "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"},
        {"s": "BTCUSDT", "pa": "20", "ep": "6563.66500", "cr": "0", "up": "2850.21200", "mt": "isolated",
         "iw": "13200.70726908", "ps": "LONG"},
        {"s": "XRPUSDT", "pa": "1", "ep": "1", "cr": "0", "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}]}}
    r = parse.account_update(ev, reg)
    assert isinstance(r, VenueAccountReported) and not r.full and r.source == "stream"
    assert [(b.asset, b.free, b.locked, b.scale) for b in r.balances] == [
        ("USDT", 12262412345678, 0, 8), ("BUSD", 100000000, 0, 8)]
    (p,) = r.positions    # the LONG leg (hedge mode) and a symbol we do not trade are left out
    assert (p.instrument.symbol, p.size, p.entry_px, p.unrealized_pnl, p.pnl_scale, p.pnl_asset) == (
        "BTC-USDT-PERP", 10, 301235, -12345679, 8, "USDT")   # ep and up rounded half-even


def test_the_rest_account_is_a_full_snapshot_without_flat_positions(reg):
    r = parse.account(
        [{"accountAlias": "SgsR", "asset": "USDT", "balance": "122607.35137903", "crossWalletBalance": "23.72469206",
          "crossUnPnl": "0.00000000", "availableBalance": "23.72469206", "maxWithdrawAmount": "23.72469206",
          "marginAvailable": True, "updateTime": 1617939110373}],
        [{"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "-0.005", "entryPrice": "30000.1",
          "breakEvenPrice": "30000.2", "markPrice": "30100.0", "unRealizedProfit": "-0.49950000",
          "marginAsset": "USDT", "updateTime": 1720736417660},
         {"symbol": "BTCUSDT_261225", "positionSide": "BOTH", "positionAmt": "0", "entryPrice": "0.0",
          "unRealizedProfit": "0.00000000", "marginAsset": "USDT"}], reg)
    assert r.full and r.source == "rest"
    assert [(b.asset, b.free) for b in r.balances] == [("USDT", 12260735137903)]
    assert [(p.instrument.symbol, p.size, p.entry_px, p.unrealized_pnl) for p in r.positions] == [
        ("BTC-USDT-PERP", -5, 300001, -49950000)]


def test_scaled_rounds_half_even_and_says_whether_it_was_exact():
    assert parse.scaled("1.25", 1) == (12, False) and parse.scaled("1.35", 1) == (14, False)
    assert parse.scaled("-1.251", 1) == (-13, False) and parse.scaled("7.6100", 2) == (761, True)


Tif = enum.Enum("Tif", {"GTX": 4})   # post-only: a tif the canonical model does not have yet


def order(reg, tif=TimeInForce.GTC, order_type=OrderType.LIMIT, **kw) -> Order:
    inst = reg.by_venue(Provider.BINANCE_USDM, "BTCUSDT")
    return Order(1, "c-1", "m0000000100000000000000000000000", inst, Side.BUY, order_type, tif, 300001, 2,
                 venue=Provider.BINANCE_USDM, **kw)


def test_order_params_one_way_ack_and_post_only_by_name(reg):
    assert order_params(order(reg), "BTCUSDT") == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "newClientOrderId":
        "m0000000100000000000000000000000", "newOrderRespType": "ACK", "timeInForce": "GTC", "price": "30000.1"}
    assert order_params(order(reg, tif=Tif.GTX), "BTCUSDT")["timeInForce"] == "GTX"
    market = order_params(order(reg, order_type=OrderType.MARKET), "BTCUSDT")
    assert "price" not in market and "timeInForce" not in market and "reduceOnly" not in market


def test_the_private_url_and_frames_of_the_listen_key_stream():
    assert private_url("wss://fstream.binance.com") == "wss://fstream.binance.com/private/stream"
    assert private_url("wss://fstream.binance.com/private") == "wss://fstream.binance.com/private/stream"
    assert private_url("ws://127.0.0.1:9/") == "ws://127.0.0.1:9/private/stream"
    assert split_frame(b'{"stream":"k1","data":{"e":"TRADE_LITE"}}') == ("event", {"e": "TRADE_LITE"})
    assert split_frame(b'{"result":null,"id":3}') == ("answer", {"result": None, "id": 3})
    assert split_frame(b"[1]")[0] == "bad" and split_frame(b"{")[0] == "bad"
    # WebSocket order entry: Binance's own host for the real streams, the same host elsewhere
    assert ws_api_url("wss://fstream.binance.com/private") == "wss://ws-fapi.binance.com/ws-fapi/v1"
    assert ws_api_url("ws://127.0.0.1:9") == "ws://127.0.0.1:9/ws-fapi/v1"


class Tel:
    def __init__(self):
        self.counts = {}

    def inc(self, name, n=1, **labels):
        key = (name, *sorted(labels.values()))
        self.counts[key] = self.counts.get(key, 0) + n


def test_trade_lite_is_counted_not_passed_on_and_account_changes_wait_for_a_snapshot(reg):
    got, tel = [], Tel()
    a = BinanceUsdmAdapter("http://127.0.0.1:9", "ws://127.0.0.1:9", "k", "s", reg, got.append, telemetry=tel)
    a._on_event({"e": "TRADE_LITE", "E": 1721895408092, "T": 1721895408214, "s": "BTCUSDT", "q": "0.001",
                 "p": "0", "m": False, "c": "z8hcUoOsqEdKMeKPSABslD", "S": "BUY", "L": "64089.20", "l": "0.040",
                 "t": 109100866, "i": 8886774}, b"")
    update = {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": []}}
    a._on_event(update, b"")
    assert got == [] and tel.counts[("exec.stream.ignored", "TRADE_LITE")] == 1
    a._account_asked.set()          # as query_account does
    a._on_event(update, b"")
    assert got == [VenueAccountReported((), (), full=False, event_ts_ns=1_000_000, source="stream")]
    a._on_event(otu(s="DOGEUSDT"), b"")   # an order of a symbol we do not trade
    assert len(got) == 1 and tel.counts[("exec.stream.foreign",)] == 1
