"""Dates as the API and EmailEngine-format webhooks write them (``emailapi.lib.timestamps``):
JavaScript's ``toISOString``, so a client written for EmailEngine compares and slices ours as
it did its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from emailapi.lib.timestamps import utc_iso
from mailboxes.message_fields import iso
from webhooks.payloads import engine_date

CASES = [
    (datetime(2025, 1, 1, 10, 0, tzinfo=UTC), "2025-01-01T10:00:00.000Z"),
    (datetime(2025, 1, 1, 10, 0, 0, 999999, tzinfo=UTC), "2025-01-01T10:00:00.999Z"),  # cut, as JS
    (datetime(2024, 3, 5, 11, 30, tzinfo=timezone(timedelta(hours=2))), "2024-03-05T09:30:00.000Z"),
    (datetime(2024, 3, 5, 9, 30, 1, 5000), "2024-03-05T09:30:01.005Z"),  # no zone ("-0000"): UTC
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
]


@pytest.mark.parametrize(("moment", "written"), CASES)
def test_a_moment_is_written_in_utc_to_the_millisecond(moment, written):
    assert utc_iso(moment) == written


@pytest.mark.parametrize(("moment", "written"), CASES)
def test_the_api_and_the_emailengine_payloads_write_it_alike(moment, written):
    assert (iso(moment), engine_date(moment)) == (written, written)


def test_no_moment_is_none_and_a_payloads_text_date_is_rewritten():
    assert iso(None) is None
    assert engine_date("2024-03-05T11:30:00+02:00") == "2024-03-05T09:30:00.000Z"
