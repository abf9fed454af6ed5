"""The run context: which pipeline run this process belongs to, and where its files go.

A run has an id (the shared-memory namespace of its rings) and a directory for its
files (DLQ, order store, exec journal, reports). Every process of a run gets both from
the environment, so that supervisord, `make run` and tests all set them one way:

    MELTICA_RUN       run id, default "default"
    MELTICA_RUN_DIR   run directory, default ./run/<run id>
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shm import Namespace


@dataclass(frozen=True)
class RunContext:
    run_id: str
    run_dir: Path

    @classmethod
    def from_env(cls, run_id: str | None = None, run_dir: str | os.PathLike | None = None) -> "RunContext":
        rid = run_id or os.environ.get("MELTICA_RUN", "default")
        rdir = Path(run_dir or os.environ.get("MELTICA_RUN_DIR") or Path("run") / rid)
        return cls(rid, rdir.absolute())  # absolute: ipc:// endpoints in it must not depend on cwd

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.run_id)

    def path(self, *parts: str) -> Path:
        """A path inside the run directory; its parent folder is created."""
        p = self.run_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def env(self) -> dict[str, str]:
        """Environment variables that put a child process in this run."""
        return {"MELTICA_RUN": self.run_id, "MELTICA_RUN_DIR": str(self.run_dir)}
