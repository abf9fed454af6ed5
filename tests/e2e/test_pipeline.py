"""End to end, through the real processes `meltica.pipeline.Pipeline` starts: the venue
simulator, ingest per venue, dispatch, execution, the demo strategy; this test process is
one more consumer. One pipeline serves every test of the module (conftest.py)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bench._chaos_harness import SYMBOLS, VENUES, sub_unsub_cycle
from consumer import Consumer
from consumer.orders import OrderClient
from events import EXEC_REPORT, SCHEMA_VERSION, concat, ExecStatus, Kind, Provider, instrument_id, to_decimal
from events.records import RECORD_BYTES
from channels.journal import JournalReader
from simulator.instruments import default_instruments

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(90)]

PROVIDERS = {int(Provider.from_slug(v)): v for v in VENUES}
VENUE_INST = {instrument_id(i.canonical): i for i in default_instruments(len(SYMBOLS))}
MD = (Kind.BOOK, Kind.TRADE, Kind.TICKER)


def read_until(run, c, cond, timeout_s: float, what: str, take=None):
    """Read `c` (handing each batch to `take`) until `cond()`; the pipeline stays supervised."""
    def step():
        batch = c.events(4096, timeout_s=0.05)
        if take is not None and len(batch):
            take(batch)
        return cond()
    return run.wait_until(step, timeout_s, what, step_s=0)


def exact_at(mantissa: int, scale: int, decimals: int) -> bool:
    """`mantissa` at `scale` carries no more decimals than the venue's `decimals`."""
    return scale >= decimals and mantissa % 10 ** (scale - decimals) == 0


def check_md(rec, consumer_id: int) -> list[str]:
    """What is wrong with one market-data record (empty: nothing)."""
    kind, inst = Kind(int(rec["kind"])), VENUE_INST.get(int(rec["instrument"]))
    where = f"{PROVIDERS.get(int(rec['provider']))} {kind.name} {inst.canonical if inst else rec['instrument']}"
    bad = []
    if int(rec["provider"]) not in PROVIDERS or inst is None:
        return [f"{where}: unknown provider or instrument"]
    if int(rec["schema_version"]) != SCHEMA_VERSION or int(rec["consumer_id"]) != consumer_id \
            or rec["ingest_ts_ns"] <= 0 or rec["event_id"] == 0 or rec["routing_version"] == 0:
        bad.append(f"{where}: header {rec[['schema_version', 'consumer_id', 'ingest_ts_ns', 'event_id', 'routing_version']]}")
    lo, hi = inst.start_price // 2, inst.start_price * 2  # mantissas at the venue's decimals
    if kind is Kind.BOOK:
        b = rec["book"]
        ps, ss, nb, na = int(b["px_scale"]), int(b["sz_scale"]), int(b["n_bids"]), int(b["n_asks"])
        bids, asks = b["bid_px"][:nb], b["ask_px"][:na]
        if not (0 < nb <= b["depth"] and 0 < na <= b["depth"]):
            bad.append(f"{where}: levels {nb}/{na}")
        elif not (bids[0] < asks[0] and (np.diff(bids) < 0).all() and (np.diff(asks) > 0).all()):
            bad.append(f"{where}: book not sorted or crossed: bid {bids[0]} ask {asks[0]}")
        px, sz = np.concatenate([bids, asks]), np.concatenate([b["bid_sz"][:nb], b["ask_sz"][:na]])
    elif kind is Kind.TRADE:
        t = rec["trade"]
        ps, ss = int(t["px_scale"]), int(t["sz_scale"])
        px, sz = np.array([t["px"]]), np.array([t["sz"]])
        if int(t["side"]) not in (1, 2):
            bad.append(f"{where}: side {t['side']}")
    else:
        t = rec["ticker"]
        ps, ss = int(t["px_scale"]), int(t["sz_scale"])
        px, sz = np.array([t["bid_px"], t["ask_px"]]), np.array([t["bid_sz"], t["ask_sz"]])
        if not t["bid_px"] < t["ask_px"]:
            bad.append(f"{where}: ticker crossed: bid {t['bid_px']} ask {t['ask_px']}")
    if ps < inst.price_decimals or ss < inst.qty_decimals:
        bad.append(f"{where}: scales {ps}/{ss} below the venue's decimals")
        return bad
    if not all(exact_at(int(p), ps, inst.price_decimals) for p in px) or not (sz > 0).all() \
            or not all(exact_at(int(s), ss, inst.qty_decimals) for s in sz):
        bad.append(f"{where}: prices {px[:4]} or sizes {sz[:4]} not exact venue decimals at scales {ps}/{ss}")
    venue_px = px // 10 ** (ps - inst.price_decimals)
    if not ((lo < venue_px) & (venue_px < hi)).all():
        bad.append(f"{where}: prices {[to_decimal(int(p), ps) for p in px[:2]]} far from the market")
    return bad


