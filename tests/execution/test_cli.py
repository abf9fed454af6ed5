"""`python -m execution` command line: one venue or several, and per-venue endpoints."""

from __future__ import annotations

import pytest

from execution.__main__ import main, per_venue
from core.config import ConfigError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("argv, fragment", [
    (["--venues", "binance-spot,kraken"], "not tradable: kraken"),
    (["--venues", "binance-spot,binance-spot"], "a venue named twice"),
    (["--venues", "binance-spot", "--rest-url", "okx=http://127.0.0.1:1"], "'okx' is not one of the venues traded"),
])
def test_bad_venue_lists_exit_with_a_config_error_naming_the_fault(argv, fragment, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 78
    assert fragment in capsys.readouterr().err


def test_endpoints_per_venue():
    names = ["binance-spot", "okx"]
    assert per_venue(["binance-spot=http://127.0.0.1:1", "okx=http://127.0.0.1:2/x?a=b"], names, "--rest-url") == {
        "binance-spot": "http://127.0.0.1:1", "okx": "http://127.0.0.1:2/x?a=b"}
    assert per_venue("http://127.0.0.1:1", ["binance-spot"], "--rest-url") == {"binance-spot": "http://127.0.0.1:1"}
    with pytest.raises(ConfigError, match="say which"):
        per_venue(["http://127.0.0.1:1"], names, "--rest-url")


def test_the_execution_table_names_several_venues(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[execution]\nvenues = "binance-spot,kraken"\n')
    with pytest.raises(SystemExit) as e:
        main(["--config", str(cfg)])
    assert e.value.code == 78 and "not tradable: kraken" in capsys.readouterr().err
