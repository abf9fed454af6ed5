"""Post-only, reduce-only and the venue's "duplicate client order id" refusal, through
`python -m execution` and the SDK against the simulator, on Binance spot, Binance USD-M and
OKX (spot and a USDT swap).

    post-only that would take     spot -2010 "Order would immediately match and take." ->
                                  REJECTED; USD-M -5022 -> REJECTED; OKX accepts, then cancels
                                  it (cancelSource 31) -> EXPIRED
    post-only that rests          ACK (spot: a LIMIT_MAKER at the venue; USD-M: GTX; OKX: post_only)
    reduce-only                   filled when it reduces; refused when it would open or increase
                                  (USD-M -2022, OKX 51169 / 51170); refused by validation on spot
    duplicate refusal             the venue already holds the client order id (an earlier
                                  placement of ours landed): queried, reported ACK, never REJECTED
"""

from __future__ import annotations

import pytest

from execution.ids import venue_client_order_id
from venues.binance.trading.rest import BinanceRest
from venues.binance.trading.usdm.rest import FuturesRest
from venues.okx.trading.rest import OkxRest

from . import test_okx_lifecycle as okx_rig
from . import test_usdm_sim as usdm_rig
from .harness import client, collect, of, sim_orders, statuses, terminal, top
from .test_okx_lifecycle import OkxExec, okx_sim  # noqa: F401  (fixture)
from .test_usdm_sim import usdm, usdm_execution  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(90), pytest.mark.multiprocess]
KEY, SECRET, PASSPHRASE = "meltica-sim-key", "meltica-sim-secret", "meltica-sim-passphrase"
USDM, PERP = "binance-usdm", "BTC-USDT-PERP"


def reject_code(r) -> int:
    """The venue's code of a rejection (an int16 in the record: OKX's five-digit codes are in
    the reason, "venue refused: <code> <message>")."""
    return int(r["exec"]["reject_code"])


def above(ask: str) -> str:
    """A buy price 1% above the best ask (whole units: a multiple of every tick here): it
    crosses even if the market moves between reading the book and the order arriving."""
    return str(int(float(ask) * 1.01))


def acked(coid: str):
    return lambda got: "ACK" in statuses(of(got, coid))


# -- Binance spot ------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_spot_post_only_that_would_take_is_rejected_and_one_that_rests_is_acked(run_ctx, sim, execution, entry):
    execution("--order-entry", entry)
    _, (ask, _) = top(sim)
    with client(run_ctx) as oc:
        r = oc.submit_limit("po-take", "BTC-USDT", "buy", "0.001", above(ask), tif="POST_ONLY")
        assert r["status"] == "accepted"
        assert oc.submit_limit("po-rest", "BTC-USDT", "sell", "0.001", "99000", tif="GTX")["status"] == "accepted"
        got = collect(oc, lambda g: terminal("po-take")(g) and acked("po-rest")(g))
        (take,) = of(got, "po-take")
        assert statuses([take]) == ["REJECTED"] and reject_code(take) == -2010
        assert b"would immediately match and take" in take["exec"]["reason"]
        assert statuses(of(got, "po-rest")) == ["ACK"]
        assert oc.query("po-rest")["order"]["tif"] == "POST_ONLY"
    (rest,) = [o for o in sim_orders(sim)["orders"] if o["status"] == "NEW"]
    assert (rest["type"], rest["timeInForce"]) == ("LIMIT_MAKER", "GTC")


def test_spot_reduce_only_is_refused_by_validation(run_ctx, sim, execution):
    execution()
    with client(run_ctx) as oc:
        r = oc.submit_market("ro-spot", "BTC-USDT", "sell", "0.001", reduce_only=True)
        assert (r["status"], r["code"]) == ("rejected", "validation")
        assert "futures and swaps only" in r["reason"]
    assert sim_orders(sim)["orders"] == []


