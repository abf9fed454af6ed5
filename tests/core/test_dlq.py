"""The dead-letter queue: records with ids, rotation, bound, low priority evicted first."""

import pytest

from core.dlq import DeadLetterQueue

pytestmark = pytest.mark.timeout(30)


def test_records_carry_reason_raw_frame_and_ids(tmp_path):
    dlq = DeadLetterQueue(tmp_path, "ingest.okx")
    did = dlq.put("malformed_frame", raw=b'{"arg":', trace_id=7, provider="okx")
    dlq.put("binary", raw=b"\xff\x00", priority="high")
    first, second = dlq.read_all()
    assert first["reason"] == "malformed_frame" and first["raw"] == '{"arg":'
    assert first["trace_id"] == 7 and first["decision_id"] == did and first["provider"] == "okx"
    assert second["raw_b64"] == "/wA=" and second["priority"] == "high"
    assert dlq.counts == {"malformed_frame": 1, "binary": 1}


def test_the_bound_evicts_oldest_low_priority_files_before_high_ones(tmp_path):
    dlq = DeadLetterQueue(tmp_path, "dispatch", max_file_bytes=400, max_total_bytes=2000)
    for i in range(4):
        dlq.put("critical_delayed", raw="h" * 100, priority="high", n=i)
    for i in range(60):
        dlq.put("trade_dropped", raw="l" * 100, n=i)
    kept = dlq.read_all()
    assert dlq.evicted_files > 0
    assert [r["n"] for r in kept if r["priority"] == "high"] == list(range(4))
    low = [r["n"] for r in kept if r["priority"] == "low"]
    assert low == sorted(low) and low[-1] == 59 and low[0] > 0  # the oldest went first
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2000 + 400


def test_unknown_priority_is_refused(tmp_path):
    with pytest.raises(ValueError, match="priority='urgent'"):
        DeadLetterQueue(tmp_path, "x").put("r", priority="urgent")
