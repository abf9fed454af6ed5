"""Consumer keys: created once per name and run, private, checked by the servers."""

from __future__ import annotations

import multiprocessing
import os
import stat

import pytest

from channels.identity import Keys, consumer_key, key_path


def _key(args):
    return consumer_key(*args)


def test_the_first_use_creates_a_private_key_and_later_uses_read_it(tmp_path):
    k = consumer_key(tmp_path, "alpha")
    assert len(k) == 32 and consumer_key(tmp_path, "alpha") == k != consumer_key(tmp_path, "beta")
    assert stat.S_IMODE(os.stat(key_path(tmp_path, "alpha")).st_mode) == 0o600
    assert [p.name for p in (tmp_path / "consumers").iterdir() if p.name.startswith(".")] == []


def test_processes_racing_for_a_new_name_all_get_the_one_key(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_key, [(tmp_path, "racer")] * 16)
    assert len(set(keys)) == 1


def test_servers_accept_the_key_and_refuse_a_wrong_one_or_an_unknown_name(tmp_path):
    keys = Keys(tmp_path)
    k = consumer_key(tmp_path, "alpha")
    assert keys.check("alpha", k) is None
    assert "wrong key" in keys.check("alpha", "0" * 32)
    assert "wrong key" in keys.check("alpha", None)
    assert "no identity" in keys.check("squatter", "0" * 32)  # names are made by the run's user only


def test_a_bad_name_has_no_key(tmp_path):
    with pytest.raises(ValueError, match="consumer name"):
        consumer_key(tmp_path, "../etc")


def test_a_key_made_anew_is_accepted_without_restarting_the_server(tmp_path):
    keys = Keys(tmp_path)
    old = consumer_key(tmp_path, "alpha")
    assert keys.check("alpha", old) is None
    key_path(tmp_path, "alpha").unlink()  # the run directory was wiped
    new = consumer_key(tmp_path, "alpha")
    assert keys.check("alpha", new) is None and keys.check("alpha", old) is not None
