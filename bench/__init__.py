"""Benchmarks: `python -m bench NAME [--json]`, one module per topology (bench/NAME.py).

Each module has `main(argv) -> int`; with `--json` it prints exactly one JSON object on
stdout (logs go to stderr). Every benchmark measures its baselines in the same run and
reports ratios, and checks its own result (records intact and in order).
"""
