"""Binance payloads -> canonical reports: the docs examples in shared/data, replies, exchangeInfo."""

import orjson
import pytest

from events import BadInput, ExecStatus
from venues.binance.trading import parse
from venues.binance.trading.userstream import split_frame

from .fakes import registry

DOCS = "exec_reports/binance_spot_user_data_stream_docs_examples.json"


def test_docs_examples_parse_into_the_right_canonical_reports(shared_data):
    frames = orjson.loads((shared_data / DOCS).read_bytes())
    reg = registry()
    reports, others = [], []
    for frame in frames:
        kind, ev = split_frame(orjson.dumps(frame))
        assert kind == "event"
        if ev["e"] == "executionReport":
            reports.append(parse.execution_report(ev, reg))
        else:
            others.append(ev["e"])
    assert others == ["outboundAccountPosition", "balanceUpdate", "listStatus", "eventStreamTerminated",
                      "externalLockUpdate"]
    (r,) = reports
    assert r.client_order_ids == ("mUvoqJxFIILMdfAW5iGSOW",)  # "C" is "" for a new order
    assert r.status is ExecStatus.ACK
    assert r.venue_order_id == 4293153
    assert (r.cum_qty, r.cum_quote, r.last_qty, r.last_px) == (0, 0, 0, 0)
    assert r.trade_id == -1
    assert r.update_id == 8641984
    assert r.reason == ""  # "NONE"
    assert r.event_ts_ns == 1499405658658 * 1_000_000
    assert r.fee_asset == ""  # "N": null


def _trade(**over):
    ev = {"e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "cid", "S": "BUY", "o": "LIMIT", "f": "GTC",
          "q": "0.03000000", "p": "30000.01000000", "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "",
          "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 11, "l": "0.01000000", "z": "0.01000000",
          "L": "30000.01000000", "n": "0.00001000", "N": "BTC", "T": 2, "t": 77, "I": 5, "w": False,
          "m": False, "M": True, "O": 1, "Z": "300.00010000", "Y": "300.00010000", "Q": "0.00000000",
          "W": 1, "V": "NONE"}
    ev.update(over)
    return ev


def test_a_trade_report_carries_exact_mantissas():
    r = parse.execution_report(_trade(), registry())
    assert r.status is ExecStatus.PARTIAL
    assert (r.cum_qty, r.last_qty, r.last_px, r.trade_id) == (1000, 1000, 3000001, 77)
    assert r.cum_quote == 300_0001_000  # 300.0001 at scale 2 + 5
    assert (r.fee, r.fee_asset) == (1000, "BTC")  # 0.00001 at the fee scale, 8


def test_a_cancel_report_names_both_the_cancel_and_the_order():
    r = parse.execution_report(_trade(x="CANCELED", X="CANCELED", c="cancel-id", C="order-id", t=-1), registry())
    assert r.client_order_ids == ("cancel-id", "order-id")
    assert r.status is ExecStatus.CANCELLED


def test_websocket_api_frames_split_into_answers_events_and_bad_frames():
    ev = _trade()
    assert split_frame(orjson.dumps({"subscriptionId": 0, "event": ev})) == ("event", ev)
    shutdown = {"e": "serverShutdown", "E": 1770123456789}  # no subscriptionId: a connection event
    assert split_frame(orjson.dumps({"event": shutdown})) == ("event", shutdown)
    answer = {"id": 3, "status": 200, "result": {"subscriptionId": 0}}
    assert split_frame(orjson.dumps(answer)) == ("answer", answer)
    assert split_frame(b'{"subscriptionId": 0, "event": ')[0] == "bad"
    assert split_frame(b"[1]") == ("bad", "not an object: list")
    assert split_frame(orjson.dumps(ev))[0] == "bad"  # a bare event: the retired listenKey form


def test_an_unknown_status_is_an_error_not_a_default():
    with pytest.raises(BadInput):
        parse.execution_report(_trade(X="HALF_FILLED"), registry())


def test_a_full_post_reply_becomes_ack_then_one_report_per_fill_then_the_status():
    reply = {"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "cid",
             "transactTime": 1507725176595, "price": "0.00000000", "origQty": "0.02000000",
             "executedQty": "0.02000000", "cummulativeQuoteQty": "600.00000000", "status": "FILLED",
             "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
             "fills": [{"price": "30000.00", "qty": "0.01", "commission": "0", "commissionAsset": "USDT",
                        "tradeId": 56},
                       {"price": "30000.00", "qty": "0.01", "commission": "0", "commissionAsset": "USDT",
                        "tradeId": 57}]}
    rs = parse.order_response(reply, registry())
    assert [r.status for r in rs] == [ExecStatus.ACK, ExecStatus.PARTIAL, ExecStatus.PARTIAL, ExecStatus.FILLED]
    assert [r.cum_qty for r in rs] == [0, 1000, 2000, 2000]
    assert [r.trade_id for r in rs] == [-1, 56, 57, -1]
    assert rs[-1].cum_quote == 600 * 10**7


def test_a_cancel_reply_names_the_original_client_order_id_first():
    reply = {"symbol": "BTCUSDT", "origClientOrderId": "order-id", "orderId": 4, "orderListId": -1,
             "clientOrderId": "cancel-id", "transactTime": 1, "price": "30000.00000000", "origQty": "0.01000000",
             "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "CANCELED",
             "timeInForce": "GTC", "type": "LIMIT", "side": "BUY"}
    (r,) = parse.order_response(reply, registry())
    assert r.client_order_ids == ("order-id", "cancel-id")
    assert r.status is ExecStatus.CANCELLED


def test_exchange_info_gives_scales_ticks_lots_and_min_notional():
    info = {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
                      "tickSize": "0.01000000"},
                     {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                      "stepSize": "0.00001000"},
                     {"filterType": "NOTIONAL", "minNotional": "5.00000000"}]},
        {"symbol": "XRPUSDT", "status": "TRADING", "baseAsset": "XRP", "quoteAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00050000"},
                     {"filterType": "LOT_SIZE", "stepSize": "0.10000000"},
                     {"filterType": "MIN_NOTIONAL", "minNotional": "1.00000000"}]},
        {"symbol": "OLDUSDT", "status": "BREAK", "baseAsset": "OLD", "quoteAsset": "USDT", "filters": []},
    ]}
    got = {vs: inst for inst, vs in parse.exchange_info(info)}
    assert set(got) == {"BTCUSDT", "XRPUSDT"}
    btc, xrp = got["BTCUSDT"], got["XRPUSDT"]
    assert (btc.symbol, btc.px_scale, btc.sz_scale, btc.tick, btc.lot) == ("BTC-USDT", 2, 5, 1, 1)
    assert btc.min_notional == 5 * 10**7
    assert (xrp.px_scale, xrp.sz_scale, xrp.tick, xrp.lot) == (4, 1, 5, 1)
