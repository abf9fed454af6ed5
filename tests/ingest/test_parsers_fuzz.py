"""Property tests: no frame, however broken, raises out of an adapter; bad ones are counted."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import Provider

from .helpers import Rig, depth_update, okx_books, okx_checksum_of

pytestmark = pytest.mark.timeout(90)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["0", "1.5", "2683.80000000", "-1", "1e9", "", "BTCUSDT"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)

BINANCE_FRAMES = [
    {"stream": "btcusdt@depth@100ms", "data": depth_update("BTCUSDT", 101, 102, [["10.00", "1"]], [["11.00", "2"]])},
    {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 5, "p": "10.5", "q": "1",
                                        "T": 1, "m": False, "M": True}},
    {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 5, "p": "10.5",
                                           "q": "1", "f": 1, "l": 2, "T": 1, "m": True}},
    {"stream": "btcusdt@bookTicker", "data": {"u": 7, "s": "BTCUSDT", "b": "10", "B": "1", "a": "11", "A": "1"}},
    {"result": None, "id": 1},
]
OKX_BIDS, OKX_ASKS = [["10", "1"]], [["11", "2"]]
OKX_FRAMES = [
    okx_books("BTC-USDT", "update", [["10.5", "1"]], [], seq=11, prev=10,
              checksum=okx_checksum_of([["10.5", "1"]] + OKX_BIDS, OKX_ASKS)),
    {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [
        {"instId": "BTC-USDT", "tradeId": "7849", "px": "10.5", "sz": "1", "side": "buy", "ts": "1652459199958"}]},
    {"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [
        {"instId": "BTC-USDT", "askPx": "11", "askSz": "3", "bidPx": "10", "bidSz": "4", "ts": "1652459223003"}]},
    {"event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}},
]


KRAKEN_ASKS = [["0.05005", "0.00000500", "1582905487.684110"]]
KRAKEN_BIDS = [["0.05000", "0.10000000", "1582905487.439814"]]
KRAKEN_FRAMES = [
    [42, {"a": [["0.05004", "2.00000000", "1582905488.000001"]], "c": "0"}, "book-1000", "XBT/USD"],
    [0, [["5541.20000", "0.15850568", "1534614057.321597", "s", "l", ""]], "trade", "XBT/USD"],
    [0, ["5698.40000", "5700.00000", "1542057299.545897", "1.01234567", "0.98765432"], "spread", "XBT/USD"],
    {"event": "heartbeat"},
]


def _kraken_rig():
    rig = Rig(Provider.KRAKEN, ["XBT/USD"])
    rig.frame([42, {"as": KRAKEN_ASKS, "bs": KRAKEN_BIDS}, "book-1000", "XBT/USD"])
    return rig


def _binance_rig():
    rig = Rig(Provider.BINANCE_USDM, ["BTCUSDT"])
    rig.adapter.on_snapshot("BTCUSDT", {"lastUpdateId": 100, "bids": [["10.00", "1"]], "asks": [["11.00", "1"]]}, 1)
    return rig


def _okx_rig():
    rig = Rig(Provider.OKX, ["BTC-USDT"])
    rig.frame(okx_books("BTC-USDT", "snapshot", OKX_BIDS, OKX_ASKS, seq=10, prev=-1,
                        checksum=okx_checksum_of(OKX_BIDS, OKX_ASKS)))
    return rig


def _mutate(frame, path, value):
    """Replace the item at `path` (indices into nested dicts/lists, taken modulo) by `value`."""
    frame = orjson.loads(orjson.dumps(frame))
    node = frame
    for i, step in enumerate(path):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = keys[step % len(keys)]
        if i == len(path) - 1 or not isinstance(node[key], (dict, list)):
            node[key] = value
            break
        node = node[key]
    return frame


def _feed(rig, raw):
    before = rig.report.messages
    rig.adapter.on_frame(raw, 1)        # must not raise
    rig.pub.flush()
    assert rig.report.messages == before + 1


settings_ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw):
    _feed(_binance_rig(), raw)
    _feed(_okx_rig(), raw)
    _feed(_kraken_rig(), raw)


@settings_
@given(value=json_values)
def test_arbitrary_json_never_raises(value):
    raw = orjson.dumps(value)
    for rig in (_binance_rig(), _okx_rig(), _kraken_rig()):
        _feed(rig, raw)


@settings_
@given(which=st.integers(0, 10), path=st.lists(st.integers(0, 20), min_size=1, max_size=5), value=json_values)
def test_valid_frames_with_one_field_broken_never_raise(which, path, value):
    rig = _binance_rig()
    _feed(rig, orjson.dumps(_mutate(BINANCE_FRAMES[which % len(BINANCE_FRAMES)], path, value)))
    rig = _okx_rig()
    _feed(rig, orjson.dumps(_mutate(OKX_FRAMES[which % len(OKX_FRAMES)], path, value)))
    rig = _kraken_rig()
    _feed(rig, orjson.dumps(_mutate(KRAKEN_FRAMES[which % len(KRAKEN_FRAMES)], path, value)))


@settings_
@given(payload=json_values)
def test_arbitrary_snapshot_bodies_never_raise(payload):
    rig = Rig(Provider.BINANCE_SPOT, ["BTCUSDT"])
    rig.adapter.on_snapshot("BTCUSDT", orjson.dumps(payload), 1)
    rig.adapter.on_snapshot("BTCUSDT", payload, 1)


def test_integers_beyond_64_bits_in_the_text_never_raise():
    for rig in (_binance_rig(), _okx_rig()):
        _feed(rig, b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
                   b'"U":123456789012345678901234567890,"u":1,"b":[],"a":[]}}')
        _feed(rig, b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],'
                   b'"bids":[],"ts":"1","seqId":123456789012345678901234567890,"prevSeqId":10}]}')
        assert rig.report.bad_frames == 2


def test_the_valid_frames_used_above_are_valid():
    rig = _binance_rig()
    for f in BINANCE_FRAMES:
        _feed(rig, orjson.dumps(f))
    rig2 = _okx_rig()
    for f in OKX_FRAMES:
        _feed(rig2, orjson.dumps(f))
    rig3 = _kraken_rig()
    for f in KRAKEN_FRAMES[1:]:
        _feed(rig3, orjson.dumps(f))
    assert rig.report.bad_frames == 0 and rig2.report.bad_frames == 0 and rig3.report.bad_frames == 0
    assert rig3.pub.counts == {"book": 1, "trade": 1, "ticker": 1}
    assert rig.pub.counts == {"book": 1, "trade": 2, "ticker": 1}
    assert rig2.pub.counts == {"book": 2, "trade": 1, "ticker": 1}