@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_spot_duplicate_refusal_is_resolved_by_query(run_ctx, sim, execution, entry):
    execution("--order-entry", entry)
    with client(run_ctx) as oc:
        vcoid = venue_client_order_id(oc.consumer_id, "dup-1")
        rest = BinanceRest(sim.endpoints["binance-spot"]["rest"], KEY, SECRET)
        try:  # our earlier placement, landed (as if its answer was lost and execution restarted)
            rest.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                           price="60000", newClientOrderId=vcoid)
        finally:
            rest.close()
        assert oc.submit_limit("dup-1", "BTC-USDT", "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, acked("dup-1"))
        assert statuses(of(got, "dup-1")) == ["ACK"]
    d = sim_orders(sim)
    assert (d["received"][vcoid], d["accepted"][vcoid]) == (2, 1)   # the second refused: -2010 duplicate
    assert d["requests"]["POST /api/v3/order"] == (2 if entry == "rest" else 1)   # the path taken


# -- Binance USD-M -----------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_usdm_post_only_that_would_take_is_rejected_and_one_that_rests_is_acked(run_ctx, usdm, usdm_execution,
                                                                                  entry):
    usdm_execution("--order-entry", entry)
    _, (ask, _) = usdm_rig.top(usdm)
    with client(run_ctx) as oc:
        oc.submit_limit("gtx-take", PERP, "buy", "0.001", above(ask), tif="POST_ONLY", venue=USDM)
        oc.submit_limit("gtx-rest", PERP, "buy", "0.001", "60000", tif="POST_ONLY", venue=USDM)
        got = collect(oc, lambda g: terminal("gtx-take")(g) and acked("gtx-rest")(g))
        (take,) = of(got, "gtx-take")
        assert statuses([take]) == ["REJECTED"] and reject_code(take) == -5022
        assert statuses(of(got, "gtx-rest")) == ["ACK"]
    (rest,) = usdm_rig.sim_orders(usdm)["orders"]
    assert (rest["timeInForce"], rest["status"]) == ("GTX", "NEW")


def test_usdm_reduce_only_reduces_and_is_refused_when_it_would_increase(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_market("open", PERP, "buy", "0.002", venue=USDM)
        got = collect(oc, terminal("open"))
        assert statuses(of(got, "open"))[-1] == "FILLED"
        assert oc.submit_market("ro-more", PERP, "buy", "0.001", venue=USDM, reduce_only=True)["status"] == "accepted"
        assert oc.submit_market("ro-less", PERP, "sell", "0.001", venue=USDM, reduce_only=True)["status"] == "accepted"
        collect(oc, lambda g: terminal("ro-more")(g) and terminal("ro-less")(g), got=got)
        (more,) = of(got, "ro-more")
        assert statuses([more]) == ["REJECTED"] and reject_code(more) == -2022
        assert statuses(of(got, "ro-less"))[-1] == "FILLED"
        assert oc.query("ro-less")["order"]["reduce_only"] is True
    sent = {o["clientOrderId"]: o for o in usdm_rig.sim_orders(usdm)["orders"]}
    assert [o["reduceOnly"] for o in sent.values() if o["side"] == "SELL"] == [True]


@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_usdm_duplicate_refusal_is_resolved_by_query(run_ctx, usdm, usdm_execution, entry):
    usdm_execution("--order-entry", entry)
    with client(run_ctx) as oc:
        vcoid = venue_client_order_id(oc.consumer_id, "dup-1")
        rest = FuturesRest(usdm.endpoints[USDM]["rest"], KEY, SECRET)
        try:
            rest.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                           price="60000", newClientOrderId=vcoid)
        finally:
            rest.close()
        assert oc.submit_limit("dup-1", PERP, "buy", "0.001", "60000", venue=USDM)["status"] == "accepted"
        got = collect(oc, acked("dup-1"))
        assert statuses(of(got, "dup-1")) == ["ACK"]
    d = usdm_rig.sim_orders(usdm)
    assert (d["received"][vcoid], d["accepted"][vcoid]) == (2, 1)   # the second refused: -4116
    assert d["requests"]["POST /fapi/v1/order"] == (2 if entry == "rest" else 1)   # the path taken


# -- OKX -------------------------------------------------------------------------------

