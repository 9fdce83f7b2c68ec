"""How the API writes a moment: EmailEngine's way (JavaScript's ``toISOString``), so clients
written for it compare and slice our dates as they did its.

    2025-01-01T10:00:00.000Z    UTC, milliseconds, Z
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_iso(value: datetime) -> str:
    """``value`` in UTC to the millisecond; a naive one is taken as UTC (a Date header
    without a zone, ``-0000``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_row(value) -> datetime | None:
    """A timestamp column as a raw (prepared) statement returned it, aware: PostgreSQL's
    driver gives an aware datetime; SQLite's a naive one (Django's converter) or its text,
    both in UTC. None stays None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
