"""The run's configuration, checked table by table against the program that reads it,
before anything starts (`python -m meltica run`, `Pipeline`).

    cfg = load_checked("my.toml")   # defaults.toml and my.toml each checked, then merged

Each table belongs to one reader: [run] and [simulator] to the pipeline itself, [dispatch],
[execution], [strategy] and [ingest.<venue>] to that program, whose own flags are the
schema (`core.config.check_table`: every key a flag, every value what the flag takes).
A mistake is a ConfigError that names the file, the table and the key, so a typo stops
the run at once instead of putting a program into a restart loop.
"""

from __future__ import annotations

import argparse
import os

from core import config
from core.config import ConfigError, check_table, merge, read


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="[run] of python -m meltica run", add_help=False)
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--live-feeds", action="store_true")
    p.add_argument("--orders", action=argparse.BooleanOptionalAction)
    p.add_argument("--trade-venues", help="the venues execution trades, comma-separated")
    p.add_argument("--venues", help="the [ingest.<venue>] tables that run, comma-separated (default: all)")
    return p


def _simulator_parser() -> argparse.ArgumentParser:
    """What the pipeline passes to the simulator from [simulator] (`venues` is
    informative: the run's simulator serves the venues of its [ingest.*] tables)."""
    p = argparse.ArgumentParser(prog="[simulator] of python -m meltica run", add_help=False)
    p.add_argument("--venues")
    p.add_argument("--instruments", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--seed", type=int)
    return p


def _dispatch() -> argparse.ArgumentParser:
    from dispatch.__main__ import parser
    return parser()


def _execution() -> argparse.ArgumentParser:
    from execution.__main__ import parser
    return parser()


def _strategy() -> argparse.ArgumentParser:
    from strategies.demo import parser
    return parser()


def _ingest() -> argparse.ArgumentParser:
    from ingest.__main__ import parser
    return parser()


def _ingest_venues() -> list[str]:
    from ingest.__main__ import VENUES
    return VENUES


PARSERS = {"run": _run_parser, "simulator": _simulator_parser, "dispatch": _dispatch,
           "execution": _execution, "strategy": _strategy}


def check(cfg: dict, source: str) -> dict:
    """Check every table of `cfg` (read from `source`); return the checked values of
    each table by name ("ingest.okx"). Raises ConfigError with every problem found."""
    problems, out = [], {}
    for name, table in cfg.items():
        if name == "ingest" and isinstance(table, dict):
            venues = _ingest_venues()
            for venue, sub in table.items():
                if not isinstance(sub, dict):
                    problems.append(f"{source}: [ingest] {venue}: not a table; a venue's settings "
                                    f"go in [ingest.<venue>] ({', '.join(venues)})")
                elif venue not in venues:
                    problems.append(f"{source}: [ingest.{venue}]: no such venue; known: {', '.join(venues)}")
                else:
                    _check_one(problems, out, _ingest(), f"ingest.{venue}", sub, source)
        elif name in PARSERS and isinstance(table, dict):
            _check_one(problems, out, PARSERS[name](), name, table, source)
        else:
            what = "table" if isinstance(table, dict) else "key"
            problems.append(f"{source}: [{name}]: no such {what}; the tables are "
                            f"{', '.join(f'[{t}]' for t in PARSERS)}, [ingest.<venue>]")
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _check_one(problems: list, out: dict, parser, table: str, values: dict, source: str) -> None:
    try:
        out[table] = check_table(parser, table, values, source)
    except ConfigError as err:
        problems.append(str(err))


def load_checked(path: str | os.PathLike | None = None) -> dict:
    """defaults.toml, then the file at `path` merged over it, each checked on its own
    (so that a message names the file at fault)."""
    sources = [config.DEFAULTS, path] if path else [config.DEFAULTS]
    cfg, problems = {}, []
    for source in sources:
        raw = read(source)
        try:
            check(raw, str(source))
        except ConfigError as err:
            problems.append(str(err))
        cfg = merge(cfg, raw)
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg
