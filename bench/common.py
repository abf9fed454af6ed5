"""Helpers shared by the benchmarks: percentiles, tables, JSON output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson


def percentiles_us(samples_ns: np.ndarray, prefix: str) -> dict:
    """p50 / p99 / p99.9 / max of nanosecond samples, in microseconds."""
    if len(samples_ns) == 0:
        return {f"{prefix}_p50_us": None, f"{prefix}_p99_us": None, f"{prefix}_p999_us": None}
    p50, p99, p999 = np.percentile(samples_ns, [50, 99, 99.9]) / 1000.0
    return {f"{prefix}_p50_us": round(float(p50), 2), f"{prefix}_p99_us": round(float(p99), 2),
            f"{prefix}_p999_us": round(float(p999), 2),
            f"{prefix}_max_us": round(float(samples_ns.max()) / 1000.0, 2)}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def emit(result: dict, as_json: bool, title: str) -> None:
    """Print one JSON object on stdout (--json), or a two-column table."""
    if as_json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
        return
    print(title)
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:,.2f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        print(f"  {key:<{width}}  {value}")


def stop_processes(procs, timeout_s: float = 5.0) -> None:
    """SIGTERM every helper process still running, then wait; SIGKILL one that lingers."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
