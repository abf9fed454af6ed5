"""Consumer ids in the order store: assigned in order, kept across restarts, bounded in number."""

from __future__ import annotations

import pytest

from channels.messages import ProtocolError
from execution.store import Store

from .fakes import registry


def test_ids_are_assigned_in_order_kept_by_name_across_a_restart_and_bounded(tmp_path):
    s = Store(tmp_path / "o.sqlite", registry(), max_consumers=3)
    # names whose CRC-32 ids collided ("plumless" / "buckeroo") get distinct ids
    assert [s.consumer(n)[0] for n in ("plumless", "buckeroo", "c")] == [1, 2, 3]
    with pytest.raises(ProtocolError) as e:
        s.consumer("d")
    assert e.value.code == "capacity"
    s.close()
    s = Store(tmp_path / "o.sqlite", registry(), max_consumers=3)
    assert s.consumer("buckeroo")[0] == 2  # a restarted execution gives a name its id again
    assert s.consumer_names() == {1: "plumless", 2: "buckeroo", 3: "c"}
    s.close()