def test_every_kind_of_every_symbol_flows_from_each_venue_to_a_consumer(pipeline):
    want = {(p, instrument_id(s), int(k)) for p in PROVIDERS for s in SYMBOLS for k in MD}
    seen: dict[tuple, dict] = {}
    problems: list[str] = []
    with Consumer("e2e-flow", pipeline.ctx) as c:
        for s in SYMBOLS:
            assert c.subscribe(s, providers=list(VENUES)).ok

        def take(batch):
            for rec in batch[batch["provider"] != 0]:
                key = (int(rec["provider"]), int(rec["instrument"]), int(rec["kind"]))
                problems.extend(check_md(rec, c.consumer_id))
                payload = rec[{Kind.BOOK: "book", Kind.TRADE: "trade", Kind.TICKER: "ticker"}[Kind(key[2])]]
                seen.setdefault(key, {"px_scale": int(payload["px_scale"]), "sz_scale": int(payload["sz_scale"])})

        read_until(pipeline, c, lambda: want <= set(seen), 30,
                   f"every (venue, symbol, kind); missing {want - set(seen)}", take)
    assert problems == []
    assert set(seen) == want  # nothing else: no other symbol, no merged windows
    for p in PROVIDERS:  # one scale per instrument and venue, whatever the kind
        for s in SYMBOLS:
            scales = {(seen[(p, instrument_id(s), int(k))]["px_scale"], seen[(p, instrument_id(s), int(k))]["sz_scale"])
                      for k in MD}
            assert len(scales) == 1, (PROVIDERS[p], s, scales)


def test_a_merged_subscription_delivers_windows_with_legs_from_both_venues(pipeline):
    btc = instrument_id("BTC-USDT")
    merged: list = []
    with Consumer("e2e-merged", pipeline.ctx) as c:
        assert c.merged_subscribe("BTC-USDT", list(VENUES)).ok

        def take(batch):
            md = batch[batch["provider"] != 0]
            assert (md["kind"] == Kind.MERGED).all(), "a merged subscription receives merged windows only"
            merged.extend(r.copy() for r in md)

        read_until(pipeline, c, lambda: len(merged) >= 2, 30, "two merged windows of BTC-USDT", take)
    for rec in merged:
        m = rec["merged"]
        legs = m["legs"][: int(m["n_legs"])]
        assert int(rec["instrument"]) == btc
        assert int(m["n_legs"]) == 2 and sorted(legs["provider"].tolist()) == sorted(PROVIDERS)
        assert m["event_count"] >= 2 and m["window_close_ns"] >= m["window_open_ns"]
        for leg in legs:
            assert 0 < leg["bid_px"] < leg["ask_px"], leg
    assert len({int(r["merged"]["merge_id"]) for r in merged}) == len(merged)


