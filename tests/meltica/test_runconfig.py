"""The run's configuration is checked, table by table, before anything starts."""

import re

import pytest

from core import config
from meltica import runconfig

pytestmark = pytest.mark.timeout(30)


def test_the_built_in_defaults_pass_the_check_of_every_program():
    cfg = runconfig.load_checked()
    checked = runconfig.check(cfg, "defaults")
    assert set(checked) == {"run", "simulator", "ingest.binance-spot", "ingest.binance-usdm", "ingest.okx", "dispatch",
                            "execution", "strategy"}
    assert checked["dispatch"]["lateness_ms"] == 150 and checked["ingest.okx"]["depth"] == 20


def test_a_typo_names_the_file_the_table_and_the_key_and_every_problem_is_listed(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text('[dispatch]\nlatenes_ms = 10\n[ingest.okx]\nsymbol = "BTC-USDT"\ndepth = "deep"\n'
                 '[ingest.okex]\ndepth = 5\n[strategy]\norders = "yes"\n[run]\nmetrics_port = "x"\n'
                 '[dispach]\nlateness_ms = 1\n')
    with pytest.raises(config.ConfigError) as err:
        runconfig.load_checked(f)
    lines = str(err.value).splitlines()
    expect = [
        f"{f}: [dispatch] latenes_ms: no such setting (did you mean lateness_ms?); "
        "python -m dispatch has no --latenes-ms",
        f"{f}: [ingest.okx] symbol: no such setting (did you mean symbols?); python -m ingest has no "
        "--symbol; depth = 'deep': not a valid value for --depth",
        f"{f}: [ingest.okex]: no such venue; known: binance-spot",
        f"{f}: [strategy] orders = 'yes': --orders is an on/off setting: use true or false",
        f"{f}: [run] metrics_port = 'x': not a valid value for --metrics-port",
        f"{f}: [dispach]: no such table; the tables are [run], [simulator], [dispatch]",
    ]
    assert len(lines) == len(expect), lines
    for line, start in zip(lines, expect):
        assert line.startswith(start), (line, start)


def test_a_typo_in_the_defaults_file_is_attributed_to_it(tmp_path, monkeypatch):
    defaults = tmp_path / "defaults.toml"
    defaults.write_text(config.DEFAULTS.read_text().replace("lateness_ms = 150", "latenes_ms = 150"))
    monkeypatch.setattr(config, "DEFAULTS", defaults)
    mine = tmp_path / "my.toml"
    mine.write_text("[dispatch]\nflush_ms = 20\n")
    with pytest.raises(config.ConfigError, match=re.escape(f"{defaults}: [dispatch] latenes_ms: no such")):
        runconfig.load_checked(mine)


def test_the_pipeline_refuses_a_bad_configuration_before_it_starts_anything(tmp_path):
    from meltica.pipeline import Pipeline
    from core.run import RunContext

    cfg = config.load()
    cfg["ingest"]["okx"]["watchdg"] = 5
    ctx = RunContext("never", tmp_path / "run")
    with pytest.raises(config.ConfigError, match=r"\[ingest.okx\] watchdg: no such setting"):
        Pipeline(cfg, ctx)
    assert not ctx.run_dir.exists()
