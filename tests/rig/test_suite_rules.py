"""Rules the suite keeps so that it can share a machine (and a Redis) with other runs."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_flushes_every_redis_database():
    """Each test run owns a Redis DB number (``tests/settings.py``); FLUSHALL would wipe the
    other runs' (and a developer's ``make run``) data too. FLUSHDB of its own DB only."""
    offenders = [f"{path.relative_to(TESTS)}:{number}"
                 for path in TESTS.rglob("*.py") if path != Path(__file__)
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if re.search(r"\.flushall\s*\(|FLUSHALL", line, re.IGNORECASE)]
    assert offenders == []
