"""The record codec: every offset, packer and raw copy agrees with numpy's own fields."""

import re

import numpy as np
import pytest

import events as E
from events import codec
from events.records import __doc__ as RECORDS_DOC

pytestmark = pytest.mark.timeout(30)

HEADER_NAMES = E.HEADER.names


def _scalar_fields(payload: str) -> tuple[str, ...]:
    """The payload's fields that `struct` can pack (the merge legs are a nested record)."""
    return tuple(f for f in codec.payload_fields(payload) if codec.dtype(f).base.kind in "iuS")


def _values(names, rng) -> tuple[list, list]:
    """Random values of the right type for each field: (per field, flattened for struct)."""
    per, flat = [], []
    for name in names:
        dt = codec.dtype(name)
        base, count = (dt.base, int(np.prod(dt.shape))) if dt.shape else (dt, 1)
        if base.kind == "S":
            v = bytes(rng.integers(97, 123, rng.integers(0, base.itemsize + 1)).astype(np.uint8))
            per.append(v)
            flat.append(v)
            continue
        info = np.iinfo(base)
        items = [int(x) for x in rng.integers(info.min, info.max, count, dtype=base, endpoint=True)]
        per.append(items if dt.shape else items[0])
        flat += items
    return per, flat


def test_the_header_drawing_matches_the_dtype():
    drawn = re.findall(r"(\d+)\s+([a-z_]+) ([ui]\d)", RECORDS_DOC)
    assert [name for _, name, _ in drawn] == list(HEADER_NAMES)
    for at, name, code in drawn:
        assert codec.offset(name) == int(at), name
        assert codec.dtype(name) == np.dtype("<" + code), name
    assert codec.offset(HEADER_NAMES[-1]) + codec.dtype(HEADER_NAMES[-1]).itemsize == E.records.HEADER_BYTES


def test_the_examples_in_the_module_docstring_hold():
    examples = re.findall(r"^    ((?:offset|word|lane|payload_fields)\(.*?)\s{2,}(\S.*?)(?:\s{2,}.*)?$",
                          codec.__doc__, re.M)
    assert len(examples) == 6
    for call, result in examples:
        assert eval(call, {"np": np}, vars(codec)) == eval(result), call


def test_every_payload_offset_is_the_header_end_plus_its_place_in_the_payload():
    for _kind, (payload, dt) in E.PAYLOADS.items():
        assert codec.offset(payload) == E.records.HEADER_BYTES
        for name in dt.names:
            assert codec.offset(f"{payload}.{name}") == E.records.HEADER_BYTES + dt.fields[name][1]
    with pytest.raises(KeyError, match="no field 'book.nope'"):
        codec.offset("book.nope")


@pytest.mark.parametrize("payload", [p for p, _ in E.PAYLOADS.values()])
def test_a_packer_built_from_the_dtype_writes_what_numpy_writes(payload):
    rng = np.random.default_rng(len(payload))
    names = HEADER_NAMES + _scalar_fields(payload)
    for _ in range(20):
        per, flat = _values(names, rng)
        want = np.zeros(1, E.EVENT)
        for name, v in zip(names, per):
            codec.field(want, name)[0] = v
        got = np.zeros(1, E.EVENT)
        codec.packer(names, end=E.RECORD_BYTES).pack_into(memoryview(got.view(np.uint8)), 0, *flat)
        assert codec.byte_rows(got).tobytes() == codec.byte_rows(want).tobytes()


def test_a_packer_zeroes_the_fields_it_skips_and_starts_at_its_first_field():
    p = codec.packer(("seq_provider", "trace_id"), end=codec.offset("ticker.bid_sz"))
    assert p.size == codec.offset("ticker.bid_sz") - codec.offset("seq_provider")
    rec = np.zeros(1, E.EVENT)
    codec.byte_rows(rec)[:] = 0xFF
    p.pack_into(memoryview(rec.view(np.uint8)), codec.offset("seq_provider"), 5, 6)
    r = rec[0]
    assert (int(r["seq_provider"]), int(r["trace_id"])) == (5, 6)
    assert int(r["event_id"]) == 0 and int(r["ticker"]["bid_px"]) == 0
    assert int(r["consumer_id"]) == 0xFFFFFFFF and int(r["ticker"]["bid_sz"]) == -1   # outside


def test_a_packer_refuses_what_it_cannot_pack_as_laid_out():
    with pytest.raises(ValueError, match="overlaps or precedes"):
        codec.packer(("kind", "schema_version"))
    with pytest.raises(ValueError, match="overlaps or precedes"):
        codec.packer(("book.depth", "trade.trade_id"))      # two payloads share the bytes
    with pytest.raises(ValueError, match="end=2 is inside"):
        codec.packer(("kind", "flags"), end=2)
    with pytest.raises(ValueError, match="no struct code"):
        codec.packer(("merged.legs",))


def test_words_give_each_header_field_as_numpy_reads_it():
    rng = np.random.default_rng(7)
    recs = np.zeros(50, E.EVENT)
    codec.byte_rows(recs)[:] = rng.integers(0, 256, (50, E.RECORD_BYTES), dtype=np.uint8)
    heads = recs.view(np.int64).reshape(len(recs), codec.WORDS)
    for name in HEADER_NAMES:
        w, shift, mask = codec.word(name)
        got = [(int(h) >> shift) & mask for h in heads[:, w]]
        assert got == [int(x) & mask for x in recs[name]], name
    with pytest.raises(ValueError, match="not an integer inside one word"):
        codec.word("book.bid_px")


def test_lanes_index_a_field_in_a_view_of_its_own_type():
    recs = np.zeros(3, E.EVENT)
    recs["routing_version"], recs["consumer_id"] = [1, 2, 3], [4, 5, 6]
    v = codec.lane("routing_version", np.uint64)
    c = codec.lane("consumer_id", np.uint32)
    assert codec.words(recs)[:, v].tolist() == [1, 2, 3]
    assert recs.view(np.uint32).reshape(3, -1)[:, c].tolist() == [4, 5, 6]
    with pytest.raises(ValueError, match="not an aligned uint64"):
        codec.lane("consumer_id", np.uint64)


def test_raw_copies_keep_every_byte_and_the_dtype():
    a, b = E.empty(2), E.empty(3)
    for recs in (a, b):
        codec.byte_rows(recs)[:] = np.arange(recs.nbytes, dtype=np.uint64).reshape(len(recs), -1) % 251
    joined = codec.concat(x for x in (a, b))                  # any iterable of EVENT arrays
    assert joined.dtype == E.EVENT and joined.tobytes() == a.tobytes() + b.tobytes()
    assert E.concat is codec.concat and len(codec.concat([])) == 0
    one = codec.row(b, 1)
    assert one.dtype == E.EVENT and one.tobytes() == b[1:2].tobytes()
    one["seq_provider"] = 99                                  # a private copy
    assert int(b[1]["seq_provider"]) != 99
    assert codec.words(a).shape == (2, E.RECORD_BYTES // 8) and np.shares_memory(codec.words(a), a)