def test_unsubscribe_stops_a_symbol_at_its_routing_version_and_subscribe_brings_it_back(pipeline):
    """Raw view (no SDK filter): after the unsubscribe result, nothing of the symbol
    stamped with its routing_version or later; after the subscribe, it comes again."""
    sol = instrument_id("SOL-USDT")
    with Consumer("e2e-sub", pipeline.ctx, filter_stale=False) as c:
        for s in ("SOL-USDT", "BTC-USDT"):
            assert c.subscribe(s, providers=list(VENUES)).ok
        got = []
        read_until(pipeline, c, lambda: bool(got), 30, "SOL-USDT data",
                   lambda b: got.extend(b["instrument"][b["instrument"] == sol].tolist()))
        for _ in range(2):
            cycle = sub_unsub_cycle(c, "SOL-USDT", "BTC-USDT", pipeline.poll)
            assert cycle["leaked"] == 0, cycle
            assert cycle["sub_rv"] > cycle["unsub_rv"] and cycle["sub_effect_ns"] > 0


def test_after_an_unsubscribe_result_the_sdk_hands_out_nothing_of_that_symbol(pipeline):
    """With the SDK's filter (the default), not even what was in the ring before."""
    sol, btc = instrument_id("SOL-USDT"), instrument_id("BTC-USDT")
    with Consumer("e2e-unsub", pipeline.ctx) as c:
        for s in ("SOL-USDT", "BTC-USDT"):
            assert c.subscribe(s, providers=list(VENUES)).ok
        seen = {sol: 0, btc: 0}

        def take(batch):
            for i in seen:
                seen[i] += int(np.count_nonzero((batch["instrument"] == i) & (batch["provider"] != 0)))

        read_until(pipeline, c, lambda: seen[sol] > 0, 30, "SOL-USDT data", take)
        res = c.unsubscribe("SOL-USDT")
        assert res.ok and res["changed"]
        seen = {sol: 0, btc: 0}
        read_until(pipeline, c, lambda: seen[btc] >= 300, 30, "300 BTC-USDT records after the unsubscribe", take)
        assert seen[sol] == 0
        assert c.subscribe("SOL-USDT", providers=list(VENUES)).ok
        read_until(pipeline, c, lambda: seen[sol] > 0, 30, "SOL-USDT data after subscribing again", take)


def best_of_book(pipeline, c) -> tuple[str, str]:
    """binance-spot's best bid and ask of BTC-USDT, from the market data of consumer `c`."""
    top = {}

    def take(batch):
        books = batch[(batch["kind"] == Kind.BOOK) & (batch["provider"] == Provider.BINANCE_SPOT)]
        if len(books):
            b = books[-1]["book"]
            top["px"] = (to_decimal(int(b["bid_px"][0]), int(b["px_scale"])),
                         to_decimal(int(b["ask_px"][0]), int(b["px_scale"])))

    read_until(pipeline, c, lambda: "px" in top, 30, "a BTC-USDT book of binance-spot", take)
    return top["px"]


def names(reports) -> list[str]:
    return [ExecStatus(int(r["exec"]["status"])).name for r in reports]


