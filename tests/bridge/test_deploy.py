"""deploy/hosts: the per-host supervisord configurations name real programs with valid
arguments, and follow the restart rules of deploy/supervisord.conf."""

from __future__ import annotations

import configparser
import shlex

import pytest

from bridge.__main__ import parser
from core.config import EX_CONFIG
from tests.conftest import REPO

HOSTS = REPO / "deploy" / "hosts"


@pytest.mark.parametrize("conf, needed", [("venues.conf", {"bridge-md-out", "ingest-okx"}),
                                          ("trading.conf", {"bridge-md-in", "bridge-exec-out", "bridge-ctl-serve",
                                                            "bridge-ctl-serve-dispatch", "execution", "dispatch"}),
                                          ("strategy.conf", {"bridge-ctl-expose", "bridge-exec-in", "strategy-demo"})])
def test_host_configs(conf, needed):
    cp = configparser.RawConfigParser()
    cp.read(HOSTS / conf)
    progs = {s.split(":", 1)[1]: dict(cp.items(s)) for s in cp.sections() if s.startswith("program:")}
    assert needed <= set(progs)
    for name, opts in progs.items():
        assert opts["autorestart"] == "unexpected" and opts["exitcodes"] == str(EX_CONFIG), name
        argv = shlex.split(opts["command"].replace("%(ENV_MELTICA_NATS)s", "nats://127.0.0.1:4222"))
        assert argv[1] == "-m" and (REPO / argv[2].split(".")[0]).is_dir(), name
        if argv[2] == "bridge":
            args = parser().parse_args(argv[3:])
            assert args.nats == ["nats://127.0.0.1:4222"] and args.user, name


def test_bad_arguments_are_a_configuration_error():
    from bridge.__main__ import main
    assert main(["md-out", "--nats", "nats://127.0.0.1:1"]) == EX_CONFIG  # no --ring
