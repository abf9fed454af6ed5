"""One TOML file configures a run; each program reads its own table as flag defaults.

    cfg = load("my.toml")                 # defaults.toml, then my.toml merged over it
    cfg["dispatch"]["lateness_ms"]        # -> 150
    args = parse_args(parser, argv, "dispatch")   # in a program's __main__

`parse_args` looks for `--config FILE` in argv (default: $MELTICA_CONFIG, else only the
built-in defaults), takes the program's table as the parser's defaults, then parses
argv: a flag on the command line wins over the file, the file over the built-ins.
Keys are flag names with underscores; lists become comma-separated strings.

A configuration mistake is something a restart cannot fix, so it has its own exit code,
EX_CONFIG (78, sysexits.h): every program exits with it for bad arguments or a bad
configuration, and neither `make run` (meltica.launcher) nor supervisord
(deploy/supervisord.conf `exitcodes`) restarts a program that did. `check_table` is the
one check of a table's keys and values, used by a program on its own table and by
`python -m meltica run` on every table before anything starts.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tomllib
from pathlib import Path

from events import BadInput

DEFAULTS = Path(__file__).with_name("defaults.toml")
ENV_CONFIG = "MELTICA_CONFIG"
EX_CONFIG = 78  # os.EX_CONFIG: "configuration error"; never restarted


class ConfigError(BadInput):
    """A configuration or command line that no restart can fix; the message says where."""


def merge(base: dict, over: dict) -> dict:
    """`over` merged into `base`, table by table."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read(path: str | os.PathLike) -> dict:
    """One TOML file; ConfigError when it is missing or not TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


def load(path: str | os.PathLike | None = None) -> dict:
    """The built-in defaults with the file at `path` (if any) merged over them."""
    cfg = read(DEFAULTS)
    return merge(cfg, read(path)) if path else cfg


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


def _flag(action: argparse.Action) -> str:
    named = "--" + action.dest.replace("_", "-")
    return named if named in action.option_strings else max(action.option_strings, key=len)


def check_table(parser: argparse.ArgumentParser, table: str, values: dict,
                source: str = "the config") -> dict:
    """The flag defaults of table `values` for `parser`: every key must be one of its
    flags and every value what the flag accepts (its type, its choices; true / false for
    an on/off flag). Raises ConfigError naming the file, the table and each bad key."""
    dests = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    out, problems = {}, []
    for key, value in values.items():
        if isinstance(value, dict):
            continue  # a sub-table ([ingest.okx] under [ingest]) is checked on its own
        action = dests.get(key)
        if action is None:
            near = difflib.get_close_matches(key, list(dests), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"{key}: no such setting{hint}; {parser.prog} has no --{key.replace('_', '-')}")
            continue
        try:
            out[key] = _check_value(action, value)
        except ValueError as err:
            problems.append(f"{key} = {value!r}: {err}")
    if problems:
        raise ConfigError(f"{source}: [{table}] " + "; ".join(problems))
    return out


def _check_value(action: argparse.Action, value):
    if action.nargs == 0:  # store_true / store_false / --x/--no-x
        if not isinstance(value, bool):
            raise ValueError(f"{_flag(action)} is an on/off setting: use true or false")
        return value
    if isinstance(value, (dict, bool)) or (isinstance(value, list) and
                                            any(isinstance(v, (list, dict, bool)) for v in value)):
        raise ValueError(f"{_flag(action)} takes a value, not {type(value).__name__}")
    value = _flag_value(value)
    if action.type is not None and isinstance(value, str):
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
            raise ValueError(f"not a valid value for {_flag(action)}: {err}") from None
    elif action.type is int and not (isinstance(value, int) or
                                     (isinstance(value, float) and value.is_integer())):
        raise ValueError(f"{_flag(action)} takes a whole number")
    elif action.type is int:
        value = int(value)
    elif action.type is float and not isinstance(value, (int, float)):
        raise ValueError(f"{_flag(action)} takes a number")
    elif action.type is None:
        value = str(value)  # what the command line would give
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{_flag(action)} takes one of {', '.join(map(str, action.choices))}")
    return value


def exit_config_error(prog: str, message: str) -> None:
    """Print `prog: config error: message` on stderr and exit with EX_CONFIG."""
    print(f"{prog}: config error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EX_CONFIG)


def cli_args(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """`parser.parse_args(argv)`, with a usage error exiting EX_CONFIG (argparse's is 2)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        if stop.code == 2:
            raise SystemExit(EX_CONFIG) from None
        raise


def parse_args(parser: argparse.ArgumentParser, argv, table: str) -> argparse.Namespace:
    """Parse `argv` with the program's config table as defaults (see the module doc).
    Bad arguments or a bad table exit with EX_CONFIG, the reason on stderr."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=os.environ.get(ENV_CONFIG))
    known, _ = pre.parse_known_args(argv)
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", default=known.config,
                            help="TOML run configuration (default: $MELTICA_CONFIG, else built-ins); "
                                 f"this program reads its [{table}] table")
    try:  # each file checked on its own, so that a message names the file at fault
        values = check_table(parser, table, section(read(DEFAULTS), table), str(DEFAULTS))
        if known.config:
            values.update(check_table(parser, table, section(read(known.config), table), known.config))
    except ConfigError as err:
        exit_config_error(parser.prog, str(err))
    parser.set_defaults(**values)
    return cli_args(parser, argv)
