# Every target installs what it needs into .venv first (created when missing, refreshed
# when pyproject.toml changes), so a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test bench run clean-shm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench all

clean-shm: $(STAMP)
	$(PY) -m shm.cleanup --all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
