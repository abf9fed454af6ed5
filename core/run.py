"""The run context: which pipeline run this process belongs to, and where its files go.

A run has an id (the shared-memory namespace of its rings) and a directory for its
files (logs, DLQ, order store, exec journal, cursors, ipc sockets). Every process of a
run gets both from the environment, so that supervisord, `make run` and tests all set
them one way:

    MELTICA_RUN       run id; default: the id recorded in MELTICA_RUN_DIR, else "default"
    MELTICA_RUN_DIR   run directory, default ./run/<run id>

A run's files are its user's alone. `RunContext.from_env()`, which is how every program
of a run (and the consumer SDK) joins it, sets the process umask to 077, so every
file, directory and ipc socket the process creates from then on is closed to other
users whatever umask it was started with (children inherit it), and creates the run
directory 0700 or checks the one it finds: owned by this user, closed to everyone else,
else `RunDirError`. The directory records the run id (`run.id`), so `MELTICA_RUN_DIR`
alone attaches a process to a run from any working directory.

    python -m core.run     create or check the run directory of MELTICA_RUN /
                              MELTICA_RUN_DIR and print it (what `make supervise` does
                              before it starts supervisord)
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from events.errors import MelticaError
from shm import Namespace

PRIVATE_UMASK = 0o077  # files 0600, directories and ipc sockets 0700
DIR_MODE = 0o700
ID_FILE = "run.id"


class RunDirError(MelticaError):
    """The run directory is not this user's alone: owned by another user, or open to others."""


@dataclass(frozen=True)
class RunContext:
    run_id: str
    run_dir: Path

    @classmethod
    def from_env(cls, run_id: str | None = None, run_dir: str | os.PathLike | None = None) -> "RunContext":
        """Join a run: its id and directory from the arguments, else the environment.

        Makes this process's files private (umask 077) and the run directory ready
        (`claim`); raises RunDirError when the directory is not ours alone.
        """
        rid = run_id or os.environ.get("MELTICA_RUN")
        rdir = run_dir or os.environ.get("MELTICA_RUN_DIR")
        if rid is None:
            rid = (_recorded_id(Path(rdir)) if rdir else None) or "default"
        rdir = Path(rdir or Path("run") / rid)
        return cls(rid, rdir.absolute()).claim()  # absolute: ipc:// endpoints in it must not depend on cwd

    def claim(self) -> "RunContext":
        """Set the private umask, create or check the run directory, record the run id."""
        os.umask(PRIVATE_UMASK)
        self.ensure_dir()
        if _recorded_id(self.run_dir) != self.run_id:
            tmp = self.run_dir / f"{ID_FILE}.{os.getpid()}"
            tmp.write_text(self.run_id + "\n")
            os.replace(tmp, self.run_dir / ID_FILE)
        return self

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.run_id)

    def path(self, *parts: str) -> Path:
        """A path inside the run directory; its parent folders are created 0700."""
        self.ensure_dir()
        p = self.run_dir.joinpath(*parts)
        folder = self.run_dir
        for part in p.relative_to(self.run_dir).parts[:-1]:
            folder = folder / part
            _mkdir_private(folder)
        return p

    def env(self) -> dict[str, str]:
        """Environment variables that put a child process in this run."""
        return {"MELTICA_RUN": self.run_id, "MELTICA_RUN_DIR": str(self.run_dir)}

    def ensure_dir(self) -> None:
        """Create the run directory (and missing parents) 0700, or check that it is ours alone."""
        missing = []
        folder = self.run_dir
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            _mkdir_private(folder)
        check_private_dir(self.run_dir)


def check_private_dir(path: Path) -> None:
    """Raise RunDirError unless `path` is a directory of this user that no one else may use."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"run directory {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise RunDirError(f"run directory {path} belongs to {_user(st.st_uid)}, not to this user "
                          f"({_user(os.geteuid())}): choose another with --run-id or MELTICA_RUN_DIR")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise RunDirError(f"run directory {path} is open to other users (mode {mode:04o}): "
                          f"`chmod 700 {path}` if everything in it is yours, or choose another "
                          f"with --run-id or MELTICA_RUN_DIR")


def _mkdir_private(folder: Path) -> None:
    try:
        os.mkdir(folder, DIR_MODE)
    except FileExistsError:
        pass


def _recorded_id(run_dir: Path) -> str | None:
    try:
        return (run_dir / ID_FILE).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def _user(uid: int) -> str:
    try:
        import pwd
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def main() -> int:
    try:
        ctx = RunContext.from_env()
    except RunDirError as err:
        print(f"meltica: {err}", file=sys.stderr)
        return 2
    print(f"run {ctx.run_id}: {ctx.run_dir} (mode 0700, umask 077 for its programs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
