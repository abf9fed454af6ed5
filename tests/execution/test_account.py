"""Account state in the engine (a recording venue, a manual clock, a real journal and ring):
full snapshots replace, stream updates update, what changed is published as ACCOUNT records
in exec_seq order with the exec reports, a reconnect asks the venue again, a failed ask is
retried with backoff, and a restart takes the state back from the journal."""

from __future__ import annotations

import numpy as np
import pytest

from events import EVENT, AccountEntry, AccountSource, ExecStatus as S, HeaderFlag, Instrument, Kind, Provider
from execution.account import Accounts
from shm import RingReader
from venues.trading import (
    Balance, Position, UserStreamConnected, UserStreamDisconnected, VenueAccountFailed, VenueAccountReported)

from .fakes import report
from .rig import vc

pytestmark = pytest.mark.timeout(30)

SWAP = Instrument("BTC-USDT-SWAP", px_scale=1, sz_scale=2)
SPOT = Provider.BINANCE_SPOT


def bal(asset, free, locked=0, scale=8):
    return Balance(asset, free, locked, scale)


def full(*balances, positions=(), ts=0):
    return VenueAccountReported(tuple(balances), tuple(positions), full=True, event_ts_ns=ts, source="rest")


def update(*balances, positions=(), ts=0):
    return VenueAccountReported(tuple(balances), tuple(positions), full=False, event_ts_ns=ts)


def accounts(rig) -> np.ndarray:
    recs = rig.journal()
    return recs[recs["kind"] == Kind.ACCOUNT]


def balances_of(recs) -> list[tuple[str, int, int]]:
    a = recs["account"]
    return [(bytes(x).rstrip(b"\0").decode(), int(f), int(lk)) for x, f, lk in zip(a["asset"], a["free"], a["locked"])]


# -- the state (no engine) ------------------------------------------------------------

def test_a_full_snapshot_replaces_and_zeroes_what_it_lacks():
    acc = Accounts()
    first = acc.apply(SPOT, full(bal("BTC", 5), bal("USDT", 100)))
    assert [c.balance.asset for c in first] == ["BTC", "USDT"]
    again = acc.apply(SPOT, full(bal("USDT", 100)))
    assert [(c.balance.asset, c.balance.free, c.snapshot) for c in again] == [("BTC", 0, True)]
    assert acc.view(SPOT)["balances"] == {"USDT": bal("USDT", 100)}
    assert acc.apply(SPOT, full(bal("USDT", 100))) == []  # nothing changed: nothing to publish


def test_a_partial_update_changes_only_what_it_names():
    acc = Accounts()
    acc.apply(SPOT, full(bal("BTC", 5), bal("USDT", 100)))
    changed = acc.apply(SPOT, update(bal("USDT", 70, 30)))
    assert [(c.balance.asset, c.balance.free, c.balance.locked, c.snapshot, c.source) for c in changed] == \
        [("USDT", 70, 30, False, AccountSource.STREAM)]
    assert acc.view(SPOT)["balances"]["BTC"] == bal("BTC", 5)
    assert acc.apply(SPOT, update(bal("USDT", 70, 30))) == []  # a duplicate: no change


def test_a_snapshot_older_than_a_stream_update_leaves_that_entry_alone():
    acc = Accounts()
    acc.apply(SPOT, update(bal("USDT", 70, 30), ts=2_000))
    changed = acc.apply(SPOT, full(bal("USDT", 100), bal("BTC", 1), ts=1_000))  # answered late
    assert [c.balance.asset for c in changed] == ["BTC"]
    assert acc.view(SPOT)["balances"]["USDT"] == bal("USDT", 70, 30)
    assert acc.apply(SPOT, update(bal("USDT", 1), ts=1_500)) == []  # an older stream update, too


def test_positions_are_kept_per_instrument_and_a_closed_one_is_published_as_zero():
    acc = Accounts()
    pos = Position(SWAP, size=-25, entry_px=300_000, unrealized_pnl=-1234, pnl_scale=4, pnl_asset="USDT")
    (c,) = acc.apply(Provider.OKX, full(positions=[pos]))
    assert (c.position.symbol, c.position.size, c.position.entry_px) == ("BTC-USDT-SWAP", -25, 300_000)
    (gone,) = acc.apply(Provider.OKX, full())
    assert (gone.position.symbol, gone.position.size, gone.position.unrealized_pnl) == ("BTC-USDT-SWAP", 0, 0)
    assert acc.view(Provider.OKX)["positions"] == {}


# -- the engine -------------------------------------------------------------------------

def test_the_engine_asks_for_the_account_on_start_and_on_every_stream_reconnect(rig):
    start = rig.venue.account_queries
    assert start >= 1  # the rig's start: recover, then UserStreamConnected
    rig.engine.on_venue(UserStreamDisconnected("test"))
    rig.engine.on_venue(UserStreamConnected())
    assert rig.venue.account_queries == start + 1
    rig.engine.reconcile(poll=True)  # a poll while the stream is down lists orders only
    assert rig.venue.account_queries == start + 1


