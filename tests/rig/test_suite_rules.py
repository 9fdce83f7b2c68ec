"""Rules the suite keeps so that it can share a machine (and a Redis) with other runs."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


# Redis's command that empties every database of the server, spelled so that this file does
# not contain it.
FLUSH_EVERY_DB = "flush" + "all"


def test_no_test_or_benchmark_flushes_every_redis_database():
    """Each test run owns a Redis DB number (``tests/settings.py``); emptying every database
    would wipe the other runs' (and a developer's ``make run``) data too. FLUSHDB of its own
    DB only. Benchmarks share the machine's Redis as well, so they keep the rule too."""
    pattern = re.compile(rf"\b{FLUSH_EVERY_DB}\b", re.IGNORECASE)
    offenders = [f"{path.relative_to(TESTS.parent)}:{number}"
                 for folder in (TESTS, TESTS.parent / "bench") for path in folder.rglob("*.py")
                 if path != Path(__file__)
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if pattern.search(line)]
    assert offenders == []


def test_pure_tests_run_with_redis_stopped():
    """Only tests that use the database (or ask for ``redis_db``) get a Redis flush: the
    parser tests run with nothing listening on the Redis port."""
    import os
    import subprocess
    import sys

    from tests.servers.net import find_free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["TEST_REDIS_URL"] = f"redis://127.0.0.1:{find_free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(TESTS / "mailboxes" / "test_imap_parse.py")],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def test_no_assert_hides_which_part_failed():
    """``assert a and b`` reports only that the whole was false: one assert a condition (or
    one comparison of a whole dict or tuple) says which part failed."""
    import ast

    offenders = [f"{path.relative_to(TESTS)}:{node.lineno}"
                 for path in TESTS.rglob("*.py")
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Assert) and isinstance(node.test, ast.BoolOp)
                 and isinstance(node.test.op, ast.And)]
    assert offenders == []


def _redis_url_of(slot: str, worker: str) -> tuple[int, str]:
    """What tests/settings.py makes of a slot and an xdist worker name: its exit code, and
    the REDIS_URL it set (or its refusal)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(EMAILAPI_TEST_SLOT=slot, PYTEST_XDIST_WORKER=worker)
    result = subprocess.run(
        [sys.executable, "-c", "import os, tests.settings; print(os.environ['REDIS_URL'])"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_every_slot_and_worker_gets_a_redis_db_of_its_own():
    """Each run flushes its own Redis DB before its tests: two workers (or two slots) sharing
    one would empty each other's mid-test. Four slots of four workers use the 16 DBs once."""
    urls = [_redis_url_of(str(slot), f"gw{index}") for slot in range(4) for index in range(4)]
    assert [code for code, _url in urls] == [0] * 16
    assert len({url for _code, url in urls}) == 16


def test_a_slot_or_worker_past_the_db_numbers_is_refused_in_words():
    for slot, worker in (("4", "gw0"), ("0", "gw4")):
        code, output = _redis_url_of(slot, worker)
        assert code != 0, output
        assert "EMAILAPI_TEST_SLOT must be 0-3 and the test workers at most 4" in output
