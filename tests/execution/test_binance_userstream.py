"""The Binance user stream (venues/binance/trading/userstream.py) alone, against the simulator:
a silent line, refused subscriptions, the URL and the signature."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from pathlib import Path

import orjson
import pytest

from simulator.orders_api import DEFAULT_KEY, DEFAULT_SECRET
from simulator.userstream import signature_payload
from venues.binance.trading.userstream import UserStream, signed_params, ws_api_url
from venues.trading import UserStreamConnected, UserStreamDisconnected

pytestmark = pytest.mark.timeout(30)
V = "binance-spot"
DOCS = orjson.loads((Path(__file__).parents[1] / "simulator" / "binance_spot_ws_api_docs.json").read_bytes())


class Recorder:
    """on_state / on_event / on_bad / DLQ sinks that wake a waiting test."""

    def __init__(self):
        self.states, self.events, self.bad, self.dlq = [], [], [], []
        self.changed = threading.Condition()

    def _add(self, where, item):
        with self.changed:
            where.append(item)
            self.changed.notify_all()

    def on_state(self, ev):
        self._add(self.states, ev)

    def on_event(self, ev, raw):
        self._add(self.events, ev)

    def on_bad(self, raw, error):
        self._add(self.bad, (raw, error))

    def put(self, reason, **fields):
        self._add(self.dlq, {"reason": reason, **fields})

    def wait(self, cond, timeout_s: float = 10.0):
        with self.changed:
            assert self.changed.wait_for(cond, timeout_s), f"timed out: states={self.states} dlq={self.dlq}"


@pytest.fixture
def sim(request):
    from simulator.server import Simulator
    s = Simulator(venues=[V], instruments=2, rate=0, seed=7, **getattr(request, "param", {})).start()
    try:
        yield s
    finally:
        s.stop()


def stream(sim, rec: Recorder, key=DEFAULT_KEY, secret=DEFAULT_SECRET, **kw) -> UserStream:
    return UserStream(sim.endpoints[V]["ws"], key, secret, rec.on_event, rec.on_bad, rec.on_state,
                      dlq=rec, backoff_s=(0.05, 0.2), **kw)


def test_the_url_names_the_websocket_api_and_the_signature_is_the_documented_one():
    assert ws_api_url("ws://127.0.0.1:9000") == "ws://127.0.0.1:9000/ws-api/v3"
    assert ws_api_url("ws://127.0.0.1:9000/") == "ws://127.0.0.1:9000/ws-api/v3"
    assert ws_api_url("wss://ws-api.binance.com:443/ws-api/v3") == "wss://ws-api.binance.com:443/ws-api/v3"
    doc = DOCS["web-socket-api.md#signed-request-example-hmac"]
    p = signed_params(doc["apiKey"], doc["secretKey"].encode(), 1645423376532, 100)
    payload = f"apiKey={doc['apiKey']}&recvWindow=100&timestamp=1645423376532"
    assert signature_payload(p) == payload   # the simulator reads it the same way
    assert p["signature"] == hmac.new(doc["secretKey"].encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("sim", [{"user_stream_ping": 30.0}], indirect=True)
def test_a_silent_line_counts_as_lost_and_the_stream_resubscribes(sim):
    rec = Recorder()
    us = stream(sim, rec, silence_s=0.4)   # the venue pings every 30 s here: 0.4 s of silence
    us.start()
    try:
        rec.wait(lambda: [type(s) for s in rec.states][:3] == [UserStreamConnected, UserStreamDisconnected,
                                                                 UserStreamConnected])
    finally:
        us.stop()
    assert rec.states[1].reason == "silent for 0.4s"
    assert us.subscribes >= 2


def test_a_refused_subscription_is_retried_reported_once_and_never_shows_the_secret(sim):
    rec = Recorder()
    us = stream(sim, rec, secret="not-the-secret")
    us.start()
    try:
        rec.wait(lambda: rec.dlq)
        deadline = time.monotonic() + 10
        while sim.stats()[V]["orders"]["userstream"]["refused"] < 3:  # retried, with a backoff
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        us.stop()
    assert rec.states == []                       # never connected: the engine keeps polling
    assert [d["reason"] for d in rec.dlq] == ["user_stream_failed"]   # once per distinct reason
    assert "-1022" in rec.dlq[0]["error"] and "not-the-secret" not in rec.dlq[0]["error"]
    assert "-1022" in us.last_error and "not-the-secret" not in repr(us)


def test_stop_ends_a_live_stream_without_reporting_a_loss(sim):
    rec = Recorder()
    us = stream(sim, rec)
    us.start()
    rec.wait(lambda: rec.states == [UserStreamConnected()])
    us.stop()
    assert rec.states == [UserStreamConnected()]
    assert not us._thread.is_alive()
