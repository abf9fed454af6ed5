"""Routing, backpressure and fair share through the core, on a fake clock."""

from __future__ import annotations

import pytest

from channels.messages import reply
from dispatch.protocol import ack_record, result_record
from tests.synthetic import interleave, records
from events import Kind, Provider, instrument_id

from .conftest import seqs_of

pytestmark = pytest.mark.timeout(30)
OKX, BIN = int(Provider.OKX), int(Provider.BINANCE_SPOT)
BTC, ETH = "BTC-USDT", "ETH-USDT"
MS = 1_000_000


def test_routing_version_changes_only_when_a_subscription_changes(rig):
    r = rig()
    a = r.consumer("a")
    v0 = r.core.version
    assert r.core.subscribe(a, instrument_id(BTC))
    assert r.core.version == v0 + 1
    assert not r.core.subscribe(a, instrument_id(BTC))        # idempotent
    assert r.core.version == v0 + 1
    assert not r.core.unsubscribe(a, instrument_id(ETH))      # nothing to remove
    assert r.core.version == v0 + 1
    r.step(records(OKX, BTC, Kind.TRADE, [1, 2]))
    assert set(r.read("a")["routing_version"].tolist()) == {v0 + 1}


def test_overlapping_subscriptions_of_several_consumers_do_not_interfere(rig):
    r = rig()
    a, b, c = r.consumer("a"), r.consumer("b"), r.consumer("c")
    btc = instrument_id(BTC)
    r.core.subscribe(a, btc)
    r.core.subscribe(b, btc, providers=(OKX,), kinds=(int(Kind.TRADE),))
    r.core.subscribe(c, btc, kinds=(int(Kind.BOOK),))
    batch = interleave(records(OKX, BTC, Kind.TRADE, [1, 2]), records(BIN, BTC, Kind.TRADE, [1]),
                       records(OKX, BTC, Kind.BOOK, [1]), records(OKX, ETH, Kind.BOOK, [1]))
    r.step(batch)
    got = {n: r.read(n) for n in "abc"}
    assert len(got["a"]) == 4
    assert seqs_of(got["b"]) == [1, 2] and set(got["b"]["provider"]) == {OKX}
    assert seqs_of(got["c"]) == [1] and set(got["c"]["kind"]) == {Kind.BOOK}
    r.core.unsubscribe(b, btc)
    r.step(records(OKX, BTC, Kind.TRADE, [3]))
    assert seqs_of(r.read("a")) == [3] and len(r.read("b")) == 0
    assert r.core.metrics()["counters"]["fanout.delivered{consumer=a}"] == 5
    assert {int(x) for x in got["a"]["consumer_id"]} == {a.consumer_id}


def test_a_full_ring_coalesces_books_drops_trades_and_queues_critical_records(rig):
    r = rig()
    a = r.consumer("a", capacity=8)
    r.core.subscribe(a, instrument_id(BTC))
    r.step(records(OKX, BTC, Kind.BOOK, range(1, 9)))          # fills the ring
    r.core.deliver_critical(a, ack_record(41, "subscribe"))
    r.step(interleave(records(OKX, BTC, Kind.BOOK, range(9, 20)),
                      records(OKX, BTC, Kind.TICKER, range(1, 5)),
                      records(OKX, BTC, Kind.TRADE, range(1, 6))))
    r.core.deliver_critical(a, result_record(reply(41, "subscribe", routing_version=r.core.version)))
    outlet = r.core.outlets[a.slot]
    assert outlet.trades_dropped == 5
    assert outlet.coalesced == 10 + 3                            # 11 books, 4 tickers -> 1 + 1
    first = r.read("a")
    assert seqs_of(first, Kind.BOOK) == list(range(1, 9))       # nothing was overwritten
    r.step(advance_ns=MS)                                        # drain: critical first
    second = r.read("a")
    assert second["kind"].tolist()[:2] == [Kind.CONTROL_ACK, Kind.CONTROL_RESULT]
    assert seqs_of(second, Kind.BOOK) == [19] and seqs_of(second, Kind.TICKER) == [4]
    r.step(records(OKX, BTC, Kind.TRADE, [6]), advance_ns=200 * MS)  # backlog gone: flows again
    assert seqs_of(r.read("a"), Kind.TRADE) == [6]
    drops = [d for d in r.dlq.read_all() if d["reason"] == "fanout.trade_dropped"]
    assert len(drops) == 1 and len(drops[0]["event_ids"]) == 5
    assert drops[0]["trace_id"] and drops[0]["decision_id"]


