"""Lifecycle walks on OKX spot and a USDT swap, through `python -m execution --venue okx`
and the SDK, against the simulator's OKX order API and private WebSocket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest

from events import ExecStatus

from .harness import REPO, ExecProc, client, collect, gap_free, of, statuses, terminal

pytestmark = [pytest.mark.timeout(90), pytest.mark.multiprocess]
SPOT, SWAP = "BTC-USDT", "BTC-USDT-PERP"


@pytest.fixture
def okx_sim(request):
    """The simulator's okx app; its market steps 20 times a second unless a test asks for
    another rate (`@pytest.mark.parametrize("okx_sim", [0], indirect=True)`: a still market)."""
    from simulator.server import Simulator
    rate = getattr(request, "param", 20)
    s = Simulator(venues=["okx"], instruments=2, rate=rate, seed=7).start()
    try:
        yield s
    finally:
        s.stop()


class OkxExec(ExecProc):
    """`python -m execution --venue okx` against the simulator's okx app; `entry`: REST or WS
    order entry (`--order-entry`)."""

    venue = "okx"

    def __init__(self, ctx, sim, reap, *args, entry: str = "rest"):
        super().__init__(ctx, sim, reap, *args)
        self.entry = entry

    def venue_args(self) -> list[str]:
        return [*super().venue_args(), "--order-entry", self.entry]


@pytest.fixture(params=["rest", "ws"])
def okx_exec(request, run_ctx, okx_sim, reap):
    """A factory of started execution processes on okx, with REST and with WS order entry."""
    return lambda *args: OkxExec(run_ctx, okx_sim, reap, *args, entry=request.param).start()


def okx_get(sim, path: str):
    with urllib.request.urlopen(sim.endpoints["okx"]["rest"] + path, timeout=5) as r:
        return orjson.loads(r.read())


def sim_orders(sim) -> dict:
    return okx_get(sim, "/_sim/orders")


def top(sim, inst_id: str = SPOT):
    d = okx_get(sim, f"/api/v5/market/books?instId={inst_id}&sz=5")["data"][0]
    return d["bids"][0][:2], d["asks"][0][:2]


def filled(reports) -> list[int]:
    return [int(r["exec"]["filled"]) for r in reports]


def exact_quote(rs) -> bool:
    """The last report's cumulative quote is the sum of its trades' qty x px (exact)."""
    return int(rs[-1]["exec"]["cum_quote"]) == sum(int(r["exec"]["last_qty"]) * int(r["exec"]["last_px"]) for r in rs)


def test_spot_limit_rests_is_acked_then_cancelled(run_ctx, okx_sim, okx_exec):
    okx_exec()
    with client(run_ctx) as oc:
        assert oc.submit_limit("gtc-1", SPOT, "buy", "0.001", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: statuses(of(g, "gtc-1")) == ["ACK"])
        assert oc.query("gtc-1")["order"]["venue_client_order_id"].isalnum()
        assert oc.cancel("gtc-1")["status"] == "accepted"
        collect(oc, terminal("gtc-1"), got=got)
        assert statuses(of(got, "gtc-1")) == ["ACK", "CANCELLED"]
    (o,) = sim_orders(okx_sim)["orders"]
    assert o["state"] == "canceled" and o["cancelSource"] == "1" and len(o["clOrdId"]) == 32


def test_spot_and_swap_market_orders_fill_with_exact_quotes(run_ctx, okx_sim, okx_exec):
    okx_exec()
    with client(run_ctx) as oc:
        oc.submit_market("mkt-b", SPOT, "buy", "0.002")
        oc.submit_market("mkt-s", SPOT, "sell", "0.001")
        oc.submit_market("swp-b", SWAP, "buy", "0.0123")    # 12.3 contracts of 0.001 BTC
        got = collect(oc, lambda g: all(terminal(c)(g) for c in ("mkt-b", "mkt-s", "swp-b")))
        for coid, qty in (("mkt-b", 200), ("mkt-s", 100), ("swp-b", 1230)):
            rs = of(got, coid)
            assert statuses(rs)[-1] == "FILLED" and filled(rs)[-1] == qty, (coid, statuses(rs))
            assert sum(int(r["exec"]["last_qty"]) for r in rs) == qty
            assert exact_quote(rs) and int(rs[-1]["exec"]["cum_quote"]) > 0
    venue = {o["clOrdId"]: o for o in sim_orders(okx_sim)["orders"]}
    assert sorted(o["sz"] for o in venue.values()) == ["0.001", "0.002", "12.3"]   # the swap in contracts
    pos = okx_get_signed_positions(okx_sim)
    assert pos == [("BTC-USDT-SWAP", "12.3")]


def okx_get_signed_positions(sim):
    from venues.okx.trading.rest import OkxRest
    from execution.__main__ import SIM_KEY, SIM_PASSPHRASE, SIM_SECRET
    rest = OkxRest(sim.endpoints["okx"]["rest"], SIM_KEY, SIM_SECRET, SIM_PASSPHRASE)
    try:
        return [(p["instId"], p["pos"]) for p in rest.get("/api/v5/account/positions")]
    finally:
        rest.close()


@pytest.mark.parametrize("okx_sim", [0], indirect=True)   # the best ask must stay where it was read
def test_ioc_partial_then_expired_fok_and_ioc_misses_expire_and_a_take_fills(run_ctx, okx_sim, okx_exec):
    okx_exec()
    (bid, _), (ask, ask_qty) = top(okx_sim)
    more = f"{float(ask_qty) + 1:.5f}"          # more than the best ask holds (exact at 5 dp)
    with client(run_ctx) as oc:
        oc.submit_limit("ioc-part", SPOT, "buy", more, ask, tif="IOC")
        oc.submit_limit("ioc-miss", SPOT, "buy", "0.001", "60000", tif="IOC")
        oc.submit_limit("fok-miss", SWAP, "buy", "0.01", "60000", tif="FOK")
        oc.submit_limit("gtc-take", SWAP, "buy", "0.01", "70000", tif="GTC")
        names = ("ioc-part", "ioc-miss", "fok-miss", "gtc-take")
        got = collect(oc, lambda g: all(terminal(c)(g) for c in names))
        part = of(got, "ioc-part")
        assert statuses(part)[-1] == "EXPIRED" and 0 < filled(part)[-1] < int(round(float(more) * 10**5))
        assert "PARTIAL" in statuses(part) and exact_quote(part)
        for coid in ("ioc-miss", "fok-miss"):
            assert statuses(of(got, coid))[-1] == "EXPIRED" and filled(of(got, coid))[-1] == 0
        assert statuses(of(got, "gtc-take"))[-1] == "FILLED" and exact_quote(of(got, "gtc-take"))
    sources = {o["clOrdId"][-6:]: o["cancelSource"] for o in sim_orders(okx_sim)["orders"] if o["state"] == "canceled"}
    assert sorted(sources.values()) == ["13", "14", "14"]      # FOK / IOC remainders, as OKX says


def test_a_venue_refusal_is_rejected_with_the_okx_code(run_ctx, okx_sim, okx_exec):
    okx_exec()
    with client(run_ctx) as oc:
        assert oc.submit_limit("too-high", SPOT, "buy", "0.001", "9999999")["status"] == "accepted"
        assert oc.submit_limit("too-big", SPOT, "buy", "10000", "60000")["status"] == "accepted"
        got = collect(oc, lambda g: terminal("too-high")(g) and terminal("too-big")(g))
        for coid, code in (("too-high", 51137), ("too-big", 51008)):
            rs = of(got, coid)
            assert statuses(rs) == ["REJECTED"]
            # the record's reject_code is an int16: OKX's five-digit codes saturate there, the reason has them
            assert int(rs[0]["exec"]["reject_code"]) == min(code, 32767)
            assert rs[0]["exec"]["reason"].startswith(b"venue refused: %d " % code)


def test_duplicates_across_consumers_and_an_execution_restart_reach_the_venue_once(run_ctx, okx_sim, okx_exec):
    ex = okx_exec()
    with client(run_ctx, "c1") as c1, client(run_ctx, "c2") as c2:
        assert c1.submit_limit("dup-1", SWAP, "buy", "0.01", "60000")["status"] == "accepted"
        assert c1.submit_limit("dup-1", SWAP, "buy", "0.01", "60000")["status"] == "duplicate"
        assert c2.submit_limit("dup-1", SWAP, "buy", "0.01", "60000")["status"] == "accepted"
        collect(c1, lambda g: statuses(of(g, "dup-1")) == ["ACK"])
    ex.stop()
    okx_exec()
    with client(run_ctx, "c1") as c1:
        dup = c1.submit_limit("dup-1", SWAP, "buy", "0.01", "60000")
        assert dup["status"] == "duplicate" and dup["order"]["status"] == "ACK"
        assert dup["order"]["venue"] == "okx"
    assert sorted(sim_orders(okx_sim)["received"].values()) == [1, 1]


def test_a_restart_reconciles_what_happened_while_execution_was_down(run_ctx, okx_sim, okx_exec):
    ex = okx_exec()
    with client(run_ctx) as oc:
        oc.submit_limit("rec-1", SPOT, "buy", "0.001", "60000")
        collect(oc, lambda g: statuses(of(g, "rec-1")) == ["ACK"])
    ex.stop()
    from venues.okx.trading.rest import OkxRest
    from execution.__main__ import SIM_KEY, SIM_PASSPHRASE, SIM_SECRET
    (o,) = sim_orders(okx_sim)["orders"]
    rest = OkxRest(okx_sim.endpoints["okx"]["rest"], SIM_KEY, SIM_SECRET, SIM_PASSPHRASE)
    rest.post("/api/v5/trade/cancel-order", {"instId": SPOT, "clOrdId": o["clOrdId"]})   # behind our back
    rest.close()
    okx_exec()
    with client(run_ctx) as oc:
        got = collect(oc, terminal("rec-1"))
        assert statuses(of(got, "rec-1"))[-1] == "CANCELLED"
        assert oc.query("rec-1")["order"]["status"] == ExecStatus.CANCELLED.name


def test_binance_spot_and_okx_trade_in_one_execution_with_one_exec_seq(run_ctx, reap):
    from simulator.server import Simulator
    with Simulator(venues=["binance-spot", "okx"], instruments=2, rate=20, seed=7) as sim:
        b, o = sim.endpoints["binance-spot"], sim.endpoints["okx"]
        env = {**os.environ, **run_ctx.env(), "PYTHONPATH": str(REPO)}
        log = open(run_ctx.path("exec", "process.log"), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "execution", "--venues", "binance-spot,okx",
                                 "--rest-url", f"binance-spot={b['rest']}", "--ws-url", f"binance-spot={b['ws']}",
                                 "--rest-url", f"okx={o['rest']}", "--ws-url", f"okx={o['ws']}"],
                                env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        log.close()
        reap.append(proc)
        ready = run_ctx.run_dir / "exec" / "ready"
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().split()[:1] == [str(proc.pid)]):
            assert proc.poll() is None and time.monotonic() < deadline, run_ctx.path("exec", "process.log").read_text()
            time.sleep(0.02)
        with client(run_ctx) as oc:
            assert oc.submit_market("b-1", SPOT, "buy", "0.001", venue="binance-spot")["status"] == "accepted"
            assert oc.submit_market("o-1", SWAP, "buy", "0.001", venue="okx")["status"] == "accepted"
            assert oc.submit_limit("o-2", SPOT, "buy", "0.001", "60000", venue="okx")["status"] == "accepted"
            got = collect(oc, lambda g: terminal("b-1")(g) and terminal("o-1")(g) and
                          statuses(of(g, "o-2")) == ["ACK"])
            gap_free(run_ctx, got)                                       # one gap-free journal for both
            assert {int(r["provider"]) for r in of(got, "b-1")} != {int(r["provider"]) for r in of(got, "o-1")}
            st = oc.request("status")["venues"]
            assert st["okx"]["stream_up"] and st["binance-spot"]["stream_up"]
        proc.terminate()
        proc.wait(10)
