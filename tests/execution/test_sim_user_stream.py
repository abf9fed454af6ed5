"""Binance spot user data through the WebSocket API, end to end: `python -m execution` against
the simulator. Fills come through the stream (no polling), the stream moves to a new
connection before the lifetime mark and after `serverShutdown`, and a report sent while no
subscription was live is recovered by reconciliation. Taker orders come from Binance's SDK
(binance-sdk-spot), straight to the venue, so execution sees only its maker's side."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
import pytest
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_spot.spot import Spot

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET

from .harness import client, collect, gap_free, of, sim_orders, statuses, terminal, top

pytestmark = [pytest.mark.timeout(90), pytest.mark.multiprocess]
SYM = "BTC-USDT"
V = "binance-spot"


@pytest.fixture
def sim(request):
    """A still market (rate 0): only our orders trade. `indirect` params: Simulator options."""
    from simulator.server import Simulator
    s = Simulator(venues=[V], instruments=2, rate=0, seed=7, **getattr(request, "param", {})).start()
    try:
        yield s
    finally:
        s.stop()


def stream(sim) -> dict:
    return sim.stats()[V]["orders"]["userstream"]


def polls(sim) -> int:
    """Order-state requests the venue answered: open-orders lists and order queries."""
    r = sim_orders(sim)["requests"]
    return r.get("GET /api/v3/openOrders", 0) + r.get("GET /api/v3/order", 0)


def wait_for(what, cond, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def inside_ask(sim) -> str:
    (bid, _), (ask, _) = top(sim)
    px = Decimal(ask) - Decimal("0.01") if Decimal(ask) - Decimal(bid) > Decimal("0.01") else Decimal(ask)
    return f"{px.normalize():f}"


def take(sim, qty: str = "0.001") -> None:
    """A market buy from another client of the account, through Binance's SDK."""
    spot = Spot(config_rest_api=ConfigurationRestAPI(api_key=DEFAULT_KEY, api_secret=DEFAULT_SECRET,
                                                     base_path=sim.endpoints[V]["rest"]))
    assert spot.rest_api.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=float(qty)).data().status == "FILLED"


def rest_then_fill(sim, oc, coid: str, no_polls: bool = True) -> list:
    """Rest a sell inside the spread, fill it with a taker; return its reports up to FILLED
    and check (`no_polls`) that none came from polling: no order-state request after the fill."""
    oc.submit_limit(coid, SYM, "sell", "0.001", inside_ask(sim))
    got = collect(oc, lambda g: statuses(of(g, coid)) == ["ACK"])
    take(sim)
    after_fill = polls(sim)
    collect(oc, terminal(coid), got=got)
    assert statuses(of(got, coid)) == ["ACK", "FILLED"]
    assert int(of(got, coid)[-1]["exec"]["filled"]) == 100
    if no_polls:
        assert polls(sim) == after_fill, "the fill came by polling, not through the user stream"
    return got


def dlq_reasons(run_ctx) -> list[str]:
    return [orjson.loads(line)["reason"] for f in (run_ctx.run_dir / "dlq").glob("*.jsonl")
            for line in f.read_bytes().splitlines() if line]


def test_fills_arrive_through_the_user_stream_without_polling(run_ctx, sim, execution):
    execution()
    wait_for("a subscription", lambda: stream(sim)["subscriptions"] == 1)
    with client(run_ctx) as oc:
        rest_then_fill(sim, oc, "s-1")
        rest_then_fill(sim, oc, "s-2")
    assert stream(sim)["reports_unsubscribed"] == 0
    assert "bad_user_stream_frame" not in dlq_reasons(run_ctx)


@pytest.mark.parametrize("sim", [{"user_stream_lifetime": 4.0}], indirect=True)
def test_the_venue_ends_the_connection_at_its_lifetime_and_the_gap_is_reconciled(run_ctx, sim, execution):
    execution()
    wait_for("a subscription", lambda: stream(sim)["subscriptions"] == 1)
    with client(run_ctx) as oc:
        oc.submit_limit("gap-1", SYM, "sell", "0.001", inside_ask(sim))
        got = collect(oc, lambda g: statuses(of(g, "gap-1")) == ["ACK"])
        sim.inject(V, "delay_subscribe", seconds=1.0)   # hold the resubscription: a real gap
        wait_for("the lifetime mark and a held resubscription",
                 lambda: (stream(sim)["held_subscribes"], stream(sim)["subscriptions"]) == (1, 0))
        take(sim)                                        # fills gap-1 while nobody subscribed
        assert stream(sim)["reports_unsubscribed"] >= 2  # its trade and its fill went nowhere
        collect(oc, terminal("gap-1"), got=got)
        assert statuses(of(got, "gap-1")) == ["ACK", "FILLED"]
        assert int(of(got, "gap-1")[-1]["exec"]["filled"]) == 100
        # the gap was healed by reconciliation (the poll while down, or the list on resubscribing)
        wait_for("the resubscription", lambda: stream(sim)["subscribes"] >= 2)
        rest_then_fill(sim, oc, "gap-2", no_polls=False)   # and the stream carries fills again
    assert stream(sim)["lifetime_closes"] >= 1


@pytest.mark.parametrize("sim", [{"user_stream_lifetime": 30.0}], indirect=True)
def test_the_stream_moves_to_a_new_connection_before_the_lifetime_mark(run_ctx, sim, execution):
    execution("--user-stream-lifetime", "1")
    wait_for("a subscription", lambda: stream(sim)["subscriptions"] >= 1)
    with client(run_ctx) as oc:
        got: list = []
        deadline = time.monotonic() + 30
        while stream(sim)["subscribes"] < 4:  # trade on while the stream moves, until it moved 3 times
            assert time.monotonic() < deadline, f"the stream did not move: {stream(sim)}"
            # each move reconciles (a list of open orders): that is no polling, so no check here
            got += rest_then_fill(sim, oc, f"r-{len(got)}", no_polls=False)
        gap_free(run_ctx, got, int(got[0]["exec"]["exec_seq"]))   # no gap, no duplicate
    s = stream(sim)
    assert s["subscribes"] >= 4 and s["lifetime_closes"] == 0
    assert s["gaps"] == 0, "a moment without a live subscription: not make-before-break"


def test_server_shutdown_moves_the_stream_to_a_new_connection(run_ctx, sim, execution):
    execution()
    wait_for("a subscription", lambda: stream(sim)["subscriptions"] == 1)
    with client(run_ctx) as oc:
        oc.submit_limit("sd-1", SYM, "sell", "0.001", inside_ask(sim))
        got = collect(oc, lambda g: statuses(of(g, "sd-1")) == ["ACK"])
        sim.inject(V, "server_shutdown", seconds=10.0)
        wait_for("a new connection, the old one closed by us",
                 lambda: stream(sim)["subscribes"] == 2 and stream(sim)["connections"] == 1, timeout_s=8.0)
        take(sim)
        after_fill = polls(sim)
        collect(oc, terminal("sd-1"), got=got)
        assert statuses(of(got, "sd-1")) == ["ACK", "FILLED"]
        assert polls(sim) == after_fill
    s = stream(sim)
    assert (s["server_shutdowns"], s["gaps"], s["reports_unsubscribed"]) == (1, 0, 0)
    assert "bad_user_stream_frame" not in dlq_reasons(run_ctx)
