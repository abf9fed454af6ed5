"""One TOML file configures a run; each program reads its own table as flag defaults.

    cfg = load("my.toml")                 # defaults.toml, then my.toml merged over it
    cfg["dispatch"]["lateness_ms"]        # -> 150
    args = parse_args(parser, argv, "dispatch")   # in a program's __main__

`parse_args` looks for `--config FILE` in argv (default: $MELTICA_CONFIG, else only the
built-in defaults), takes the program's table as the parser's defaults, then parses
argv: a flag on the command line wins over the file, the file over the built-ins.
Keys are flag names with underscores; lists become comma-separated strings.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

DEFAULTS = Path(__file__).with_name("defaults.toml")
ENV_CONFIG = "MELTICA_CONFIG"


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load(path: str | os.PathLike | None = None) -> dict:
    """The built-in defaults with the file at `path` (if any) merged over them."""
    with open(DEFAULTS, "rb") as f:
        cfg = tomllib.load(f)
    if path:
        try:
            with open(path, "rb") as f:
                cfg = _merge(cfg, tomllib.load(f))
        except FileNotFoundError:
            raise SystemExit(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as err:
            raise SystemExit(f"config file {path} is not valid TOML: {err}") from None
    return cfg


def section(cfg: dict, dotted: str) -> dict:
    """The table at `dotted` ("ingest.okx"), {} if absent."""
    node = cfg
    for part in dotted.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _flag_value(value):
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value


def parse_args(parser: argparse.ArgumentParser, argv, table: str) -> argparse.Namespace:
    """Parse `argv` with the program's config table as defaults (see the module doc)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=os.environ.get(ENV_CONFIG))
    known, _ = pre.parse_known_args(argv)
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", default=known.config,
                            help="TOML run configuration (default: $MELTICA_CONFIG, else built-ins); "
                                 f"this program reads its [{table}] table")
    values = section(load(known.config), table)
    dests = {a.dest: a for a in parser._actions}
    unknown = sorted(k for k in values if k not in dests and not isinstance(values[k], dict))
    if unknown:
        parser.error(f"[{table}] in the config has keys that are no flag of this program: "
                     f"{', '.join(unknown)}")
    parser.set_defaults(**{k: _flag_value(v) for k, v in values.items() if k in dests})
    return parser.parse_args(argv)
