"""`python -m bench NAME [args]` runs bench/NAME.py; `python -m bench all` runs them all."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import bench


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                  if not m.name.startswith("_") and m.name != "common")


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench {{{','.join(names + ['all'])}}} [--json] [options]")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        status = 0
        for n in names:
            print(f"\n=== bench {n}", flush=True)
            status |= subprocess.call([sys.executable, "-m", "bench", n, *rest])
        return status
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    return importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
