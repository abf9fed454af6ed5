"""`python -m execution` with WebSocket order entry (`[execution] order_entry = "ws"`) on the
simulator: orders and cancels go over the WebSocket API, the consumer sees the lifecycle it sees
over REST, and an answer lost with its connection is resolved by a query, never a resend."""

from __future__ import annotations

import time

import pytest

from .harness import client, collect, gap_free, of, sim_orders, statuses, terminal

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
SYM = "BTC-USDT"
V = "binance-spot"


@pytest.fixture
def ws_execution(run_ctx, sim, execution, tmp_path):
    """Execution with order_entry from its config table (the CLI flag is the same option)."""
    cfg = tmp_path / "run.toml"
    cfg.write_text('[execution]\norder_entry = "ws"\n')

    def start(*args):
        proc = execution("--config", str(cfg), *args)
        ready = run_ctx.path("exec", "ready").read_text().split()
        assert "order_entry=binance-spot:ws" in ready, ready
        # the user stream's connection and the order-entry one (on a slow machine it may come after ready)
        deadline = time.monotonic() + 20
        while sim.stats()[V]["orders"]["userstream"]["connections"] < 2:
            assert time.monotonic() < deadline, "the order-entry connection never came up"
            time.sleep(0.05)
        return proc

    return start


def test_an_order_walks_its_lifecycle_over_the_websocket_api(run_ctx, sim, ws_execution):
    ws_execution()
    with client(run_ctx) as oc:
        assert oc.submit_limit("w-rest", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "w-rest")) == ["ACK"])
        assert oc.cancel("w-rest")["status"] in ("accepted", "duplicate")
        assert oc.submit_limit("w-take", SYM, "buy", "0.001", "70000", tif="IOC")["status"] == "accepted"
        collect(oc, lambda g: terminal("w-rest")(g) and terminal("w-take")(g), got=got)
        assert statuses(of(got, "w-rest")) == ["ACK", "CANCELLED"]
        assert statuses(of(got, "w-take"))[-1] == "FILLED"
        gap_free(run_ctx, got)
    counts = sim_orders(sim)
    assert counts["requests"]["WS order.place"] == 2 and counts["requests"]["WS order.cancel"] == 1
    assert "POST /api/v3/order" not in counts["requests"] and "DELETE /api/v3/order" not in counts["requests"]
    assert sorted(counts["received"].values()) == [1, 1]


def test_an_answer_lost_with_its_connection_is_queried_and_the_order_placed_once(run_ctx, sim, ws_execution):
    ws_execution("--timeout", "0.5")
    with client(run_ctx) as oc:
        sim.inject(V, "drop_response")
        assert oc.submit_limit("w-drop", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "w-drop")) == ["ACK"])
        oc.cancel("w-drop")
        collect(oc, terminal("w-drop"), got=got)
        assert statuses(of(got, "w-drop")) == ["ACK", "CANCELLED"]
    counts = sim_orders(sim)
    assert list(counts["received"].values()) == [1]
    assert "POST /api/v3/order" not in counts["requests"]


def test_execution_killed_with_an_order_in_flight_on_the_websocket_places_it_once(run_ctx, sim, ws_execution):
    first = ws_execution("--timeout", "10")          # the order is still in flight when the kill comes
    with client(run_ctx) as oc:
        sim.inject(V, "drop_response", hang=True)    # the venue takes the order and never answers
        assert oc.submit_limit("w-kill", SYM, "buy", "0.001", "60000")["status"] == "accepted"
        deadline = time.monotonic() + 10
        while not sim_orders(sim)["accepted"]:
            assert time.monotonic() < deadline, "the venue never got the order"
            time.sleep(0.05)
        first.kill()
    ws_execution()                                   # the same run: its store and journal
    with client(run_ctx) as oc:
        got = collect(oc, lambda g: statuses(of(g, "w-kill")) == ["ACK"], timeout_s=20)
        oc.cancel("w-kill")
        collect(oc, terminal("w-kill"), got=got)
        assert statuses(of(got, "w-kill")) == ["ACK", "CANCELLED"]
    counts = sim_orders(sim)
    assert list(counts["received"].values()) == [1] and list(counts["accepted"].values()) == [1]