def test_changes_are_published_in_exec_seq_order_with_the_exec_reports(rig):
    reader = RingReader.attach(rig.ctx.namespace, "exec", EVENT, start="oldest")
    rig.engine.on_venue(full(bal("BTC", 0), bal("USDT", 1000_00000000)))  # BTC zero: nothing to say
    rig.limit("o-1")
    rig.engine.on_venue(report(vc("o-1"), S.ACK))
    rig.engine.on_venue(update(bal("USDT", 700_00000000, 300_00000000)))
    rig.engine.flush()
    recs = rig.journal()
    assert [Kind(k) for k in recs["kind"]] == [Kind.ACCOUNT, Kind.EXEC_REPORT, Kind.ACCOUNT]
    assert recs["exec"]["exec_seq"].tolist() == [1, 2, 3]  # one gap-free sequence for both kinds
    acct = accounts(rig)
    assert balances_of(acct) == [("USDT", 1000_00000000, 0), ("USDT", 700_00000000, 300_00000000)]
    assert [int(f) & HeaderFlag.SNAPSHOT for f in acct["flags"]] == [HeaderFlag.SNAPSHOT, 0]
    assert set(acct["account"]["entry"].tolist()) == {AccountEntry.BALANCE}
    assert set(acct["provider"].tolist()) == {SPOT} and set(acct["consumer_id"].tolist()) == {0}
    ring = np.array(reader.try_read(10))
    reader.release()
    reader.close()
    assert ring["exec"]["exec_seq"].tolist() == [1, 2, 3]


def test_a_failed_account_query_goes_to_the_dlq_and_is_asked_again_after_a_backoff(rig):
    puts = []
    rig.engine.dlq = type("Dlq", (), {"put": lambda self, reason, **kw: puts.append((reason, kw))})()
    asked = rig.venue.account_queries
    rig.engine.on_venue(VenueAccountFailed("HTTP 503"))
    assert puts == [("account_query_failed", {"venue": "binance-spot", "error": "HTTP 503"})]
    assert rig.tel["exec.account.failed"] == 1
    rig.engine.tick()
    assert rig.venue.account_queries == asked  # not before the backoff
    rig.clock.advance(0.2)
    rig.engine.tick()
    assert rig.venue.account_queries == asked + 1
    rig.engine.on_venue(full(bal("USDT", 5)))
    rig.clock.advance(60)
    rig.engine.tick()
    assert rig.venue.account_queries == asked + 1  # answered: nothing more to ask


def test_an_unanswered_account_query_is_asked_again(rig):
    asked = rig.venue.account_queries
    rig.clock.advance(60)
    rig.engine.tick()
    assert rig.venue.account_queries == asked + 1


def test_an_adapter_without_query_account_has_no_account_state(rig):
    rig.venue.query_account = None  # an adapter that has no account endpoint
    rig.engine.on_venue(UserStreamConnected())
    rig.clock.advance(60)
    assert rig.engine.tick() == 0 and rig.engine.flush() == 0


def test_after_a_restart_what_went_to_zero_meanwhile_is_published_as_zero(rig):
    rig.engine.on_venue(full(bal("BTC", 5), bal("USDT", 100)))
    rig.engine.flush()
    rig.restart()
    rig.engine.on_venue(full(bal("USDT", 100)))  # BTC sold while execution was down; omitted as zero
    rig.engine.flush()
    assert balances_of(accounts(rig)) == [("BTC", 5, 0), ("USDT", 100, 0), ("BTC", 0, 0)]
    assert rig.engine.accounts.view(SPOT)["balances"] == {"USDT": bal("USDT", 100)}


def test_a_venue_attached_late_is_asked_for_its_account_and_keeps_its_own_state(run_ctx):
    from execution.engine import Engine
    from execution.publisher import ExecPublisher
    from execution.store import Store

    from .fakes import Clock, Counters, RecordingVenue, registry
    from .test_multi_venue import OkxVenue, okx_registry

    store = Store(run_ctx.path("exec", "orders.sqlite"), {SPOT: registry()}, synchronous="NORMAL")
    pub = ExecPublisher(run_ctx, capacity=64, sync=False)
    spot, okx = RecordingVenue(), OkxVenue()
    try:
        e = Engine(store, pub, {SPOT: spot, Provider.OKX: None}, clock=Clock(), telemetry=Counters())
        e.recover()
        e.reconcile()
        assert (spot.account_queries, okx.account_queries) == (1, 0)
        e.attach(Provider.OKX, okx, okx_registry())
        assert (spot.account_queries, okx.account_queries) == (1, 1)
        pos = Position(SWAP, size=3, entry_px=10, unrealized_pnl=1, pnl_scale=2, pnl_asset="USDT")
        e.on_venue(full(bal("USDT", 7), positions=[pos]), Provider.OKX)
        e.on_venue(full(bal("USDT", 9)), SPOT)
        e.flush()
        recs = pub.journal.read(1, 10)
        assert [(Provider(int(r["provider"])), int(r["account"]["entry"])) for r in recs] == [
            (Provider.OKX, AccountEntry.BALANCE), (Provider.OKX, AccountEntry.POSITION), (SPOT, AccountEntry.BALANCE)]
        assert int(recs[1]["instrument"]) == SWAP.id
        assert bytes(recs[1]["account"]["symbol"]).rstrip(b"\0") == b"BTC-USDT-SWAP"
        assert e.accounts.view(Provider.OKX)["balances"]["USDT"].free == 7
        assert e.accounts.view(SPOT)["balances"]["USDT"].free == 9
    finally:
        pub.close()
        store.close()


def test_a_value_no_record_can_hold_is_left_out_with_a_dlq_record_and_the_rest_applies(rig):
    puts = []
    rig.engine.dlq = type("Dlq", (), {"put": lambda self, reason, **kw: puts.append(reason)})()
    rig.engine.on_venue(update(bal("BTC", 10**20), bal("USDT", 5)))  # 1e12 BTC at 8 decimals: beyond int64
    assert rig.engine.flush() == 1
    assert balances_of(accounts(rig)) == [("USDT", 5, 0)]
    assert puts == ["account_value_out_of_range"] and rig.tel["exec.account.bad"] == 1
