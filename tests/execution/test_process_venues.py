"""The execution process over two venues: Binance spot on the simulator, and a second venue
whose instruments cannot be loaded at start-up (its orders are refused as down while
spot trades), then can (the process starts its adapter and routes its orders to it).

The second venue is a stand-in behind `venues.get` (only Binance spot has a trading
adapter today); everything else is the real process code, driven in-process through its
control socket and exec ring with the SDK."""

from __future__ import annotations

import threading
import time

import pytest

import venues
from events import ExecStatus, PeerGone, Provider
from execution import process as process_mod
from execution.__main__ import SIM_KEY, SIM_SECRET
from execution.process import ExecutionProcess, VenueConfig
from venues.trading import UserStreamConnected

from .fakes import RecordingVenue, report
from .harness import client, collect, gap_free, of, statuses
from .test_multi_venue import okx_registry

pytestmark = [pytest.mark.timeout(60), pytest.mark.multiprocess]


class LateVenue:
    """The venues.base surface of a venue unreachable until `reachable` is set."""

    provider = Provider.OKX
    trading = True
    env_prefix = "MELTICA_TEST_OKX"

    def __init__(self):
        self.reachable = threading.Event()
        self.loads = 0
        self.adapter = None

    def trading_registry(self, rest_url, *, timeout_s):
        self.loads += 1
        if not self.reachable.is_set():
            raise PeerGone(f"GET {rest_url}: cannot connect")
        return okx_registry()

    def trading_adapter(self, *, emit, **_kw):
        self.adapter = AckingVenue(emit)
        return self.adapter


class AckingVenue(RecordingVenue):
    """An adapter that connects its stream on start and acknowledges every order."""

    provider = Provider.OKX
    fee_scale = 6

    def __init__(self, emit):
        super().__init__()
        self.emit = emit

    def start(self):
        self.emit(UserStreamConnected())

    def stop(self):
        pass

    def place(self, o):
        super().place(o)
        self.emit(report(o.venue_client_order_id, ExecStatus.ACK, source="rest"))


def wait(cond, what: str, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_venue_down_at_start_is_refused_while_spot_trades_then_trades_once_it_loads(run_ctx, sim, monkeypatch):
    late = LateVenue()
    real_get = venues.get
    monkeypatch.setattr(process_mod.venues, "get", lambda p: late if Provider(p) is Provider.OKX else real_get(p))
    ep = sim.endpoints["binance-spot"]
    proc = ExecutionProcess(run_ctx, venues_=[
        VenueConfig("binance-spot", ep["rest"], ep["ws"], SIM_KEY, SIM_SECRET),
        VenueConfig("okx", "http://127.0.0.1:9", "ws://127.0.0.1:9", "k", "s")], retry_s=0.2)
    t = threading.Thread(target=proc.run, name="execution", daemon=True)
    t.start()
    try:
        wait(lambda: run_ctx.path("exec", "ready").exists(), "execution ready")
        with client(run_ctx) as oc:
            down = oc.submit_limit("k-1", "BTC-USDT", "buy", "0.001", "60000", venue="okx")
            assert down["status"] == "rejected" and down["code"] == "venue_down"
            assert "venue okx is down: instruments not loaded" in down["reason"]
            assert oc.submit_limit("s-1", "BTC-USDT", "buy", "0.001", "60000", venue="binance-spot")["status"] == \
                "accepted"
            wait(lambda: late.loads >= 2, "a retry of the load")  # retried while down
            late.reachable.set()
            wait(lambda: oc.request("status")["venues"]["okx"]["down"] is None, "okx loaded and started")
            r = oc.submit_limit("k-1", "BTC-USDT", "buy", "0.00012345", "60000.5", venue="okx")
            assert r["status"] == "accepted" and r["order"]["venue"] == "okx"  # the refusal took no id
            got = collect(oc, lambda g: statuses(of(g, "s-1")) == ["ACK"] and statuses(of(g, "k-1")) == ["ACK"])
            gap_free(run_ctx, got)  # one gap-free exec_seq for both venues
            assert {Provider(int(x["provider"])) for x in of(got, "k-1")} == {Provider.OKX}
            assert int(of(got, "k-1")[0]["exec"]["sz_scale"]) == 8  # OKX's instrument, not spot's
        assert late.adapter.count("place") == 1
    finally:
        proc.stop()
        t.join(15)
    assert not t.is_alive()
