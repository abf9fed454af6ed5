"""Record layouts, kinds, instruments, ids and the debug rendering."""

import numpy as np
import orjson
import pytest

import events as E

pytestmark = pytest.mark.timeout(30)


def test_header_layout_matches_the_module_drawing():
    offsets = {name: E.HEADER.fields[name][1] for name in E.HEADER.names}
    assert offsets == {"schema_version": 0, "kind": 2, "provider": 4, "flags": 6, "instrument": 8,
                       "consumer_id": 12, "seq_provider": 16, "ingest_ts_ns": 24, "event_ts_ns": 32,
                       "event_id": 40, "routing_version": 48, "trace_id": 56}
    assert E.HEADER.itemsize == 64


def test_every_payload_starts_after_the_header_and_fits_the_record():
    assert E.EVENT.itemsize == E.RECORD_BYTES == 768
    for kind, (field, dtype) in E.PAYLOADS.items():
        assert E.EVENT.fields[field][1] == 64
        assert 64 + dtype.itemsize <= E.RECORD_BYTES, kind


def test_kinds_know_if_they_are_critical_or_coalescable():
    assert {k for k in E.Kind if k.critical} == {E.Kind.EXEC_REPORT, E.Kind.CONTROL_ACK,
                                                  E.Kind.CONTROL_RESULT, E.Kind.ACCOUNT}
    assert {k for k in E.Kind if k.coalescable} == {E.Kind.BOOK, E.Kind.TICKER, E.Kind.MERGED}
    assert not any(k.critical and k.coalescable for k in E.Kind)


def test_provider_slugs_round_trip_and_unknown_is_an_error():
    for p in E.Provider:
        assert E.Provider.from_slug(p.slug) is p
    with pytest.raises(ValueError, match="unknown provider 'nyse'"):
        E.Provider.from_slug("nyse")


def test_registry_maps_symbols_ids_and_venue_symbols():
    reg = E.Registry([E.Instrument("BTC-USDT", px_scale=2, sz_scale=6)])
    btc = reg.map_venue(E.Provider.BINANCE_SPOT, "BTCUSDT", "BTC-USDT")
    reg.add(E.Instrument("BTC-USDT", px_scale=2, sz_scale=6))  # idempotent
    assert btc.id == E.instrument_id("BTC-USDT") == reg.by_symbol("BTC-USDT").id
    assert reg.by_venue(E.Provider.BINANCE_SPOT, "BTCUSDT") is btc
    assert reg.venue_symbol(E.Provider.BINANCE_SPOT, btc.id) == "BTCUSDT"
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    with pytest.raises(E.UnknownInstrument, match="'ETHUSDT' on okx"):
        reg.by_venue(E.Provider.OKX, "ETHUSDT")
    with pytest.raises(E.BadInput, match="other scales"):
        reg.add(E.Instrument("BTC-USDT", px_scale=3))
    with pytest.raises(E.BadInput, match="canonical symbol"):
        E.Instrument("btcusdt")


def test_event_ids_are_stable_and_distinguish_streams():
    a = E.event_id(E.Provider.OKX, E.Kind.BOOK, 7, 100)
    assert a == E.event_id(E.Provider.OKX, E.Kind.BOOK, 7, 100)
    others = {E.event_id(E.Provider.OKX, E.Kind.BOOK, 7, 101), E.event_id(E.Provider.OKX, E.Kind.TRADE, 7, 100),
              E.event_id(E.Provider.BINANCE_SPOT, E.Kind.BOOK, 7, 100), E.event_id(E.Provider.OKX, E.Kind.BOOK, 8, 100)}
    assert a not in others and len(others) == 4


def test_id_source_gives_unique_increasing_ids():
    src = E.IdSource(prefix=5)
    ids = [src.next() for _ in range(1000)]
    assert ids == sorted(set(ids)) and ids[0] >> 40 == 5


def test_a_book_record_renders_with_decimal_strings():
    rec = E.empty(1)[0]
    E.stamp_header(rec, E.Kind.BOOK, E.Provider.BINANCE_SPOT, 42, seq_provider=9, event_id=3)
    book = rec["book"]
    book["px_scale"], book["sz_scale"], book["n_bids"], book["n_asks"] = 2, 3, 1, 2
    book["bid_px"][0], book["bid_sz"][0] = 3012350, 1500
    book["ask_px"][:2], book["ask_sz"][:2] = [3012400, 3012500], [1, 20]
    d = orjson.loads(E.to_json(rec))
    assert d["kind"] == "BOOK" and d["provider"] == "binance-spot" and d["seq_provider"] == 9
    assert d["book"]["bids"] == [["30123.5", "1.5"]]
    assert d["book"]["asks"] == [["30124", "0.001"], ["30125", "0.02"]]


def test_an_exec_report_renders_names_and_text():
    rec = E.empty(1)[0]
    E.stamp_header(rec, E.Kind.EXEC_REPORT, E.Provider.BINANCE_SPOT, 42, consumer_id=3)
    x = rec["exec"]
    x["client_order_id"] = b"abc-1"
    x["status"], x["side"], x["order_type"], x["tif"] = E.ExecStatus.PARTIAL, E.Side.SELL, E.OrderType.LIMIT, E.TimeInForce.IOC
    x["px_scale"], x["sz_scale"], x["qty"], x["filled"], x["remaining"] = 2, 3, 1000, 400, 600
    d = E.to_dict(rec)["exec"]
    assert d["client_order_id"] == "abc-1" and d["status"] == "PARTIAL" and d["tif"] == "IOC"
    assert (d["qty"], d["filled"], d["remaining"]) == ("1", "0.4", "0.6")


def test_a_mixed_batch_is_one_array_selected_by_kind():
    batch = E.empty(4)
    batch["kind"] = [E.Kind.TRADE, E.Kind.BOOK, E.Kind.TRADE, E.Kind.TICKER]
    batch["trade"]["px"] = [1, 0, 3, 0]
    trades = batch[batch["kind"] == E.Kind.TRADE]
    assert trades["trade"]["px"].tolist() == [1, 3]
    assert np.shares_memory(batch["trade"], batch["book"])  # one union, no copies


def test_every_byte_of_a_record_survives_a_numpy_copy():
    src = E.empty(4)
    src.view(np.uint8)[:] = np.arange(4 * E.RECORD_BYTES, dtype=np.uint64).astype(np.uint8)
    picked = src[np.array([True, False, True, True])]  # a copy through a boolean mask
    assert picked.tobytes() == src[[0, 2, 3]].tobytes()
    assert np.array(src[1:3]).tobytes() == src[1:3].tobytes()


def test_concat_keeps_the_record_layout_and_every_byte():
    a, b = E.empty(2), E.empty(3)
    a["seq_provider"], b["seq_provider"] = [1, 2], [3, 4, 5]
    b["trade"]["px"] = [7, 8, 9]
    joined = E.concat([a, b])
    assert joined.dtype == E.EVENT and joined["seq_provider"].tolist() == [1, 2, 3, 4, 5]
    assert joined["trade"]["px"][2:].tolist() == [7, 8, 9]
    assert joined.view(np.uint8).tobytes() == a.view(np.uint8).tobytes() + b.view(np.uint8).tobytes()
    assert len(E.concat([])) == 0
