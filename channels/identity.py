"""Consumer identity: a name, proved by a key that only the run's user can read.

The decision (issue 11 item 3). A consumer is known by its name (`[A-Za-z0-9_-]{1,48}`).
The first SDK instance to use a name in a run creates `<run_dir>/consumers/<name>.key`,
32 random hex digits, mode 0600, atomically (written aside, then hard-linked into
place: the file is whole or absent); later instances read it. Every request that names
a consumer carries that key, and both servers check it against the same file, which
they read themselves (they run as the run's user). So:

- a restarted strategy gets its identity back by reading its key: execution gives it
  the same consumer id (assigned once per name, without collisions, and kept in the
  order store), so its orders stay idempotent by (consumer, client_order_id), and its
  exec-report cursor sits beside the key;
- a squatter cannot take a name: without read access to the run directory (another
  local user; a tcp loopback control endpoint is reachable by every user of the host)
  it cannot present the key, and a name whose key does not exist yet cannot be
  created by talking to a socket either: only a process that can write the run
  directory makes identities. So execution stores no name nobody created, and the
  number of names it keeps is bounded (`Store.max_consumers`);
- a second process of the run's own user under a live consumer's name (a strategy
  started twice) is refused by dispatch while the first one is live (`name_in_use`);
  liveness is its heartbeats (any request; the SDK sends one every few seconds), not
  its pid alone, so a registration that stops talking frees its slot after the
  silence timeout, and a dead pid frees it at once.

The key guards against other users and accidents, not against the run's own user,
who can read every file of the run anyway.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from .messages import KEY_RE, NAME_RE
from .names import consumer_file

KEY_SUFFIX = "key"


def key_path(run_dir: str | os.PathLike, name: str) -> Path:
    return consumer_file(run_dir, name, KEY_SUFFIX)


def consumer_key(run_dir: str | os.PathLike, name: str) -> str:
    """Consumer `name`'s key in the run of `run_dir`, created on first use (SDK side)."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"consumer name must be 1..48 of [A-Za-z0-9_-]: name={name!r}")
    path = key_path(run_dir, name)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(16).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic create-if-absent: whole, or another process's
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"{path}: not a consumer key (32 hex digits)")
    return key


class Keys:
    """The servers' side: is `key` consumer `name`'s key? Reads the key files, keeps what it read."""

    def __init__(self, run_dir: str | os.PathLike, max_kept: int = 4096):
        self.run_dir = Path(run_dir)
        self.max_kept = max_kept
        self._known: dict[str, str] = {}

    def check(self, name: str, key: str | None) -> str | None:
        """None if `key` proves `name`; else why not (for an "unauthorized" reply)."""
        known = self._known.get(name)
        if known is not None and key is not None and hmac.compare_digest(known, key):
            return None
        path = self.run_dir / "consumers" / f"{name}.{KEY_SUFFIX}"
        try:  # not known yet, or the key file was made anew (a wiped run directory)
            known = _read(path)
        except FileNotFoundError:
            return (f"consumer {name!r} has no identity in this run: its SDK creates "
                    f"consumers/{name}.key in the run directory on first use")
        except (OSError, ValueError) as e:
            return f"consumer {name!r}: unreadable key file: {e}"
        if name not in self._known and len(self._known) >= self.max_kept:
            self._known.pop(next(iter(self._known)))
        self._known[name] = known
        if key is None or not hmac.compare_digest(known, key):
            return f"wrong key for consumer {name!r}"
        return None
