"""events.event_ids: the vectorised event id, equal to events.event_id record by record."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import event_id, event_ids

pytestmark = pytest.mark.timeout(60)


@settings(max_examples=200, deadline=None)
@given(provider=st.integers(0, 0xFFFF), kinds=st.lists(st.integers(1, 7), min_size=1, max_size=8),
       instrument=st.integers(0, 0xFFFFFFFF), seq=st.integers(-(1 << 63), (1 << 63) - 1))
def test_batch_event_ids_equal_events_event_id(provider, kinds, instrument, seq):
    n = len(kinds)
    got = event_ids(provider, np.array(kinds, np.uint16), np.full(n, instrument, np.uint32),
                    np.full(n, seq, np.int64))
    assert [int(x) for x in got] == [event_id(provider, k, instrument, seq) for k in kinds]


def test_providers_may_differ_per_record():
    prov, kinds, inst, seq = [1, 4, 9], [1, 2, 3], [7, 8, 9], [0, -1, 2**62]
    assert [int(x) for x in event_ids(np.array(prov), np.array(kinds), np.array(inst), np.array(seq))] == \
        [event_id(p, k, i, q) for p, k, i, q in zip(prov, kinds, inst, seq)]
