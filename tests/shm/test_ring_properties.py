"""Property tests: any interleaving of writes and reads keeps every ring invariant."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.run import RunContext
from shm import RingReader, RingWriter
from tests.shm.conftest import records
from tests.shm.workers import REC

pytestmark = pytest.mark.timeout(120)

ops = st.lists(st.tuples(st.sampled_from(["write", "read_a", "read_b"]), st.integers(1, 40)),
               min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, cap_log2=st.integers(1, 5))
def test_lossless_interleavings_deliver_everything_in_order_to_every_reader(run_ctx, ops, cap_log2):
    ns = run_ctx.namespace
    cap = 1 << cap_log2
    name = f"p{np.random.randint(1 << 30)}"
    with RingWriter.create(ns, name, REC, cap, policy="lossless") as w, \
            RingReader.attach(ns, name, REC) as a, RingReader.attach(ns, name, REC) as b:
        got = {"read_a": [], "read_b": []}
        readers = {"read_a": a, "read_b": b}
        for op, n in ops:
            if op == "write":
                before = w.position
                done = w.write_batch(records(before, n))
                assert done == min(n, cap - (before - min(a.position, b.position)))
            else:
                batch = readers[op].try_read(n)
                got[op] += batch["seq"].tolist()
                readers[op].release()
            assert 0 <= w.position - a.position <= cap and 0 <= w.position - b.position <= cap
        for key, r in readers.items():
            while len(batch := r.try_read(cap)):
                got[key] += batch["seq"].tolist()
                r.release()
            r.release()
            assert got[key] == list(range(w.position))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops, cap_log2=st.integers(1, 5))
def test_overwrite_interleavings_return_increasing_records_and_count_every_loss(run_ctx, ops, cap_log2):
    ns = run_ctx.namespace
    cap = 1 << cap_log2
    name = f"p{np.random.randint(1 << 30)}"
    with RingWriter.create(ns, name, REC, cap) as w, RingReader.attach(ns, name, REC) as r:
        seen = []
        for op, n in ops:
            if op == "write":
                w.write_batch(records(w.position, n))
            else:
                batch = r.try_read(n)
                assert np.array_equal(batch["check"], ~batch["seq"])
                seen += batch["seq"].tolist()
                r.release()
        while len(batch := r.try_read(cap)):
            seen += batch["seq"].tolist()
            r.release()
        r.release()
        assert seen == sorted(set(seen))
        assert len(seen) + r.lost == w.position
        assert not seen or seen[-1] == w.position - 1
