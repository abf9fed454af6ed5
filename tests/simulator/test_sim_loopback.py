"""The simulator listens on loopback by default, and its /_sim/ admin routes answer
loopback clients only, also when it is told to listen on every address."""

from __future__ import annotations

import socket

import pytest

from .venue_testkit import get, http

pytestmark = pytest.mark.timeout(30)


def this_hosts_address() -> str:
    """A non-loopback address of this host (no packet is sent), or a skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))  # TEST-NET-2: picks the outgoing interface only
        except OSError:
            pytest.skip("this host has no non-loopback IPv4 address")
        addr = s.getsockname()[0]
    if addr.startswith("127."):
        pytest.skip("this host has no non-loopback IPv4 address")
    return addr


def test_the_simulator_listens_on_loopback_by_default(sim):
    for venue, ep in sim.endpoints.items():
        assert ep["rest"].startswith("http://127.0.0.1:") and ep["ws"].startswith("ws://127.0.0.1:"), venue
    assert {addr[0] for runner in sim._runners for addr in runner.addresses} == {"127.0.0.1"}


def test_sim_routes_refuse_a_client_from_another_address_while_the_venue_api_answers_it(make_sim):
    addr = this_hosts_address()
    sim = make_sim(host="0.0.0.0")
    port = sim.endpoints["binance-spot"]["rest"].rsplit(":", 1)[1]
    outside, inside = f"http://{addr}:{port}", f"http://127.0.0.1:{port}"
    status, body = get(f"{outside}/_sim/stats")
    assert status == 403 and body["ok"] is False and "loopback clients only" in body["error"]
    assert http("POST", f"{outside}/_sim/fault", b'{"fault": "disconnect"}')[0] == 403
    assert get(f"{outside}/_sim/orders")[0] == 403
    assert get(f"{outside}/api/v3/ping")[0] == 200  # the venue's own API is for any client
    assert get(f"{inside}/_sim/stats")[0] == 200
