"""Transport pieces that need no network: the reconnect backoff and the REST URL check."""

from __future__ import annotations

import random

import pytest

from ingest.transport import Backoff, RestClient

pytestmark = pytest.mark.timeout(10)


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets():
    b = Backoff(0.25, 4.0, random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    ceilings = [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    b.reset()
    assert b.next_delay() <= 0.25


def test_rest_client_refuses_urls_it_cannot_use():
    with pytest.raises(ValueError):
        RestClient("ws://127.0.0.1:1")
    c = RestClient("http://127.0.0.1:9/prefix/")
    assert (c.host, c.port, c.base_path) == ("127.0.0.1", 9, "/prefix")
