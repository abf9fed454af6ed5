"""strategies.tick2trade's pure part: which records it answers with an order."""

from __future__ import annotations

import numpy as np

from events import EVENT, Kind, Provider, instrument_id
from strategies.tick2trade import Tick2Trade, client_order_id

BTC = instrument_id("BTC-USDT")
ETH = instrument_id("ETH-USDT")


def batch(rows):
    b = np.zeros(len(rows), EVENT)
    for i, (kind, provider, inst, n_bids) in enumerate(rows):
        b[i]["kind"], b[i]["provider"], b[i]["instrument"] = kind, provider, inst
        b[i]["book"]["n_bids"] = n_bids
        b[i]["event_id"] = 100 + i
    return b


def test_every_nth_book_of_its_instrument_and_venue_across_batches_is_answered():
    core = Tick2Trade(int(Provider.BINANCE_SPOT), BTC, every=2)
    bs, okx = Provider.BINANCE_SPOT, Provider.OKX
    first = batch([(Kind.BOOK, bs, BTC, 1), (Kind.TRADE, bs, BTC, 0), (Kind.BOOK, okx, BTC, 1),
                   (Kind.BOOK, bs, ETH, 1), (Kind.BOOK, bs, BTC, 1), (Kind.BOOK, bs, BTC, 1)])
    assert core.on_batch(first) == [4]          # the 2nd book of binance-spot BTC-USDT
    second = batch([(Kind.BOOK, bs, BTC, 1), (Kind.TICKER, bs, BTC, 0)])
    assert core.on_batch(second) == [0]         # the 4th, in the next batch
    assert core.books == 4


def test_a_book_without_bids_is_counted_but_not_answered():
    core = Tick2Trade(int(Provider.BINANCE_SPOT), BTC, every=1)
    b = batch([(Kind.BOOK, Provider.BINANCE_SPOT, BTC, 0), (Kind.BOOK, Provider.BINANCE_SPOT, BTC, 3)])
    assert core.on_batch(b) == [1] and core.books == 2


def test_the_client_order_id_names_the_triggering_record():
    assert client_order_id(0xABC) == "t2t-0000000000000abc"
    assert len(client_order_id(2**64 - 1)) <= 36
