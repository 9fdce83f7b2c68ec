"""Fixtures the emailapi tests borrow: the webhook receivers and dispatchers (``/metrics``
after a delivered webhook), the hostile HTTP servers (the shared HTTP client's tests); and the
migrated SQLite database the tests of ``manage.py serve`` start from."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.webhooks.conftest import (  # noqa: F401 (fixtures)
    hostile_http,
    start_dispatcher,
    webhook_receiver,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Path:
    """A database ``manage.py migrate`` made, once per test worker: each test starts from a
    copy of it (migrating costs about 7 s a time, more on a loaded machine)."""
    path = tmp_path_factory.mktemp("migrated") / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=f"sqlite:///{path}", EMAILAPI_VAR_DIR=str(path.parent / "var"),
               EMAILAPI_SECRET="serve-test-secret-0123456789")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=600)
    return path
