"""ACCOUNT records reach a remote consumer's host in place, whichever of its two feeds is idle.

`bridge exec-in --consumer a` (NATS user a) reads a's reports (`exec-in-a`) and the
ACCOUNT records (`exec-acct-a`), two JetStream consumers, and merges them by exec_seq
into a's journal. The test publishes the stream itself, as execution does (user
execution, `Nats-Msg-Id` / `Nats-Expected-Last-Sequence`), in steps where one feed has
nothing: a's reports with no ACCOUNT record yet, then an ACCOUNT record after b's
reports with no report of a's after it. Each step must reach a's journal whole (b's
exec_seqs as placeholders), which needs the idle feed to be known complete.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from bridge.execs import ACCOUNT_TOKEN, STREAM, SUBJECT, ensure_stream
from channels.journal import JournalError, JournalReader
from channels.names import journal_path
from consumer.orders import OrderClient
from events import EVENT, AccountEntry, ExecStatus, Kind, Provider, stamp_header

from .conftest import as_user, auth_args, spawn, wait_until

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(90)]

# exec_seq 1.. : who
STEPS = [["a", "a", "b", "b"], ["acct"], ["b", "acct", "a"], ["acct", "acct"]]
NAMES = {"a": 1, "b": 2}


def record(seq: int, who: str) -> np.ndarray:
    rec = np.zeros(1, EVENT)
    if who == "acct":
        stamp_header(rec[0], Kind.ACCOUNT, int(Provider.BINANCE_SPOT), 0, event_id=seq)
        a = rec[0]["account"]
        a["exec_seq"], a["entry"], a["asset"], a["free"], a["locked"], a["scale"] = \
            seq, AccountEntry.BALANCE, b"USDT", 1000 + seq, seq, 8
    else:
        stamp_header(rec[0], Kind.EXEC_REPORT, int(Provider.BINANCE_SPOT), 7, event_id=seq, consumer_id=NAMES[who])
        e = rec[0]["exec"]
        e["exec_seq"], e["qty"], e["status"], e["client_order_id"] = seq, seq * 3, ExecStatus.ACK, f"o{seq}".encode()
    return rec


def journal_last(ctx) -> int:
    try:
        j = JournalReader(journal_path(ctx.run_dir))
    except (FileNotFoundError, JournalError):
        return 0
    try:
        return j.last_seq()
    finally:
        j.close()


def test_account_records_reach_a_consumer_host_with_either_feed_idle(secured, hosts, reap):
    node, passwords = secured
    _, cons_ctx = hosts
    spawn(cons_ctx, reap, "bridge", "exec-in", "--nats", node.url, "--consumer", "a",
          *auth_args(cons_ctx, "a", passwords))
    sent: list[tuple[str, np.ndarray]] = []

    async def publish(whos: list[str]) -> None:
        nc, errors = await as_user(node.url, "execution", passwords)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_stream(js)
            for who in whos:
                seq = len(sent) + 1
                rec = record(seq, who)
                token = ACCOUNT_TOKEN if who == "acct" else who
                ack = await js.publish(f"{SUBJECT}.{token}", rec.tobytes(), stream=STREAM, headers={
                    "Nats-Msg-Id": str(seq), "Nats-Expected-Last-Sequence": str(seq - 1)})
                assert ack.seq == seq, ack
                sent.append((who, rec))
        finally:
            await nc.close()
        assert not errors, errors

    for step in STEPS:
        asyncio.run(publish(step))
        n = len(sent)
        # whole up to the last ACCOUNT record or report of a's: b's at the end wait for one of those
        upto = max(i + 1 for i, (who, _) in enumerate(sent) if who != "b")
        wait_until(lambda: journal_last(cons_ctx) >= upto, 30, f"a's journal to reach exec_seq {upto} of {n}")

    j = JournalReader(journal_path(cons_ctx.run_dir))
    try:
        here = j.read(1, len(sent))
    finally:
        j.close()
    assert (here["exec"]["exec_seq"] == np.arange(1, len(here) + 1)).all()
    for (who, rec), got in zip(sent, here):
        if who == "b":
            assert got["consumer_id"] == 0 and got["kind"] == Kind.EXEC_REPORT and not got["exec"]["client_order_id"], \
                "b's report is a placeholder on a's host"
        else:
            assert got.tobytes() == rec.tobytes(), f"exec_seq {got['exec']['exec_seq']} ({who}) changed on the way"

    client = OrderClient(SimpleNamespace(name="a"), run=cons_ctx, monitor_all=True, resume_from=0)
    try:
        last = len(here)

        def read_all() -> bool:
            client.poll_reports(max_n=64, timeout_s=0.05)
            return client.next_seq > last

        wait_until(read_all, 30, "the SDK to read a's journal")
        usdt = client.account(Provider.BINANCE_SPOT).balances["USDT"]
        last_acct = max(i + 1 for i, (who, _) in enumerate(sent) if who == "acct")
        assert (usdt.free_m, usdt.locked_m, usdt.scale) == (1000 + last_acct, last_acct, 8)
    finally:
        client.close()
