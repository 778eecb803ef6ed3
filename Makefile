# Infracast Identity — `make run` serves on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi

# the test suite's services (override to point elsewhere)
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/9

# the browser test drives Debian's chromium (never a downloaded browser)
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT      := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: install run test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# installed once; a stale package list is refreshed only when the install needs it
$(CHROMIUM):
	$(APT) install -y --no-install-recommends chromium fonts-dejavu-core \
	  || { $(APT) update && $(APT) install -y --no-install-recommends chromium fonts-dejavu-core; }

run: install
	$(FLASK) db upgrade
	$(FLASK) idp bootstrap
	WEB_CONCURRENCY=1 $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install $(CHROMIUM)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
