# Infracast Identity — `make run` serves on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi

# the test suite's services (override to point elsewhere)
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/9

# the system packages the project needs (Debian names), installed by make when missing:
# xmlsec1 is the binary pysaml2 signs and verifies SAML messages with; the browser test
# drives Debian's chromium (never a downloaded browser)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: install system-deps run test resource-server clean

system-deps:
	@command -v xmlsec1 >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { \
	    echo "make: xmlsec1 is missing and there is no apt-get here; install xmlsec1 (macOS: brew install libxmlsec1)" >&2; \
	    exit 1; }; \
	  echo "make: installing xmlsec1 (Debian package xmlsec1)"; \
	  $(APT) install -y --no-install-recommends xmlsec1 \
	    || { $(APT) update && $(APT) install -y --no-install-recommends xmlsec1; }; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: system-deps $(STAMP)

# installed once; a stale package list is refreshed only when the install needs it
$(CHROMIUM):
	$(APT) install -y --no-install-recommends chromium fonts-dejavu-core \
	  || { $(APT) update && $(APT) install -y --no-install-recommends chromium fonts-dejavu-core; }

run: install
	$(FLASK) db upgrade
	$(FLASK) idp bootstrap
	WEB_CONCURRENCY=1 $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# the reference resource server (examples/resource_server); its settings are in the README
resource-server: install
	$(BIN)/python -m examples.resource_server

test: install $(CHROMIUM)
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
