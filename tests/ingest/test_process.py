"""The live `python -m ingest` process end to end: a real process, a real ring, the simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from events import EVENT, Kind, Provider, instrument_id
from ingest.process import RingInUse, create_ring, ring_name
from core.config import EX_CONFIG
from shm import RingReader, RingWriter

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim():
    from simulator import Simulator
    s = Simulator(venues=["binance-spot", "okx"], instruments=2, rate=50, seed=3).start()
    try:
        yield s
    finally:
        s.stop()


def _env(run_ctx):
    return {**os.environ, **run_ctx.env(), "PYTHONPATH": str(REPO)}


def _start(run_ctx, reap, *args):
    p = subprocess.Popen([sys.executable, "-m", "ingest", *args, "--status-interval", "1"],
                         cwd=REPO, env=_env(run_ctx), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    reap.append(p)
    return p


def _wait_for_ring(run_ctx, name, proc, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while name not in run_ctx.namespace.names():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"ring {name} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("venue,symbols", [("binance-spot", "BTCUSDT,ETHUSDT"), ("okx", "BTC-USDT,ETH-USDT")])
def test_live_ingest_process_writes_books_trades_and_tickers_to_its_ring(run_ctx, reap, sim, venue, symbols):
    ep = sim.endpoints[venue]
    proc = _start(run_ctx, reap, "--venue", venue, "--symbols", symbols,
                  "--rest-url", ep["rest"], "--ws-url", ep["ws"])
    name = f"md.{venue}"
    _wait_for_ring(run_ctx, name, proc)
    reader = RingReader.attach(run_ctx.namespace, name, EVENT, start="oldest")
    try:
        seen: dict[tuple[int, int], int] = {}
        want = {(int(k), instrument_id(s)) for k in (Kind.BOOK, Kind.TRADE, Kind.TICKER)
                for s in ("BTC-USDT", "ETH-USDT")}
        deadline = time.monotonic() + 30
        while not want <= set(seen) or min(seen[w] for w in want) < 3:
            assert time.monotonic() < deadline, f"records so far: {seen}"
            batch = reader.wait_read(1024, timeout_s=0.5)
            for rec in batch:
                assert rec["provider"] == Provider.from_slug(venue)
                assert rec["event_id"] != 0 and rec["ingest_ts_ns"] > 0 and rec["routing_version"] == 0
                if rec["kind"] == Kind.BOOK:
                    b = rec["book"]
                    assert b["n_bids"] > 0 and b["n_asks"] > 0 and b["bid_px"][0] < b["ask_px"][0]
                    assert b["px_scale"] == 8 and b["last_update_id"] == rec["seq_provider"]
                key = (int(rec["kind"]), int(rec["instrument"]))
                seen[key] = seen.get(key, 0) + 1
            reader.release()
        assert reader.lost == 0
    finally:
        reader.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, proc.stderr.read().decode()
    assert name not in run_ctx.namespace.names()        # the writer removed its ring


def test_a_leftover_ring_of_a_dead_ingest_is_replaced(run_ctx, reap, sim):
    code = ("import os,sys; from events import EVENT; from shm import RingWriter; "
            "RingWriter.create(sys.argv[1], 'md.binance-spot', EVENT, 64); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, run_ctx.run_id], cwd=REPO, env=_env(run_ctx), check=True,
                   timeout=30)
    assert "md.binance-spot" in run_ctx.namespace.names()
    ep = sim.endpoints["binance-spot"]
    proc = _start(run_ctx, reap, "--venue", "binance-spot", "--symbols", "BTCUSDT",
                  "--rest-url", ep["rest"], "--ws-url", ep["ws"], "--ring-capacity", "1024")
    deadline = time.monotonic() + 20
    while True:
        try:
            with RingReader.attach(run_ctx.namespace, "md.binance-spot", EVENT) as r:
                if r.capacity == 1024 and r.writer_state() == "alive":
                    break
        except Exception:  # noqa: BLE001 - the segment may be mid-replacement
            pass
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_a_ring_with_a_live_writer_is_refused(run_ctx):
    with RingWriter.create(run_ctx.namespace, ring_name(Provider.OKX), EVENT, 64):
        with pytest.raises(RingInUse):
            create_ring(run_ctx.namespace, Provider.OKX, 64)


def test_telemetry_reaches_a_collector_with_per_instrument_message_counts(run_ctx, reap, sim, tmp_path):
    import orjson
    import zmq
    endpoint = f"ipc://{tmp_path}/tel.sock"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"metrics")
    sub.setsockopt(zmq.LINGER, 0)
    sub.bind(endpoint)
    try:
        ep = sim.endpoints["okx"]
        proc = _start(run_ctx, reap, "--venue", "okx", "--symbols", "BTC-USDT,ETH-USDT",
                      "--rest-url", ep["rest"], "--ws-url", ep["ws"], "--telemetry", endpoint)
        want = {f"md.messages{{provider=okx,symbol={s}}}" for s in ("BTC-USDT", "ETH-USDT")}
        deadline = time.monotonic() + 30
        counters: dict = {}
        while not want <= set(counters):
            assert proc.poll() is None and time.monotonic() < deadline, sorted(counters)
            if sub.poll(500):
                _topic, body = sub.recv_multipart()
                snap = orjson.loads(body)
                if snap.get("process") == "ingest.okx":
                    counters = snap["counters"]
        assert all(counters[k] > 0 for k in want)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        sub.close(0)


def test_flag_defaults_come_from_the_run_configuration_table(run_ctx, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[ingest.okx]\nsymbols = "BTC-USDT"\nring_capacity = 1000\n')
    out = subprocess.run([sys.executable, "-m", "ingest", "--venue", "okx", "--config", str(cfg)],
                         cwd=REPO, env=_env(run_ctx), capture_output=True, timeout=30)
    assert out.returncode == EX_CONFIG and b"ring_capacity=1000" in out.stderr
    cfg.write_text("[ingest.okx]\nbogus = 1\n")
    out = subprocess.run([sys.executable, "-m", "ingest", "--venue", "okx", "--config", str(cfg)],
                         cwd=REPO, env=_env(run_ctx), capture_output=True, timeout=30)
    assert out.returncode == EX_CONFIG and b"bogus" in out.stderr


def test_help_and_bad_arguments(run_ctx):
    out = subprocess.run([sys.executable, "-m", "ingest", "--help"], cwd=REPO, env=_env(run_ctx),
                         capture_output=True, timeout=30)
    assert out.returncode == 0 and b"--venue" in out.stdout and b"--ring-capacity" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ingest", "--venue", "okx", "--ring-capacity", "1000"],
                         cwd=REPO, env=_env(run_ctx), capture_output=True, timeout=30)
    assert bad.returncode == EX_CONFIG and b"power of two" in bad.stderr


@pytest.mark.parametrize("venue,good,bad", [("binance-spot", "BTCUSDT", "FOOBAR"), ("okx", "BTC-USDT", "FOO-BAR")])
def test_a_symbol_the_venue_does_not_list_is_dropped_alone_and_the_others_flow(run_ctx, reap, sim, venue, good,
                                                                                 bad):
    ep = sim.endpoints[venue]
    proc = _start(run_ctx, reap, "--venue", venue, "--symbols", f"{good},{bad}",
                  "--rest-url", ep["rest"], "--ws-url", ep["ws"])
    name = f"md.{venue}"
    _wait_for_ring(run_ctx, name, proc)
    reader = RingReader.attach(run_ctx.namespace, name, EVENT, start="oldest")
    try:
        deadline = time.monotonic() + 30
        books = 0
        while books < 3:
            assert proc.poll() is None and time.monotonic() < deadline, f"{books} books"
            batch = reader.wait_read(1024, timeout_s=0.5)
            books += int(((batch["kind"] == Kind.BOOK) & (batch["instrument"] == instrument_id("BTC-USDT"))).sum())
            reader.release()
    finally:
        reader.close()
    dead = b"".join(p.read_bytes() for p in (run_ctx.run_dir / "dlq").glob("*.jsonl"))
    assert b"unknown_symbol" in dead and bad.encode() in dead


def test_a_venue_that_lists_none_of_the_symbols_is_a_config_error_not_a_restart(run_ctx, sim):
    ep = sim.endpoints["binance-spot"]
    out = subprocess.run([sys.executable, "-m", "ingest", "--venue", "binance-spot", "--symbols", "FOOBAR",
                          "--rest-url", ep["rest"], "--ws-url", ep["ws"]],
                         cwd=REPO, env=_env(run_ctx), capture_output=True, timeout=60)
    assert out.returncode == EX_CONFIG and b"FOOBAR" in out.stderr