def test_critical_records_are_never_dropped_during_routing_flips(rig):
    r = rig()
    a = r.consumer("a", capacity=16)
    btc = instrument_id(BTC)
    sent, got = [], []

    def collect():
        recs = r.read("a")
        for x in recs[(recs["kind"] == Kind.CONTROL_ACK) | (recs["kind"] == Kind.CONTROL_RESULT)]:
            got.append(("ack", int(x["ack"]["request_id"])) if x["kind"] == Kind.CONTROL_ACK
                       else ("result", int(x["result"]["request_id"])))

    seq = 1
    for i in range(200):  # a subscribe/unsubscribe storm while market data floods the ring
        flip = r.core.subscribe if i % 2 == 0 else r.core.unsubscribe
        flip(a, btc)
        r.core.deliver_critical(a, ack_record(i, "subscribe"))
        r.core.deliver_critical(a, result_record(reply(i, "subscribe", routing_version=r.core.version)))
        sent += [("ack", i), ("result", i)]
        r.step(records(OKX, BTC, Kind.TRADE, range(seq, seq + 7)), advance_ns=MS)
        seq += 7
        if i % 5 == 0:
            collect()  # a reader that keeps up only now and then
    while r.core.outlets[a.slot].backlogged:
        collect()
        r.step(advance_ns=MS)
    collect()
    assert got == sent
    assert r.core.outlets[a.slot].trades_dropped > 0


def test_fair_share_gives_three_unequal_consumers_at_least_a_quarter_of_their_demand(rig):
    rate = 6000.0  # records/s dispatch may fan out; demand below is 1 + 4 + 10 = 15k/s
    r = rig(fanout_rate=rate)
    appetite = {"small": ["S0-USDT"], "medium": [f"M{i}-USDT" for i in range(4)],
                "large": [f"L{i}-USDT" for i in range(10)]}
    subs = {n: r.consumer(n, capacity=1 << 14) for n in appetite}
    for n, syms in appetite.items():
        for s in syms:
            r.core.subscribe(subs[n], instrument_id(s))
    seqs = {s: 1 for syms in appetite.values() for s in syms}
    got = {n: 0 for n in appetite}
    offered = {n: 0 for n in appetite}
    for step in range(1000):  # 10 s of 10 ms steps; each symbol ticks 1000/s
        parts = []
        for s in seqs:
            parts.append(records(OKX, s, Kind.TRADE, range(seqs[s], seqs[s] + 10)))
            seqs[s] += 10
        for n, syms in appetite.items():
            offered[n] += 10 * len(syms)
        r.step(interleave(*parts), advance_ns=10 * MS)
        for n in appetite:
            got[n] += len(r.read(n))
    shares = {n: got[n] / offered[n] for n in appetite}
    assert all(s >= 0.25 for s in shares.values()), shares
    assert sum(got.values()) <= rate * 10 * 1.05                # the budget holds
    assert max(shares.values()) - min(shares.values()) < 0.1, shares  # same fraction for all
    m = r.core.metrics()["counters"]
    assert m["fanout.throttled_ns{consumer=large}"] > 0


def test_fair_share_does_not_throttle_when_the_budget_covers_demand(rig):
    r = rig(fanout_rate=100_000.0)
    subs = [r.consumer(n) for n in "abc"]
    for s in subs:
        r.core.subscribe(s, instrument_id(BTC))
    seq = 1
    for _ in range(50):
        r.step(records(OKX, BTC, Kind.TRADE, range(seq, seq + 20)), advance_ns=10 * MS)
        seq += 20
        for n in "abc":
            r.read(n)
    assert all(r.core.outlets[s.slot].trades_dropped < 20 for s in subs)  # the first refill only
