# Every target installs what it needs into .venv first (created when missing, refreshed
# when pyproject.toml changes; the C order book, marketdata/_book.c, is rebuilt when it
# changes), so a fresh clone needs nothing but python3, make and a C compiler.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: test bench run supervise clean-shm clean

$(STAMP): pyproject.toml setup.py marketdata/_book.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The benchmark baselines (cryptofeed) are installed only for benchmarks.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench all

# The whole pipeline on the local venue simulator, with a live view: make run ARGS="--help"
run: $(STAMP)
	$(PY) -m meltica run $(ARGS)

# The same programs under supervisord (restart on failure); Ctrl-C stops them all.
# run/prod is created 0700, or refused when another user could use it (core.run).
supervise: $(STAMP)
	MELTICA_RUN=prod MELTICA_RUN_DIR=run/prod $(PY) -m core.run
	umask 077 && mkdir -p run/prod/logs
	-umask 077 && $(VENV)/bin/supervisord -c deploy/supervisord.conf
	$(PY) -m shm.cleanup --run prod

clean-shm: $(STAMP)
	$(PY) -m shm.cleanup --all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
