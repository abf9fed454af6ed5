"""Binance USD-M lifecycle walks against the simulator, through `python -m execution
--venue binance-usdm` and the SDK: new, partial, filled, cancelled, rejected (venue filters,
FOK that cannot fill: -5021), expired (IOC), duplicates across an execution restart."""

from __future__ import annotations

import urllib.request

import orjson
import pytest

from events import Provider

from .harness import ExecProc, client, collect, of, statuses, terminal

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]
VENUE = "binance-usdm"
SYM = "BTC-USDT-PERP"


class UsdmExecProc(ExecProc):
    """`python -m execution --venue binance-usdm` against the simulator's USD-M app."""

    venue = VENUE


@pytest.fixture
def usdm(request):
    """The simulator's USD-M venue, its market moving at 20 steps/s (indirect param: another rate)."""
    from simulator.server import Simulator
    rate = getattr(request, "param", 20)
    s = Simulator(venues=[VENUE], instruments=2, rate=rate, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


def stream_up(ctx, timeout_s: float = 10.0) -> None:
    """Wait until execution's USD-M user stream is subscribed (events before it come by
    reconciliation, as summed reports: tests that look at each trade wait for this)."""
    import time
    deadline = time.monotonic() + timeout_s
    with client(ctx, "probe") as oc:
        while not oc.request("status")["venues"][VENUE]["stream_up"]:
            assert time.monotonic() < deadline, "the user stream did not come up"
            time.sleep(0.02)


@pytest.fixture
def usdm_execution(run_ctx, usdm, reap):
    def start(*args):
        proc = UsdmExecProc(run_ctx, usdm, reap, *args).start()
        stream_up(run_ctx)
        return proc
    return start


def rest_get(sim, path: str):
    with urllib.request.urlopen(sim.endpoints[VENUE]["rest"] + path, timeout=5) as r:
        return orjson.loads(r.read())


def sim_orders(sim) -> dict:
    return rest_get(sim, "/_sim/orders")


def top(sim, symbol: str = "BTCUSDT"):
    d = rest_get(sim, f"/fapi/v1/depth?symbol={symbol}&limit=5")
    return tuple(d["bids"][0]), tuple(d["asks"][0])


def ex(r, name: str) -> int:
    return int(r["exec"][name])


def test_limit_gtc_rests_is_acked_then_cancelled(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        assert oc.submit_limit("gtc-1", SYM, "buy", "0.001", "60000", venue=VENUE)["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "gtc-1")) == ["ACK"])
        assert got[0]["provider"] == Provider.BINANCE_USDM   # in the record header
        assert oc.cancel("gtc-1")["status"] == "accepted"
        collect(oc, terminal("gtc-1"), got=got)
        assert statuses(of(got, "gtc-1")) == ["ACK", "CANCELLED"]
    (o,) = sim_orders(usdm)["orders"]
    assert (o["status"], o["timeInForce"], o["positionSide"]) == ("CANCELED", "GTC", "BOTH")


def test_market_orders_fill_trade_by_trade_with_an_exact_cumulative_quote(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_market("mkt-b", SYM, "buy", "0.002", venue=VENUE)
        oc.submit_market("mkt-s", SYM, "sell", "0.001", venue=VENUE)
        got = collect(oc, lambda g: terminal("mkt-b")(g) and terminal("mkt-s")(g))
    for coid, qty in (("mkt-b", 200), ("mkt-s", 100)):
        rs = of(got, coid)
        assert statuses(rs)[0] == "ACK" and statuses(rs)[-1] == "FILLED"
        assert ex(rs[-1], "filled") == qty == sum(ex(r, "last_qty") for r in rs)
        # USD-M reports carry no cumulative quote: the adapter sums the fills it saw
        assert ex(rs[-1], "cum_quote") == sum(ex(r, "last_qty") * ex(r, "last_px") for r in rs) > 0
        assert all(ex(r, "venue_trade_id") > 0 and r["exec"]["fee_asset"] == b"USDT" for r in rs if ex(r, "last_qty"))
    at_venue = {o["clientOrderId"]: o for o in sim_orders(usdm)["orders"]}
    assert len(at_venue) == 2 and all(o["status"] == "FILLED" for o in at_venue.values())


def test_ioc_and_fok_outcomes_expired_rejected_filled(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_limit("ioc-miss", SYM, "buy", "0.001", "60000", tif="IOC", venue=VENUE)
        oc.submit_limit("fok-miss", SYM, "buy", "0.001", "60000", tif="FOK", venue=VENUE)
        oc.submit_limit("gtc-take", SYM, "buy", "0.001", "70000", venue=VENUE)
        oc.submit_limit("fok-take", SYM, "sell", "0.001", "60000", tif="FOK", venue=VENUE)
        got = collect(oc, lambda g: all(terminal(c)(g) for c in ("ioc-miss", "fok-miss", "gtc-take", "fok-take")))
    assert statuses(of(got, "ioc-miss"))[-1] == "EXPIRED" and ex(of(got, "ioc-miss")[-1], "filled") == 0
    fok = of(got, "fok-miss")
    assert statuses(fok) == ["REJECTED"] and ex(fok[0], "reject_code") == -5021   # not recorded at the venue
    assert statuses(of(got, "gtc-take"))[-1] == "FILLED"
    assert statuses(of(got, "fok-take"))[-1] == "FILLED"


@pytest.mark.parametrize("usdm", [0], indirect=True)   # a still market: the top read is the top met
def test_ioc_larger_than_the_top_level_fills_partly_then_expires(run_ctx, usdm, usdm_execution):
    usdm_execution()
    _, (ask, ask_qty) = top(usdm)
    qty = f"{float(ask_qty) + 1:.5f}"
    with client(run_ctx) as oc:
        oc.submit_limit("ioc-part", SYM, "buy", qty, ask, tif="IOC", venue=VENUE)
        rs = of(collect(oc, terminal("ioc-part")), "ioc-part")
    assert statuses(rs)[-1] == "EXPIRED"
    assert 0 < ex(rs[-1], "filled") < int(round(float(qty) * 10**5))


@pytest.mark.parametrize("usdm", [0], indirect=True)   # a still market: none trades the rest away
def test_a_partly_filled_resting_order_is_cancelled_with_its_fill(run_ctx, usdm, usdm_execution):
    usdm_execution()
    _, (ask, ask_qty) = top(usdm)
    qty = f"{float(ask_qty) + 1:.5f}"    # takes the best ask level, rests the rest at its price
    with client(run_ctx) as oc:
        oc.submit_limit("part", SYM, "buy", qty, ask, venue=VENUE)
        got = collect(oc, lambda g: "PARTIAL" in statuses(of(g, "part")))
        oc.cancel("part")
        collect(oc, terminal("part"), got=got)
    rs = of(got, "part")
    assert statuses(rs)[0] == "ACK" and statuses(rs)[-1] == "CANCELLED"
    assert 0 < ex(rs[-1], "filled") == sum(ex(r, "last_qty") for r in rs)


def test_a_venue_filter_failure_is_rejected_with_the_venue_code(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        oc.submit_limit("too-high", SYM, "sell", "0.001", "99999999", venue=VENUE)
        rs = of(collect(oc, terminal("too-high")), "too-high")
    assert statuses(rs) == ["REJECTED"] and ex(rs[0], "reject_code") == -4016


def test_duplicates_across_an_execution_restart_reach_the_venue_once(run_ctx, usdm, usdm_execution):
    proc = usdm_execution()
    with client(run_ctx, "c1") as c1:
        assert c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000", venue=VENUE)["status"] == "accepted"
        assert c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000", venue=VENUE)["status"] == "duplicate"
        collect(c1, lambda g: statuses(of(g, "dup-1")) == ["ACK"])
    proc.stop()
    usdm_execution()
    with client(run_ctx, "c1") as c1:
        dup = c1.submit_limit("dup-1", SYM, "buy", "0.001", "60000", venue=VENUE)
        assert dup["status"] == "duplicate" and dup["order"]["status"] == "ACK"
        st = c1.request("status")
        assert st["venues"][VENUE]["stream_up"] is True
    assert list(sim_orders(usdm)["received"].values()) == [1]


def wait_account(oc, until, timeout_s: float = 15.0):
    """Read the exec channel until `until(oc.account(VENUE))`; return the view."""
    import time
    deadline = time.monotonic() + timeout_s
    while not until(oc.account(VENUE)):
        if time.monotonic() > deadline:
            acct = oc.account(VENUE)
            raise AssertionError(f"account never matched: {acct.balances} {acct.positions}")
        oc.poll_reports(timeout_s=0.1)
    return oc.account(VENUE)


@pytest.mark.parametrize("usdm", [0], indirect=True)   # a still market: the position's PnL holds
def test_the_wallet_on_start_and_the_position_a_fill_opens_reach_the_consumer(run_ctx, usdm, usdm_execution):
    from decimal import Decimal
    usdm_execution()
    with client(run_ctx) as oc:
        acct = wait_account(oc, lambda a: "USDT" in a.balances)
        assert acct.balances["USDT"].free == Decimal(10_000) and not acct.positions   # the REST snapshot
        oc.submit_market("mkt-pos", SYM, "buy", "0.002", venue=VENUE)
        collect(oc, terminal("mkt-pos"))
        acct = wait_account(oc, lambda a: SYM in a.positions)     # ACCOUNT_UPDATE of the fill
        pos = acct.positions[SYM]
        assert pos.size == Decimal("0.002")
    (venue_pos,) = rest_get_signed(usdm, "/fapi/v3/positionRisk")
    assert Decimal(venue_pos["positionAmt"]) == pos.size


def rest_get_signed(sim, path: str):
    import hashlib
    import hmac
    import time
    query = f"timestamp={int(time.time() * 1000)}"
    sig = hmac.new(b"meltica-sim-secret", query.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{sim.endpoints[VENUE]['rest']}{path}?{query}&signature={sig}",
                                 headers={"X-MBX-APIKEY": "meltica-sim-key"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return orjson.loads(r.read())


def test_websocket_order_entry_through_the_process_places_and_cancels_on_the_websocket(run_ctx, usdm, usdm_execution):
    proc = usdm_execution("--order-entry", "ws")
    assert "order_entry=binance-usdm:ws" in (run_ctx.run_dir / "exec" / "ready").read_text()
    with client(run_ctx) as oc:
        oc.submit_limit("ws-1", SYM, "buy", "0.001", "60000", venue=VENUE)
        got = collect(oc, lambda g: statuses(of(g, "ws-1")) == ["ACK"])
        oc.cancel("ws-1")
        collect(oc, terminal("ws-1"), got=got)
        oc.submit_market("ws-m", SYM, "sell", "0.001", venue=VENUE)
        collect(oc, terminal("ws-m"), got=got)
    assert statuses(of(got, "ws-1")) == ["ACK", "CANCELLED"] and statuses(of(got, "ws-m"))[-1] == "FILLED"
    requests = sim_orders(usdm)["requests"]
    assert requests["WS order.place"] == 2 and requests["WS order.cancel"] == 1
    assert "POST /fapi/v1/order" not in requests and proc.proc.poll() is None


def test_an_order_update_out_of_order_changes_nothing(run_ctx, usdm, usdm_execution):
    usdm_execution()
    with client(run_ctx) as oc:
        usdm.inject(VENUE, "reorder_report")          # the NEW update comes after the CANCELED one
        usdm.inject(VENUE, "duplicate_report")        # and the one after it twice
        oc.submit_limit("ooo-1", SYM, "buy", "0.001", "60000", venue=VENUE)
        got = collect(oc, lambda g: statuses(of(g, "ooo-1")) == ["ACK"])   # the REST reply
        oc.cancel("ooo-1")
        collect(oc, terminal("ooo-1"), got=got)
        collect(oc, lambda g: usdm.stats()[VENUE]["faults"]["applied"].get("reorder_report") == 1, got=got)
        oc.submit_limit("ooo-2", SYM, "buy", "0.001", "60000", venue=VENUE)   # a later order: the stream
        collect(oc, lambda g: statuses(of(g, "ooo-2")) == ["ACK"], got=got)   # has delivered the held one
    assert statuses(of(got, "ooo-1")) == ["ACK", "CANCELLED"]
