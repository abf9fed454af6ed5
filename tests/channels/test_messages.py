"""Control frames into typed requests: every frame is a request or a coded ProtocolError, nothing else."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import messages as M
from channels.limits import RateLimit

KEY = "0123456789abcdef" * 2
BOTH = {**M.DISPATCH_COMMANDS, **M.EXECUTION_COMMANDS}

# The frames of issue 11, and their kin: each one killed dispatch or execution once.
HOSTILE = [
    (b'{"cmd":{"x":1},"request_id":1,"consumer":"x"}', "unknown_command"),
    (b'{"cmd":["register"],"request_id":1,"consumer":"x"}', "unknown_command"),
    (b'{"cmd":null}', "unknown_command"),
    (b'[]', "malformed"),
    (b'"register"', "malformed"),
    (b'\xff\xfe', "malformed"),
    (b'', "malformed"),
    (b'{"cmd":"register","request_id":-1,"consumer":"x","key":"%s"}' % KEY.encode(), "malformed"),
    (b'{"cmd":"register","request_id":true,"consumer":"x","key":"%s"}' % KEY.encode(), "malformed"),
    (b'{"cmd":"register","request_id":1e400,"consumer":"x"}', "malformed"),
    (b'{"cmd":"register","request_id":1,"consumer":{"a":1},"key":"%s"}' % KEY.encode(), "malformed"),
    (b'{"cmd":"register","request_id":1,"consumer":"' + b"a" * 49 + b'","key":"' + KEY.encode() + b'"}', "malformed"),
    (b'{"cmd":"register","request_id":1,"consumer":"x","key":"%s","pid":[1]}' % KEY.encode(), "malformed"),
    (b'{"cmd":"register","request_id":1,"consumer":"x"}', "malformed"),  # no key
    (b'{"cmd":"subscribe","request_id":1,"consumer":"x","key":"%s","symbol":["BTC-USDT"]}' % KEY.encode(),
     "malformed"),
    (b'{"cmd":"subscribe","request_id":1,"consumer":"x","key":"%s","symbol":"B","providers":[{}]}' % KEY.encode(),
     "malformed"),
    (b'{"cmd":"subscribe","request_id":1,"consumer":"x","key":"%s","symbol":"B","colour":"red"}' % KEY.encode(),
     "malformed"),
    (b'{"cmd":"new_order","request_id":1,"consumer":"x","key":"%s","client_order_id":"o","qty":{"a":1}}'
     % KEY.encode(), "malformed"),
    (b'{"cmd":"register","request_id":1,"consumer":"x","pad":"' + b"x" * M.MAX_FRAME_BYTES + b'"}', "too_large"),
    (b'[' * 100_000, "too_large"),
    (b'[' * 10_000, "malformed"),  # deeper than orjson's recursion limit, within the size bound
]


@pytest.mark.parametrize("frame,code", HOSTILE, ids=[f"{i}" for i in range(len(HOSTILE))])
def test_hostile_frames_are_coded_errors(frame, code):
    with pytest.raises(M.ProtocolError) as e:
        M.parse(frame, BOTH)
    assert e.value.code == code, e.value
    assert len(str(e.value)) < 400, "a reason quotes the input, bounded"
    M.request_id_of(frame)  # never raises either


def test_a_good_request_is_a_typed_message():
    req = M.parse(orjson.dumps({"cmd": "subscribe", "request_id": 7, "consumer": "alpha", "key": KEY,
                                "symbol": "BTC-USDT", "providers": ["okx"], "kinds": None}), M.DISPATCH_COMMANDS)
    assert req == M.Subscribe(request_id=7, consumer="alpha", key=KEY, symbol="BTC-USDT", providers=("okx",))
    assert M.parse(b'{"cmd":"status","request_id":1}', M.EXECUTION_COMMANDS) == M.Status(request_id=1)
    with pytest.raises(M.ProtocolError, match="unknown cmd"):
        M.parse(b'{"cmd":"status","request_id":1}', M.DISPATCH_COMMANDS)  # each server its own commands


def test_one_reply_shape_ok_exactly_without_a_code():
    ok = M.reply(3, "hello", consumer_id=1)
    assert ok == {"type": "result", "request_id": 3, "cmd": "hello", "ok": True, "code": None, "reason": "",
                  "consumer_id": 1}
    bad = M.error_reply(None, None, M.ProtocolError("malformed", "x" * 5000))
    assert not bad["ok"] and bad["code"] == "malformed" and len(bad["reason"]) == M.MAX_REASON
    with pytest.raises(ValueError):
        M.reply(1, "hello", code="oops")


def test_metric_labels_of_commands_come_from_a_bounded_set():
    labels = {M.cmd_label(f"cmd-{i}") for i in range(20_000)} | {M.cmd_label(c) for c in BOTH}
    assert labels == set(BOTH) | {"invalid"}


def test_a_rate_limit_refills_with_the_clock_and_keeps_a_bounded_number_of_names():
    rl = RateLimit(rate_per_s=10, burst=3, max_keys=100)
    assert [rl.allow("a", 0) for _ in range(4)] == [True, True, True, False]
    assert rl.allow("a", 100_000_000)          # 0.1 s: one token back
    assert not rl.allow("a", 100_000_000)
    for i in range(1000):
        rl.allow(f"n{i}", 0)
    assert len(rl._buckets) == 100


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
field_names = st.sampled_from(["cmd", "request_id", "consumer", "key", "pid", "symbol", "providers", "kinds",
                               "enabled", "merged", "client_order_id", "side", "type", "tif", "qty", "price",
                               "ref_price", "x"])
requests = st.dictionaries(field_names, json_values | st.sampled_from([*BOTH, "alpha", KEY]), max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | requests.map(orjson.dumps))
def test_any_frame_is_a_request_or_a_coded_error(frame):
    try:
        req = M.parse(frame, BOTH)
    except M.ProtocolError as e:
        assert e.code in M.CODES
    else:
        assert type(req) in BOTH.values() and isinstance(req.request_id, int)
    rid = M.request_id_of(frame)
    assert rid is None or isinstance(rid, int)
