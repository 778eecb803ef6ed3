# Infracast Identity — `make run` serves on http://127.0.0.1:8000, `make test` runs the suite,
# `make bench` measures throughput (docs/benchmarks.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi

# the test suite's services (override to point elsewhere)
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/9

# `make bench` (docs/benchmarks.md): its own schema and key prefix in these (override to point elsewhere)
BENCH_DATABASE_URL ?= $(TEST_DATABASE_URL)
BENCH_REDIS_URL    ?= $(TEST_REDIS_URL)
BENCH_STAMP        := $(VENV)/.bench-stamp

# the system packages the project needs (Debian names), installed when missing:
# xmlsec1 is the binary pysaml2 signs and verifies SAML messages with (`make install`),
# wrk the load generator of `make bench`, and the browser test drives Debian's chromium
# (never a downloaded browser)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# $(call apt_install,COMMAND,PACKAGE,HINT): install Debian's PACKAGE when COMMAND is missing
apt_install = command -v $(1) >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 || { \
	    echo "make: $(1) is missing and there is no apt-get here; install $(1)$(3)" >&2; \
	    exit 1; }; \
	  echo "make: installing $(1) (Debian package $(2))"; \
	  $(APT) install -y --no-install-recommends $(2) \
	    || { $(APT) update && $(APT) install -y --no-install-recommends $(2); }; }

.PHONY: install system-deps bench-deps run test bench resource-server clean

system-deps:
	@$(call apt_install,xmlsec1,xmlsec1, (macOS: brew install libxmlsec1))

bench-deps:
	@$(call apt_install,wrk,wrk, (macOS: brew install wrk))

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

# not part of `make test`: a few minutes of load on this machine (docs/benchmarks.md)
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: install bench-deps $(BENCH_STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_REDIS_URL=$(BENCH_REDIS_URL) \
	  $(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
