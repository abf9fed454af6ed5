"""Configuration: defaults, a file over them, a flag over the file, clear errors."""

import argparse

import pytest

from meltica import config

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


def test_unknown_keys_and_bad_files_are_clear_errors(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text("[prog]\nlatenes_ms = 1\n")
    with pytest.raises(SystemExit):
        config.parse_args(parser(), ["--config", str(f)], "prog")
    assert "latenes_ms" in capsys.readouterr().err
    f.write_text("[dispatch\n")
    with pytest.raises(SystemExit, match="not valid TOML"):
        config.load(f)
    with pytest.raises(SystemExit, match="not found"):
        config.load(tmp_path / "missing.toml")
