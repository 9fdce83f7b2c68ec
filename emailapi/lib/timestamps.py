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
