"""The demo strategy is a pure function of the records it receives."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synthetic import records
from events import EVENT, Kind, Provider, concat
from strategies.demo import CrossVenue, Demo

pytestmark = pytest.mark.timeout(10)


def merged(legs):
    rec = np.zeros(1, EVENT)
    rec["kind"] = Kind.MERGED
    m = rec["merged"]
    m["merge_id"], m["n_legs"], m["px_scale"] = 77, len(legs), 2
    for i, (p, bid, ask) in enumerate(legs):
        m["legs"][0, i]["provider"] = p
        m["legs"][0, i]["bid_px"] = bid
        m["legs"][0, i]["ask_px"] = ask
    return rec


def test_demo_counts_keeps_top_of_book_and_signals_crossed_venues():
    d = Demo()
    batch = concat([records(int(Provider.OKX), "BTC-USDT", Kind.BOOK, [1, 2], px=10_000),
                    records(int(Provider.OKX), "BTC-USDT", Kind.TRADE, [1]),
                    merged([(int(Provider.OKX), 10_050, 10_060),
                            (int(Provider.BINANCE_SPOT), 10_000, 10_040)])])
    signals = d.on_batch(batch)
    assert d.counts["book"] == 2 and d.counts["trade"] == 1 and d.counts["merged"] == 1
    assert d.top["okx"] == ("100.02", "100.03")
    assert signals == [CrossVenue(77, "binance-spot", "100.4", "okx", "100.5")]
    assert d.on_batch(merged([(int(Provider.OKX), 10_000, 10_010),
                              (int(Provider.BINANCE_SPOT), 10_000, 10_010)])) == []
