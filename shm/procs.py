"""Process identity and liveness, as another process sees it (Linux /proc).

A pid alone is not an identity: pids are reused. We pair it with the process's start
time in clock ticks (field 22 of /proc/<pid>/stat), which a reused pid cannot match.
"""

import os


def start_ticks(pid: int) -> int:
    """Start time of `pid` in clock ticks since boot; 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has exited; only its exit status is left
        return 0
    return int(fields[19])


def is_alive(pid: int, ticks: int) -> bool:
    """True while the process `pid` that started at `ticks` runs (not exited, not a zombie)."""
    if pid <= 0:
        return False
    now = start_ticks(pid)
    return now != 0 and (ticks == 0 or now == ticks)


MY_PID = os.getpid()


def my_identity() -> tuple[int, int]:
    """(pid, start ticks) of the calling process; re-read after fork."""
    pid = os.getpid()
    return pid, start_ticks(pid)
