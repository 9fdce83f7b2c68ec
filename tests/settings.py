"""Settings for the test suite: real PostgreSQL and Redis, each pytest-xdist worker isolated.

Defaults can be overridden from the environment (``TEST_DATABASE_URL``, ``TEST_REDIS_URL``).
pytest-django creates a throwaway database (``test_emailapi``, plus a worker suffix under
xdist) and drops it afterwards. Redis DB numbers 15, 14, ... are reserved for tests, one per
xdist worker (four at most), and flushed by the ``redis_db`` fixture.

``EMAILAPI_TEST_SLOT=N`` (0-3, up to four xdist workers each) lets several suites run at once (two
developers, or a benchmark beside a test run): slot N gets its own database names and Redis DBs
15-4N down to 12-4N.
"""

import os
import tempfile

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(_worker[2:]) if _worker[2:].isdigit() else 0
_slot = int(os.environ.get("EMAILAPI_TEST_SLOT", "0") or 0)
_db_name = "test_emailapi" if _slot == 0 else f"test_emailapi_s{_slot}"

# ``EMAILAPI_TEST_DATABASE=sqlite`` runs on the embedded SQLite database with the settings
# ``make run`` uses by default (no DATABASE_URL): ``make test`` runs the tests marked
# ``sqlite`` (API and worker paths) that way too.
_sqlite = os.environ.get("EMAILAPI_TEST_DATABASE", "").lower() == "sqlite"
os.environ["DATABASE_URL"] = "" if _sqlite else os.environ.get(
    "TEST_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/postgres?test_name={_db_name}"
)
_redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
WORKERS_PER_SLOT = 4
if not 0 <= _slot < 16 // WORKERS_PER_SLOT or _index >= WORKERS_PER_SLOT:
    # Past these, two runs (or two workers) would share a Redis DB and flush each other's.
    raise SystemExit(f"EMAILAPI_TEST_SLOT must be 0-{16 // WORKERS_PER_SLOT - 1} and the test "
                     f"workers at most {WORKERS_PER_SLOT} (got slot {_slot}, worker {_worker})")
os.environ["REDIS_URL"] = f"{_redis_base.rstrip('/')}/{15 - (_slot * WORKERS_PER_SLOT + _index)}"
os.environ.setdefault("EMAILAPI_SECRET", "test-secret-for-the-suite-only-0123456789")
os.environ["EMAILAPI_VAR_DIR"] = os.path.join(tempfile.gettempdir(), f"emailapi-test-{_slot}-{_worker}")
os.environ.setdefault("EMAILAPI_RATE_LIMIT", "0")
# The test mail servers are on loopback, which mailboxes may only use when this is on; set in
# the environment so the processes tests start (daphne, workers) inherit it. Tests of the
# refusal turn it off with override_settings.
os.environ["EMAILAPI_MAIL_ALLOW_PRIVATE"] = "true"
# Web processes the suite starts hold database locks on purpose in some tests; the pool
# watchdog (emailapi/watchdog.py) is switched on only by the tests of it. Importing
# emailapi.asgi (the web entry point) shortens this process's pool wait to
# EMAILAPI_DB_POOL_WAIT: in the suite it stays the workers' long wait (tests run workers in
# threads of this process), and the tests of the short wait set it for their web server.
os.environ.setdefault("EMAILAPI_DB_POOL_WATCHDOG", "0")
os.environ.setdefault("EMAILAPI_DB_POOL_WAIT", "20")
# Pub/sub ignores Redis DB numbers: keep xdist workers (and concurrent runs) apart.
os.environ["EMAILAPI_REDIS_PREFIX"] = f"emailapi-test-{_slot}-{_worker}-{os.getpid()}"

from emailapi.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

if _sqlite:
    # A file, as ``make run``'s (WAL, shared by the worker threads), not pytest-django's
    # in-memory default; in this run's own directory.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405
