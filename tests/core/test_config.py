"""Configuration: defaults, a file over them, a flag over the file, clear errors."""

import argparse
import re

import pytest

from core import config

pytestmark = pytest.mark.timeout(10)


def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--lateness-ms", type=float, default=1.0)
    p.add_argument("--instruments", default="")
    return p


def test_built_in_defaults_cover_every_program():
    cfg = config.load()
    for table in ("run", "simulator", "ingest.binance-spot", "ingest.okx", "dispatch", "execution", "strategy"):
        assert config.section(cfg, table), table


def test_a_flag_wins_over_the_file_and_the_file_over_the_built_ins(tmp_path, monkeypatch):
    monkeypatch.delenv(config.ENV_CONFIG, raising=False)
    f = tmp_path / "run.toml"
    f.write_text('[prog]\nlateness_ms = 99\ninstruments = ["A-B", "C-D"]\n')
    args = config.parse_args(parser(), ["--config", str(f)], "prog")
    assert args.lateness_ms == 99 and args.instruments == "A-B,C-D"
    args = config.parse_args(parser(), ["--config", str(f), "--lateness-ms", "5"], "prog")
    assert args.lateness_ms == 5
    monkeypatch.setenv(config.ENV_CONFIG, str(f))
    assert config.parse_args(parser(), [], "prog").lateness_ms == 99


def test_unknown_keys_and_bad_values_exit_with_ex_config_naming_the_file_table_and_key(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text("[prog]\nlatenes_ms = 1\n")
    with pytest.raises(SystemExit) as stop:
        config.parse_args(parser(), ["--config", str(f)], "prog")
    assert stop.value.code == config.EX_CONFIG
    err = capsys.readouterr().err
    assert f"{f}: [prog] latenes_ms: no such setting (did you mean lateness_ms?)" in err
    f.write_text('[prog]\nlateness_ms = "soon"\n')
    with pytest.raises(SystemExit) as stop:
        config.parse_args(parser(), ["--config", str(f)], "prog")
    assert stop.value.code == config.EX_CONFIG
    assert "[prog] lateness_ms = 'soon': not a valid value for --lateness-ms" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # a bad flag on the command line: the same exit code
        config.parse_args(parser(), ["--lateness-ms", "x"], "prog")
    assert stop.value.code == config.EX_CONFIG


def test_bad_files_are_config_errors(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[dispatch\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(f)
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml")


def test_values_are_checked_against_the_flag_type_and_choices():
    p = argparse.ArgumentParser(prog="p")
    p.add_argument("--n", type=int)
    p.add_argument("--x", type=float)
    p.add_argument("--mode", choices=("on", "off"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--names")
    assert config.check_table(p, "t", {"n": 3.0, "x": 1, "mode": "on", "quiet": True, "names": ["a", "b"]}) == \
        {"n": 3, "x": 1, "mode": "on", "quiet": True, "names": "a,b"}
    for values, message in (({"n": 2.5}, "n = 2.5: --n takes a whole number"),
                            ({"n": "ten"}, "n = 'ten': not a valid value for --n"),
                            ({"x": "fast"}, "x = 'fast': not a valid value for --x"),
                            ({"mode": "maybe"}, "mode = 'maybe': --mode takes one of on, off"),
                            ({"quiet": "yes"}, "quiet = 'yes': --quiet is an on/off setting"),
                            ({"n": True}, "n = True: --n takes a value, not bool")):
        with pytest.raises(config.ConfigError, match=re.escape(f"my.toml: [t] {message}")):
            config.check_table(p, "t", values, "my.toml")


def test_a_typo_in_the_built_in_defaults_names_the_defaults_file(tmp_path, monkeypatch, capsys):
    defaults = tmp_path / "defaults.toml"
    defaults.write_text("[prog]\nlateness_ms = 1\ninstrumnets = \"A-B\"\n")
    monkeypatch.setattr(config, "DEFAULTS", defaults)
    monkeypatch.delenv(config.ENV_CONFIG, raising=False)
    with pytest.raises(SystemExit) as stop:
        config.parse_args(parser(), [], "prog")
    assert stop.value.code == config.EX_CONFIG
    assert f"{defaults}: [prog] instrumnets: no such setting (did you mean instruments?)" in capsys.readouterr().err
