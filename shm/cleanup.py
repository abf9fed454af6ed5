"""Remove leftover ring segments: `python -m shm.cleanup --run RUN | --stale | --all`.

    --run RUN   every segment of one run (what `make run` does on exit)
    --stale     segments whose writer process is gone (what a restart sweeps)
    --all       every segment with the prefix (default "meltica")

Prints one JSON object: {"removed": [...], "kept": [...]}.
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from . import layout as L
from . import procs
from .segment import DEFAULT_PREFIX, SHM_DIR, Namespace


def writer_of(path: str) -> tuple[int, int] | None:
    """(pid, start ticks) of a segment's writer, or None if it is not a complete ring."""
    try:
        with open(path, "rb") as f:
            head = f.read(L.HEADER_WORDS * L.WORD)
    except OSError:
        return None
    if len(head) < L.HEADER_WORDS * L.WORD:
        return None
    word = lambda i: int.from_bytes(head[i * 8 : i * 8 + 8], "little", signed=True)  # noqa: E731
    if word(L.H_MAGIC) != L.MAGIC:
        return None
    return word(L.H_WRITER_PID), word(L.H_WRITER_START_TICKS)


def sweep_stale(prefix: str = DEFAULT_PREFIX) -> tuple[list[str], list[str]]:
    """Unlink segments whose writer is dead (and half-built ones of dead creators)."""
    removed, kept = [], []
    for entry in sorted(os.listdir(SHM_DIR)):
        if not entry.startswith(prefix + "."):
            continue
        path = os.path.join(SHM_DIR, entry)
        owner = writer_of(path)
        if owner is None and ".init-" in entry:
            pid = int(entry.rsplit(".init-", 1)[1] or 0)
            owner = (pid, 0)
        if owner is not None and procs.is_alive(*owner):
            kept.append(entry)
            continue
        try:
            os.unlink(path)
            removed.append(entry)
        except FileNotFoundError:
            pass
    return removed, kept


def sweep_all(prefix: str = DEFAULT_PREFIX) -> list[str]:
    removed = []
    for entry in sorted(os.listdir(SHM_DIR)):
        if entry.startswith(prefix + "."):
            try:
                os.unlink(os.path.join(SHM_DIR, entry))
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shm.cleanup", description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--run", help="remove every segment of this run id")
    group.add_argument("--stale", action="store_true", help="remove segments whose writer is gone")
    group.add_argument("--all", action="store_true", help="remove every segment with the prefix")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX)
    args = ap.parse_args(argv)
    kept: list[str] = []
    if args.run:
        removed = Namespace(args.run, args.prefix).cleanup()
    elif args.stale:
        removed, kept = sweep_stale(args.prefix)
    else:
        removed = sweep_all(args.prefix)
    sys.stdout.write(orjson.dumps({"removed": removed, "kept": kept}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