def test_orders_walk_their_lifecycles_through_execution_and_the_venue(pipeline):
    with Consumer("e2e-orders", pipeline.ctx) as c, OrderClient(c, run=pipeline.ctx) as oc:
        assert c.subscribe("BTC-USDT", providers=["binance-spot"], kinds=["book"]).ok
        assert c.set_trading_mode(True).ok and c.trading_enabled
        oc.hello()
        bid, ask = best_of_book(pipeline, c)
        far_below = str((Decimal(bid) / 2).quantize(Decimal("0.01")))           # rests; never fills
        through = str((Decimal(ask) * Decimal("1.05")).quantize(Decimal("0.01")))  # crosses the book

        assert oc.submit_limit("e2e-ioc", "BTC-USDT", "buy", "0.001", through, tif="IOC")["status"] == "accepted"
        ioc = oc.wait_for("e2e-ioc", [ExecStatus.FILLED, ExecStatus.EXPIRED, ExecStatus.REJECTED], 30)
        # allowed: FILLED, maybe after an ACK and partial fills
        assert names(ioc)[-1] == "FILLED" and set(names(ioc)) <= {"ACK", "PARTIAL", "FILLED"}, names(ioc)
        assert int(ioc[-1]["exec"]["filled"]) == int(ioc[-1]["exec"]["qty"]) == sum(int(r["exec"]["last_qty"]) for r in ioc)

        assert oc.submit_limit("e2e-gtc", "BTC-USDT", "buy", "0.001", far_below)["status"] == "accepted"
        gtc = oc.wait_for("e2e-gtc", [ExecStatus.ACK], 30)
        assert names(gtc) == ["ACK"]
        assert oc.query("e2e-gtc")["order"]["status"] == "ACK"
        assert oc.cancel("e2e-gtc")["status"] == "accepted"
        gtc += oc.wait_for("e2e-gtc", [ExecStatus.CANCELLED], 30)
        assert names(gtc) == ["ACK", "CANCELLED"]
        assert oc.cancel("e2e-gtc")["code"] == "order_closed"  # a second cancel changes nothing
        assert oc.submit_limit("e2e-gtc", "BTC-USDT", "buy", "0.001", far_below)["status"] == "duplicate"

        assert oc.submit_limit("e2e-fok", "BTC-USDT", "buy", "0.001", far_below, tif="FOK")["status"] == "accepted"
        fok = oc.wait_for("e2e-fok", [ExecStatus.EXPIRED, ExecStatus.FILLED, ExecStatus.REJECTED], 30)
        assert names(fok)[-1] == "EXPIRED" and set(names(fok)) <= {"ACK", "EXPIRED"}, names(fok)

        bad = oc.submit_limit("e2e-bad", "BTC-USDT", "buy", "0.0000001", far_below)  # finer than the lot
        assert bad["status"] == "rejected" and "qty" in bad["reason"], bad
        assert oc.submit_market("e2e-tiny", "BTC-USDT", "buy", "0.00001")["status"] == "accepted"  # 0.65 USDT
        tiny = oc.wait_for("e2e-tiny", [ExecStatus.REJECTED, ExecStatus.FILLED], 30)
        assert names(tiny) == ["REJECTED"], names(tiny)
        assert b"NOTIONAL" in bytes(tiny[-1]["exec"]["reason"]), tiny[-1]["exec"]["reason"]

        mine = ioc + gtc + fok + tiny
        seqs = [int(r["exec"]["exec_seq"]) for r in mine]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(int(r["consumer_id"]) == oc.consumer_id and r["kind"] == Kind.EXEC_REPORT for r in mine)


class Watcher:
    name, trading_enabled = "e2e-watch", False


def test_the_exec_channel_hands_out_every_report_once_with_gap_free_exec_seq(pipeline):
    journal = JournalReader(pipeline.ctx.path("exec", "exec.journal"))
    try:
        last = journal.last_seq()
        assert last > 0, "orders were placed (the demo strategy and the test above)"
        batches: list = []
        with OrderClient(Watcher(), run=pipeline.ctx, monitor_all=True, resume_from=0) as oc:
            pipeline.wait_until(lambda: batches.append(oc.poll_reports(512, timeout_s=0.05))
                                or sum(map(len, batches)) >= last, 30, f"exec reports 1..{last}", step_s=0)
        got = concat(batches)
        assert [int(s) for s in got["exec"]["exec_seq"][:last]] == list(range(1, last + 1))
        journaled = journal.read(1, last)
        covered = 64 + EXEC_REPORT.itemsize
        assert (got[:last].view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]
                == journaled.view(np.uint8).reshape(-1, RECORD_BYTES)[:, :covered]).all()
        coids = {bytes(c).rstrip(b"\0") for c in got["exec"]["client_order_id"]}
        assert {b"e2e-ioc", b"e2e-gtc", b"e2e-fok", b"e2e-tiny"} <= coids
    finally:
        journal.close()


def test_stopping_ends_every_program_and_leaves_no_segment(pipeline):
    live = set(pipeline.ctx.namespace.names())
    assert {"md.binance-spot", "md.okx", "exec", "consumer.demo.md", "consumer.monitor.md"} <= live
    assert not [n for n in live if n.startswith("consumer.e2e-")], "closed consumers' rings are released"
    pipeline.stop()
    assert pipeline.exit_codes and all(code == 0 for code in pipeline.exit_codes.values()), pipeline.exit_codes
    assert pipeline.left_by_programs == []
    assert pipeline.left_after_stop == []
