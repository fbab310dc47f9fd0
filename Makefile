# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run ui test test-fast bench eval-beir eval-dev browser clean

# The venv is (re)built when pyproject.toml changes. torch is pinned first: 2.13.0 is the
# CPU build here; an unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Chromium for the browser tests comes from Debian (tools that download their own browser fail here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(VENV)/bin/assistant ingest data/
	$(VENV)/bin/assistant ui

test: install browser
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
