"""Recordings as they are on disk: bad lines are skipped and counted by their line number,
a truncated or damaged .gz ends the replay with what was read and a clear error."""

from __future__ import annotations

import gzip
import subprocess
import sys

import orjson
import pytest

from ingest.recording import KEEP_BAD, REST, WS, Recording
from ingest.replay import replay
from core.config import EX_CONFIG

from ..conftest import REPO

pytestmark = pytest.mark.timeout(60)
SPOT = "binance_spot_2021-10-12_cryptofeed"


def line(**kw) -> bytes:
    return orjson.dumps(kw) + b"\n"


def fabricated() -> list[bytes]:
    return [
        line(recv_ts_ns=1, src="ws", payload={"e": "trade"}),                  # 1
        b"\n",                                                                 # 2 blank: not bad
        b'{"recv_ts": 1.5, "src": "ws", "payload": {"e": \n',                   # 3 cut short
        b"[1, 2]\n",                                                           # 4
        line(recv_ts=2.0, src="ws"),                                           # 5
        line(recv_ts=2.0, src="fix", payload={}),                              # 6
        line(recv_ts="soon", src="ws", payload={}),                            # 7
        line(recv_ts_ns=3.5, src="ws", payload={}),                            # 8
        line(recv_ts=4.0, src="rest", url="https://x/api/v3/depth?symbol=BTCUSDT", payload={"u": 1}),  # 9
        b"\xff\xfe not even text\n",                                           # 10
        line(src="ws", payload=[1]),                                           # 11 no time: 0
    ]


def test_bad_lines_are_skipped_and_named_by_their_line_in_the_file(tmp_path):
    f = tmp_path / "messages.jsonl"
    f.write_bytes(b"".join(fabricated()))
    rec = Recording(tmp_path)
    got = list(rec)
    assert [(n, src, ns, payload, url) for n, src, ns, payload, url in got] == [
        (1, WS, 1, {"e": "trade"}, None),
        (9, REST, 4_000_000_000, {"u": 1}, "https://x/api/v3/depth?symbol=BTCUSDT"),
        (11, WS, 0, [1], None)]
    bad = rec.bad_lines()
    assert bad["count"] == 7 and rec.error is None and rec.lines_read == 11
    assert [(b["line"], b["reason"].split(":")[0]) for b in bad["first"]] == [
        (3, "not JSON at column 48"), (4, "not a JSON object but list"), (5, "no payload"),
        (6, "src must be ws or rest"), (7, "recv_ts is not a number"),
        (8, "recv_ts_ns is not an integer"), (10, "not JSON at column 1")]


def test_only_the_first_bad_lines_are_listed_but_all_are_counted(tmp_path):
    f = tmp_path / "messages.jsonl"
    f.write_bytes(b"garbage\n" * (KEEP_BAD + 5) + line(recv_ts=1, payload={}))
    rec = Recording(f)
    assert [n for n, *_ in rec] == [KEEP_BAD + 6]
    assert rec.bad_lines()["count"] == KEEP_BAD + 5
    assert [b["line"] for b in rec.bad_lines()["first"]] == list(range(1, KEEP_BAD + 1))


def test_a_truncated_gz_ends_the_reading_with_what_was_read_and_where_it_stopped(tmp_path):
    lines = [line(recv_ts_ns=i, src="ws", payload={"i": i, "pad": "x" * (i % 97)}) for i in range(1, 20001)]
    whole = gzip.compress(b"".join(lines))
    f = tmp_path / "messages.jsonl.gz"
    f.write_bytes(whole[: len(whole) // 2])
    rec = Recording(f)
    got = [(n, payload["i"]) for n, _src, _ns, payload, _url in rec]
    assert got and all(n == i for n, i in got) and len(got) < len(lines)
    assert got == [(i, i) for i in range(1, len(got) + 1)]   # a prefix, in order, none lost
    assert rec.error == (f"{f}: the file is truncated after line {rec.lines_read} (EOFError: Compressed "
                         "file ended before the end-of-stream marker was reached); the replay covers "
                         "the lines before it")
    assert rec.lines_read >= len(got)


def test_a_damaged_gz_is_an_error_not_a_traceback(tmp_path):
    body = gzip.compress(b"".join(line(recv_ts_ns=i, payload={"i": i}) for i in range(5000)))
    damaged = bytearray(body)
    damaged[len(body) // 2: len(body) // 2 + 64] = b"\x00" * 64
    f = tmp_path / "messages.jsonl.gz"
    f.write_bytes(bytes(damaged))
    rec = Recording(f)
    n = sum(1 for _ in rec)
    assert rec.error is not None
    assert rec.error.startswith(f"{f}: the file is damaged, found after line {rec.lines_read} (")
    assert n + rec.bad_lines()["count"] <= rec.lines_read


def run_replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.replay", *args, "--json"], cwd=REPO,
                          capture_output=True, timeout=60)


def test_replay_of_a_truncated_gz_prints_what_it_read_and_exits_1_naming_file_and_line(shared_data, tmp_path):
    src = (shared_data / SPOT / "messages.jsonl").read_bytes()
    whole = gzip.compress(src)
    f = tmp_path / "messages.jsonl.gz"
    f.write_bytes(whole[: int(len(whole) * 0.7)])
    proc = run_replay(str(f), "--venue", "binance-spot")
    assert proc.returncode == 1, proc.stderr.decode()
    out = orjson.loads(proc.stdout)          # one JSON object, still printed
    reached = int(out["error"].split("after line ")[1].split()[0])
    assert out["error"].startswith(f"{f}: the file is truncated after line {reached} ")
    assert 0 < reached < src.count(b"\n")
    assert out["messages"] > 0 and out["bad_lines"] == {"count": 0, "first": []}
    assert out["error"] in proc.stderr.decode()


def test_replay_skips_and_counts_bad_lines_with_their_line_numbers_and_keeps_every_book(shared_data, tmp_path):
    lines = (shared_data / SPOT / "messages.jsonl").read_bytes().splitlines(keepends=True)
    bad = b'{"recv_ts": 1, "src": "ws", "payload": {oops}\n'
    for at in (0, 40, 41, 200):      # 0-based positions in the new file, so lines 1, 41, 42, 201
        lines.insert(at, bad)
    (tmp_path / "messages.jsonl").write_bytes(b"".join(lines))
    out = replay(tmp_path, "binance-spot")
    clean = replay(shared_data / SPOT, "binance-spot")
    assert out["bad_lines"]["count"] == 4 and out["error"] is None
    assert [b["line"] for b in out["bad_lines"]["first"]] == [1, 41, 42, 201]
    column = bad.index(b"oops") + 1
    assert all(b["reason"].startswith(f"not JSON at column {column}:") for b in out["bad_lines"]["first"])
    assert {k: out[k] for k in ("messages", "gaps", "resyncs", "books")} == \
        {k: clean[k] for k in ("messages", "gaps", "resyncs", "books")}
    proc = run_replay(str(tmp_path), "--venue", "binance-spot")
    assert proc.returncode == 0 and orjson.loads(proc.stdout)["bad_lines"]["count"] == 4
    assert b"skipped 4 bad lines (first: 1, 41, 42, 201)" in proc.stderr


def test_replay_bad_arguments_exit_ex_config(tmp_path):
    assert run_replay(str(tmp_path / "nothing"), "--venue", "binance-spot").returncode == EX_CONFIG
    assert run_replay(str(tmp_path), "--venue", "bitmex").returncode == EX_CONFIG
