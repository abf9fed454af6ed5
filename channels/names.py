"""Every ring name and endpoint of a run, spelled once.

    ring / endpoint                       writer -> readers
    md.<venue>                            ingest --venue V -> dispatch
    consumer.<name>.md                    dispatch -> consumer <name>
    exec                                  execution -> every consumer (lossless)
    <run_dir>/exec/exec.journal           execution -> every consumer (channels.journal)
    ipc://<run_dir>/dispatch.ctl          consumers, operators -> dispatch (ROUTER)
    ipc://<run_dir>/execution.ctl         consumers, dispatch -> execution (ROUTER)
    <run_dir>/consumers/<name>.key        the consumer's identity key (channels.identity)
    <run_dir>/consumers/<name>.exec_seq   the consumer's exec-report cursor (consumer SDK)

Rings live in the run's shared-memory namespace (`shm.Namespace(run_id)`), files and
ipc endpoints in its run directory. Endpoints are absolute (`resolve()`): a process
started from another working directory must reach the same socket.
"""

from __future__ import annotations

import os
from pathlib import Path

MD_PREFIX = "md."
EXEC_RING = "exec"
JOURNAL_PATH = ("exec", "exec.journal")
DISPATCH_CTL = "dispatch.ctl"
EXECUTION_CTL = "execution.ctl"
CONSUMERS_DIR = "consumers"


def md_ring(venue: str) -> str:
    """The market-data ring of venue slug `venue` (one ingest process writes it)."""
    return f"{MD_PREFIX}{venue}"


def md_venue(ring: str) -> str | None:
    """The venue slug of market-data ring `ring`, None if `ring` is not one."""
    return ring[len(MD_PREFIX):] if ring.startswith(MD_PREFIX) else None


def consumer_ring(name: str) -> str:
    """Consumer `name`'s market-data ring (dispatch writes it, lossless)."""
    return f"consumer.{name}.md"


def _ipc(run_dir: str | os.PathLike, file: str) -> str:
    return f"ipc://{Path(run_dir).resolve() / file}"


def dispatch_endpoint(run_dir: str | os.PathLike) -> str:
    """Dispatch's control ROUTER of the run in `run_dir`."""
    return _ipc(run_dir, DISPATCH_CTL)


def execution_endpoint(run_dir: str | os.PathLike) -> str:
    """Execution's order-entry and control ROUTER of the run in `run_dir`."""
    return _ipc(run_dir, EXECUTION_CTL)


def journal_path(run_dir: str | os.PathLike) -> Path:
    """The exec journal of the run in `run_dir`."""
    return Path(run_dir).joinpath(*JOURNAL_PATH)


def consumer_file(run_dir: str | os.PathLike, name: str, suffix: str) -> Path:
    """`<run_dir>/consumers/<name>.<suffix>` (the folder is created)."""
    folder = Path(run_dir) / CONSUMERS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"{name}.{suffix}"


def ipc_path(endpoint: str) -> str | None:
    """The socket file of an ipc:// endpoint, None for other transports."""
    return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None


def check_local(endpoint: str) -> None:
    """Refuse endpoints that would listen beyond this host (loopback and ipc only)."""
    if endpoint.startswith(("ipc://", "inproc://", "tcp://127.0.0.1:", "tcp://[::1]:", "tcp://localhost:")):
        return
    raise ValueError(f"control must bind to loopback or ipc (pass --allow-remote to override): "
                     f"endpoint={endpoint!r}")
