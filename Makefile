# Provisio: `make run` sets everything up and serves; `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
# A local run serves plain HTTP on loopback: cookies cannot be Secure there, and links, QR codes and
# activation files point at this server (until Settings stores another public base URL).
# E-mail goes to a local catcher that keeps it for the console's Caught e-mail page (MAIL_PORT=25
# CAUGHT_MAIL_DIR= make run sends through a relay on this machine instead).
MAIL_CATCHER_PORT ?= 1025
RUN_ENV := PROVISIO_ENV=$${PROVISIO_ENV:-development} SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-0} \
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} MAIL_PORT=$${MAIL_PORT:-$(MAIL_CATCHER_PORT)} \
	CAUGHT_MAIL_DIR=$${CAUGHT_MAIL_DIR-$(CURDIR)/instance/caught-mail}

# `make sip` runs a local SIP server (Kamailio) on Provisio's SQLite registrar files; `make run SIP=1`
# starts Provisio wired to it (docs/operations.md, "Running the SIP server").
SIP_ENV := REGISTRAR_DATABASE_URL=sqlite:///$(CURDIR)/instance/registrar.db \
	REGISTRAR_LOCATION_URL=sqlite:///$(CURDIR)/instance/registrar-location.db \
	REGISTRAR_CTL=unix:$(CURDIR)/instance/kamailio-ctl
ifdef SIP
RUN_ENV += $(SIP_ENV)
endif

.PHONY: run setup test bench seed sip clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
	$(RUN_ENV) $(FLASK) setup

run: setup
	@echo "Provisio console: http://$(HOST):$(PORT)/  (Ctrl-C stops the server, the worker and the mail catcher)"
	@$(PY) -m tools.mail_catcher --port $(MAIL_CATCHER_PORT) --folder instance/caught-mail & catcher=$$!; \
	$(RUN_ENV) $(FLASK) worker & worker=$$!; \
	trap 'kill $$worker $$catcher 2>/dev/null' EXIT INT TERM; \
	$(RUN_ENV) $(FLASK) run --host $(HOST) --port $(PORT)

seed: setup
	$(RUN_ENV) $(FLASK) seed-demo

sip: setup
	$(RUN_ENV) $(SIP_ENV) $(FLASK) registrar-run

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	env -u TEST_DATABASE_URL $(VENV)/bin/pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then echo "== again on PostgreSQL"; $(VENV)/bin/pytest -p no:cacheprovider; fi

bench: $(VENV)/.installed
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