@pytest.fixture
def okx_execution(run_ctx, okx_sim, reap):  # noqa: F811
    return lambda *args, entry="rest": OkxExec(run_ctx, okx_sim, reap, *args, entry=entry).start()


@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_okx_post_only_that_would_take_expires_and_one_that_rests_is_acked(
        run_ctx, okx_sim, okx_execution, entry):  # noqa: F811
    okx_execution(entry=entry)
    _, (ask, _) = okx_rig.top(okx_sim)
    with client(run_ctx) as oc:
        oc.submit_limit("po-take", "BTC-USDT", "buy", "0.001", above(ask), tif="POST_ONLY", venue="okx")
        oc.submit_limit("po-rest", "BTC-USDT", "buy", "0.001", "60000", tif="POST_ONLY", venue="okx")
        got = collect(oc, lambda g: terminal("po-take")(g) and acked("po-rest")(g))
        take = of(got, "po-take")
        assert statuses(take)[-1] == "EXPIRED" and b"post-only" in take[-1]["exec"]["reason"]
        assert statuses(of(got, "po-rest")) == ["ACK"]
    types = {o["ordType"] for o in okx_rig.sim_orders(okx_sim)["orders"]}
    assert types == {"post_only"}


def test_okx_swap_reduce_only_reduces_and_is_refused_when_it_would_open_or_increase(
        run_ctx, okx_sim, okx_execution):  # noqa: F811
    okx_execution()
    with client(run_ctx) as oc:
        assert oc.submit_market("ro-open", PERP, "sell", "0.001", venue="okx", reduce_only=True)["status"] == \
            "accepted"   # no position yet: nothing to reduce
        got = collect(oc, terminal("ro-open"))
        (opened,) = of(got, "ro-open")
        assert statuses([opened]) == ["REJECTED"] and opened["exec"]["reason"].startswith(b"venue refused: 51169")
        oc.submit_market("open", PERP, "buy", "0.002", venue="okx")
        collect(oc, terminal("open"), got=got)
        assert statuses(of(got, "open"))[-1] == "FILLED"
        oc.submit_market("ro-more", PERP, "buy", "0.001", venue="okx", reduce_only=True)
        oc.submit_market("ro-less", PERP, "sell", "0.001", venue="okx", reduce_only=True)
        collect(oc, lambda g: terminal("ro-more")(g) and terminal("ro-less")(g), got=got)
        (more,) = of(got, "ro-more")
        assert statuses([more]) == ["REJECTED"] and more["exec"]["reason"].startswith(b"venue refused: 51170")
        assert statuses(of(got, "ro-less"))[-1] == "FILLED"
    placed = [o for o in okx_rig.sim_orders(okx_sim)["orders"] if o["reduceOnly"] == "true"]
    assert [o["side"] for o in placed] == ["sell"]


@pytest.mark.parametrize("entry", ["rest", "ws"])
def test_okx_duplicate_refusal_is_resolved_by_query(run_ctx, okx_sim, okx_execution, entry):  # noqa: F811
    okx_execution(entry=entry)
    with client(run_ctx) as oc:
        vcoid = venue_client_order_id(oc.consumer_id, "dup-1", form="alnum")
        rest = OkxRest(okx_sim.endpoints["okx"]["rest"], KEY, SECRET, PASSPHRASE)
        try:
            rest.post("/api/v5/trade/order", {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": vcoid,
                                              "side": "buy", "ordType": "limit", "sz": "0.001", "px": "60000"})
        finally:
            rest.close()
        assert oc.submit_limit("dup-1", "BTC-USDT", "buy", "0.001", "60000", venue="okx")["status"] == "accepted"
        got = collect(oc, acked("dup-1"))
        assert statuses(of(got, "dup-1")) == ["ACK"]
    d = okx_rig.sim_orders(okx_sim)
    assert (d["received"][vcoid], d["accepted"][vcoid]) == (2, 1)   # the second refused: 51016
    assert d["requests"]["POST /api/v5/trade/order"] == (2 if entry == "rest" else 1)   # the path taken
