# emailapi: the two commands a newcomer needs are `make run` and `make test`.
# Everything is installed into .venv from the pinned versions in .ci/requirements.lock.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
LOCK   := .ci/requirements.lock
# Three test workers on two cores: most tests wait on servers, deadlines and backoffs (a run
# with two used about 40 % of the machine). ``worksteal`` lets a worker that ran out take half
# of another's remaining tests: with ``load`` one worker sat idle for the last 3-4 minutes
# while the other worked through the long worker tests it had been handed. At most four
# (tests/settings.py gives each its own Redis DB).
TEST_WORKERS ?= 3
PYTEST_DIST := -n $(TEST_WORKERS) --dist worksteal

.PHONY: run test install install-test system-test-deps lock bench screenshots clean

run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py serve

# The tests marked ``sqlite`` (API and worker paths) run a second time on SQLite, with the
# database settings ``make run`` uses by default (tests/settings.py).
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): each
# worker, and each process a test starts, would otherwise compile the project and rewrite the
# tests' asserts again (collection took 12 s of CPU per worker instead of 3.4).
test: export PYTHONDONTWRITEBYTECODE =
test: install-test system-test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_DIST) $(PYTEST_ARGS)
	EMAILAPI_TEST_DATABASE=sqlite $(PY) -m pytest $(PYTEST_DIST) -m sqlite $(PYTEST_ARGS)

install: $(VENV)/.installed $(VENV)/.native
install-test: $(VENV)/.installed-test $(VENV)/.native

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(PY)
	$(PIP) install -q -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml $(LOCK)
	$(PIP) install -q -c $(LOCK) -e '.[test]'
	touch $@

# FETCH parsing and index rows, compiled (Cython, next to the sources): the tokenizer in C
# (_tokens.pyx, about five times faster than parse.py's Python one), header values in C
# (_headers.pyx: RFC 2047 words, dates, message ids, addresses), a response's items and a
# message's MessageMeta in C (_meta.pyx: item names, BODYSTRUCTURE, the envelope's fields),
# parse.py itself (the same source, about a third less time), COPY rows in C
# (emailapi/lib/_copy_text.pyx) and history rows' COPY lines straight from the parsed message
# (mailboxes/sync/_row_lines.pyx).
# Without a C compiler the Python code runs (a warning says so; `make test` checks that the
# compiled modules are in use); a compiled module older than its source is never loaded
# (mailboxes/imap/__init__.py, emailapi/lib/copy_text.py, mailboxes/sync/row_lines.py).
NATIVE_SOURCES := mailboxes/imap/_tokens.pyx mailboxes/imap/_headers.pyx \
	mailboxes/imap/_meta.pyx mailboxes/imap/parse.py \
	emailapi/lib/_copy_text.pyx mailboxes/sync/_row_lines.pyx

$(VENV)/.native: $(NATIVE_SOURCES) emailapi/lib/_copy_text.pxd $(VENV)/.installed
	@echo "Compiling $(NATIVE_SOURCES) (Cython)"
	@if $(VENV)/bin/cythonize -q -i -3 -j 2 -X annotation_typing=False $(NATIVE_SOURCES) \
			>$(VENV)/native.log 2>&1; then \
		touch $@; \
	else \
		echo "warning: FETCH parsing was not compiled (see $(VENV)/native.log; a C compiler and"; \
		echo "Python's headers are needed): the Python code runs (a first index 1.4x as long)"; \
		rm -f mailboxes/imap/_tokens.*.so mailboxes/imap/_headers.*.so \
			mailboxes/imap/_meta.*.so mailboxes/imap/parse.*.so \
			emailapi/lib/_copy_text.*.so mailboxes/sync/_row_lines.*.so; \
	fi
	@rm -f mailboxes/imap/_tokens.c mailboxes/imap/_headers.c mailboxes/imap/_meta.c \
		mailboxes/imap/parse.c \
		emailapi/lib/_copy_text.c mailboxes/sync/_row_lines.c

# Dovecot is the real IMAP server the suite talks to (Debian's dovecot-imapd); Playwright
# drives Debian's chromium (browser downloads are not needed, nor allowed in CI); Node runs
# hoodiecrow-imap, the Gmail (X-GM-EXT-1) test server (Debian's nodejs and npm; its npm
# package is installed by the tests from tests/servers/gmail_imap/package-lock.json).
system-test-deps:
	@if [ ! -x /usr/sbin/dovecot ]; then \
		echo "Installing dovecot-imapd (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing chromium for the dashboard's browser tests (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "Installing nodejs and npm for the Gmail test server (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	fi

# Re-resolve the newest versions allowed by pyproject.toml and pin them.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -e '.[test]'
	{ echo "# Exact versions installed by 'make' (pip install -c). Regenerate with 'make lock'."; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e'; } > $(LOCK)
	rm -rf .venv-lock

bench: install-test system-test-deps
	$(PY) bench/run.py

# Every dashboard page at 1280x800 and 390x844 under var/shots/ (tests/dashboard/screenshots.py:
# real servers, seeded data, Debian's chromium).
screenshots: install-test system-test-deps
	$(PY) -m pytest -q -s tests/dashboard/screenshots.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var build mailboxes/imap/*.c mailboxes/imap/*.so emailapi/lib/*.c emailapi/lib/*.so \
		mailboxes/sync/*.c mailboxes/sync/*.so
