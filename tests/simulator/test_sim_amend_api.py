"""The simulator's Binance spot amend endpoints, with a plain signed client: keepPriority
(in place, x=REPLACED) and cancelReplace (STOP_ON_FAILURE: cancel + submit, -2022 when the
cancel fails, filters checked before anything is cancelled)."""

from __future__ import annotations

import pytest

from .test_sim_orders_api import _event, spot  # noqa: F401  (fixture)
from .venue_testkit import get

pytestmark = pytest.mark.timeout(30)


def resting(c, cid, qty="0.02", price="50000"):
    status, body = c.new(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty,
                         price=price, newClientOrderId=cid)
    assert status == 200 and body["status"] == "NEW"
    return body


def test_keep_priority_reduces_the_quantity_in_place_and_reports_replaced(spot):  # noqa: F811
    sim, c = spot
    user = c.user_stream(sim.endpoints["binance-spot"]["ws"])
    placed = resting(c, "kp-1")
    status, body = c.signed("PUT", "/api/v3/order/amend/keepPriority",
                            {"symbol": "BTCUSDT", "origClientOrderId": "kp-1", "newClientOrderId": "kp-1",
                             "newQty": "0.01"})
    assert status == 200
    o = body["amendedOrder"]
    assert (o["orderId"], o["clientOrderId"], o["origClientOrderId"], o["qty"], o["status"]) == \
        (placed["orderId"], "kp-1", "kp-1", "0.01000000", "NEW")
    assert {"transactTime", "executionId"} <= set(body) and "cumulativeQuoteQty" in o
    new, replaced = _event(user), _event(user)
    user.close()
    assert (new["x"], replaced["x"], replaced["X"], replaced["q"], replaced["c"]) == \
        ("NEW", "REPLACED", "NEW", "0.01000000", "kp-1")
    assert c.query(symbol="BTCUSDT", origClientOrderId="kp-1")[1]["origQty"] == "0.01000000"


@pytest.mark.parametrize("qty, msg", [("0.03", "Order amend (quantity increase) is not supported."),
                                      ("0.02", "The requested action would change no state; rejecting")])
def test_keep_priority_refuses_what_is_not_a_decrease(spot, qty, msg):  # noqa: F811
    sim, c = spot
    resting(c, "kp-2")
    status, body = c.signed("PUT", "/api/v3/order/amend/keepPriority",
                            {"symbol": "BTCUSDT", "origClientOrderId": "kp-2", "newQty": qty})
    assert (status, body) == (400, {"code": -2038, "msg": msg})


def test_keep_priority_without_a_new_id_gives_the_order_a_random_one(spot):  # noqa: F811
    sim, c = spot
    resting(c, "kp-3")
    _, body = c.signed("PUT", "/api/v3/order/amend/keepPriority",
                       {"symbol": "BTCUSDT", "origClientOrderId": "kp-3", "newQty": "0.01"})
    cid = body["amendedOrder"]["clientOrderId"]
    assert cid != "kp-3" and c.query(symbol="BTCUSDT", origClientOrderId=cid)[1]["origQty"] == "0.01000000"


def test_cancel_replace_cancels_then_places_and_answers_both(spot):  # noqa: F811
    sim, c = spot
    old = resting(c, "cr-1")
    status, body = c.signed("POST", "/api/v3/order/cancelReplace",
                            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                             "quantity": "0.02", "price": "49990", "cancelReplaceMode": "STOP_ON_FAILURE",
                             "cancelOrigClientOrderId": "cr-1", "newClientOrderId": "cr-1b"}, in_body=True)
    assert status == 200
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert (body["cancelResponse"]["orderId"], body["cancelResponse"]["status"]) == (old["orderId"], "CANCELED")
    n = body["newOrderResponse"]
    assert (n["clientOrderId"], n["status"], n["price"], n["origQty"]) == ("cr-1b", "NEW", "49990.00000000",
                                                                           "0.02000000")
    _, seen = get(c.rest + "/_sim/orders")
    assert seen["requests"]["POST /api/v3/order/cancelReplace"] == 1


def test_cancel_replace_of_an_unknown_order_fails_whole_with_2022(spot):  # noqa: F811
    sim, c = spot
    status, body = c.signed("POST", "/api/v3/order/cancelReplace",
                            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                             "quantity": "0.02", "price": "49990", "cancelReplaceMode": "STOP_ON_FAILURE",
                             "cancelOrigClientOrderId": "nope", "newClientOrderId": "cr-2b"}, in_body=True)
    assert (status, body["code"], body["msg"]) == (400, -2022, "Order cancel-replace failed.")
    assert body["data"] == {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                            "newOrderResponse": None}
    assert c.query(symbol="BTCUSDT", origClientOrderId="cr-2b")[0] == 400


def test_cancel_replace_checks_the_new_order_first_and_cancels_nothing_on_a_filter_failure(spot):  # noqa: F811
    sim, c = spot
    resting(c, "cr-3")
    status, body = c.signed("POST", "/api/v3/order/cancelReplace",
                            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                             "quantity": "0.02", "price": "99999999", "cancelReplaceMode": "STOP_ON_FAILURE",
                             "cancelOrigClientOrderId": "cr-3", "newClientOrderId": "cr-3b"}, in_body=True)
    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})
    assert c.query(symbol="BTCUSDT", origClientOrderId="cr-3")[1]["status"] == "NEW"
