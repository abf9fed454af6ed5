"""Plain subscriptions in the routing table: unsubscribing part of a wildcard narrows it."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.routing import RoutingTable
from dispatch.streams import Streams, stream_key
from events import Kind, Provider, instrument_id

OKX, BIN, KRAKEN = int(Provider.OKX), int(Provider.BINANCE_SPOT), int(Provider.KRAKEN)
BTC, ETH = instrument_id("BTC-USDT"), instrument_id("ETH-USDT")
BOOK, TRADE, TICKER = int(Kind.BOOK), int(Kind.TRADE), int(Kind.TICKER)


@pytest.fixture
def table():
    streams = Streams()
    rt = RoutingTable(streams)
    sub = rt.add_consumer("a")
    sub.symbols.update({BTC: "BTC-USDT", ETH: "ETH-USDT"})
    return rt, streams, sub


def receives(rt: RoutingTable, streams: Streams, sub, provider: int, kind: int, inst: int = BTC) -> bool:
    s = streams.get(stream_key(provider, inst, kind))
    return bool(rt.route[s] & np.uint64(sub.bit))


def listed(rt: RoutingTable, sub) -> set:
    return {(e["symbol"], e["provider"], e["kind"]) for e in rt.listing(sub)["subscriptions"]}


def test_unsubscribing_a_provider_from_a_wildcard_narrows_it_to_every_other_provider(table):
    rt, streams, sub = table
    assert rt.subscribe(sub, BTC, None, None)
    assert receives(rt, streams, sub, OKX, BOOK)
    v = rt.version
    assert rt.unsubscribe(sub, BTC, (OKX,), None)
    assert rt.version == v + 1
    assert not receives(rt, streams, sub, OKX, BOOK) and not receives(rt, streams, sub, OKX, TRADE)
    assert receives(rt, streams, sub, BIN, TRADE)
    assert receives(rt, streams, sub, KRAKEN, TICKER)  # a provider that starts publishing later
    assert listed(rt, sub) == {("BTC-USDT", p.slug, "*") for p in Provider if p != Provider.OKX}
    assert not rt.unsubscribe(sub, BTC, (OKX,), None)  # again: nothing left to stop
    assert rt.version == v + 1


def test_unsubscribing_a_kind_from_a_wildcard_keeps_the_other_kinds(table):
    rt, streams, sub = table
    rt.subscribe(sub, BTC, None, None)
    assert rt.unsubscribe(sub, BTC, None, (TRADE,))
    assert listed(rt, sub) == {("BTC-USDT", "*", "book"), ("BTC-USDT", "*", "ticker")}
    assert not receives(rt, streams, sub, OKX, TRADE) and receives(rt, streams, sub, OKX, BOOK)
    assert not rt.unsubscribe(sub, BTC, None, (TRADE,))


def test_unsubscribing_one_provider_and_kind_stops_only_that_pair(table):
    rt, streams, sub = table
    rt.subscribe(sub, BTC, None, None)
    rt.subscribe(sub, ETH, None, None)
    assert rt.unsubscribe(sub, BTC, (OKX,), (TRADE,))
    got = {(p, k): receives(rt, streams, sub, p, k) for p in (OKX, BIN) for k in (BOOK, TRADE, TICKER)}
    assert got == {(OKX, BOOK): True, (OKX, TRADE): False, (OKX, TICKER): True,
                   (BIN, BOOK): True, (BIN, TRADE): True, (BIN, TICKER): True}
    assert receives(rt, streams, sub, OKX, TRADE, ETH)  # another instrument: untouched
    assert not rt.unsubscribe(sub, BTC, (OKX,), (TRADE,))
    assert rt.unsubscribe(sub, BTC, (OKX,), None)       # the rest of okx
    assert not any(receives(rt, streams, sub, OKX, k) for k in (BOOK, TRADE, TICKER))
    assert receives(rt, streams, sub, BIN, TRADE)


def test_an_explicit_provider_with_every_kind_narrows_by_kind(table):
    rt, streams, sub = table
    rt.subscribe(sub, BTC, (OKX,), None)
    assert rt.unsubscribe(sub, BTC, None, (BOOK, TICKER))
    assert listed(rt, sub) == {("BTC-USDT", "okx", "trade")}
    assert not rt.unsubscribe(sub, BTC, (BIN,), None)  # never subscribed: nothing changes


def test_unsubscribing_everything_of_an_instrument_still_removes_every_entry(table):
    rt, streams, sub = table
    rt.subscribe(sub, BTC, None, None)
    rt.subscribe(sub, BTC, (OKX,), (BOOK,))
    rt.unsubscribe(sub, BTC, (BIN,), None)
    assert rt.unsubscribe(sub, BTC, None, None)
    assert listed(rt, sub) == set() and not receives(rt, streams, sub, KRAKEN, BOOK)
    assert not rt.unsubscribe(sub, BTC, None, None)


def test_narrowing_then_subscribing_the_wildcard_again_receives_everything(table):
    rt, streams, sub = table
    rt.subscribe(sub, BTC, None, None)
    rt.unsubscribe(sub, BTC, (OKX,), None)
    assert rt.subscribe(sub, BTC, None, None)
    assert receives(rt, streams, sub, OKX, TRADE)


def test_subscribing_what_a_wildcard_covers_changes_nothing(table):
    rt, streams, sub = table
    assert rt.subscribe(sub, BTC, None, None)
    v = rt.version
    assert not rt.subscribe(sub, BTC, (OKX,), (BOOK,))
    assert not rt.subscribe(sub, BTC, (OKX,), None)
    assert rt.version == v and listed(rt, sub) == {("BTC-USDT", "*", "*")}


def test_a_wider_subscription_replaces_the_narrower_ones_it_covers(table):
    rt, streams, sub = table
    assert rt.subscribe(sub, BTC, (OKX,), (BOOK,))
    assert rt.subscribe(sub, BTC, (BIN,), (TRADE,))
    assert rt.subscribe(sub, ETH, (OKX,), (BOOK,))
    assert rt.subscribe(sub, BTC, (OKX,), None)          # covers okx books, not binance trades
    assert len(sub.plain) == 3
    assert rt.subscribe(sub, BTC, None, None)
    assert sub.plain == {(BTC, 0, 0), (ETH, OKX, BOOK)}
    assert receives(rt, streams, sub, OKX, BOOK) and receives(rt, streams, sub, BIN, TRADE)
