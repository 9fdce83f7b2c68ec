"""The quoted message's date in an inline reply or forward (``mailboxes.quote_dates``): what
EmailEngine's ``Intl.DateTimeFormat`` writes. The English and the German and Japanese texts
below were printed by Node 20's Intl on this machine with EmailEngine's options."""

from datetime import datetime, timezone

import pytest

from mailboxes.quote_dates import quote_date

WHEN = datetime(2024, 6, 15, 14, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("locale", "tz", "expected"), [
    (None, None, "Sat, Jun 15, 2024, 2:30 PM"),
    ("en", "Europe/Tallinn", "Sat, Jun 15, 2024, 5:30 PM"),
    ("en-US", "America/New_York", "Sat, Jun 15, 2024, 10:30 AM"),
    ("en-GB", None, "Sat, 15 Jun 2024, 14:30"),
    ("de", None, "Sa., 15. Juni 2024, 14:30"),
    ("fr", "Europe/Paris", "sam. 15 juin 2024, 16:30"),
    ("ja", "Asia/Tokyo", "2024年6月15日(土) 23:30"),
])
def test_the_date_is_written_in_the_locale_and_time_zone(locale, tz, expected):
    assert quote_date(WHEN, locale, tz) == expected


def test_no_break_spaces_are_plain_spaces():
    # CLDR (and ICU) put U+202F before "PM"; older mail clients show it as a box.
    assert "\u202f" not in quote_date(WHEN, "en", None)
    assert "\u00a0" not in quote_date(WHEN, "fr", None)


@pytest.mark.parametrize("tag", ["de-DE", "de-XX", "de_DE", "DE-de", "de-DE-x-private",
                                 "de-u-ca-buddhist"])
def test_a_tag_falls_back_to_its_language_as_icu_does(tag):
    assert quote_date(WHEN, tag, None) == "Sa., 15. Juni 2024, 14:30"


@pytest.mark.parametrize("tag", ["", "xx", "zz-ZZ", "x-private", "-", "en--GB", "\x00",
                                 "a" * 100, "../de", "de\n"])
def test_a_locale_nobody_knows_is_english(tag):
    assert quote_date(WHEN, tag, None) == "Sat, Jun 15, 2024, 2:30 PM"


@pytest.mark.parametrize("tz", ["", "Nowhere/City", "America", "../../etc/passwd",
                                "/etc/localtime", "Europe/Tallinn\x00", "UTC ", "a" * 100])
def test_a_time_zone_nobody_knows_is_utc(tz):
    assert quote_date(WHEN, "en", tz) == "Sat, Jun 15, 2024, 2:30 PM"


def test_a_date_without_a_zone_is_taken_as_utc():
    naive = WHEN.replace(tzinfo=None)
    assert quote_date(naive, "en", "Europe/Tallinn") == "Sat, Jun 15, 2024, 5:30 PM"


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "Fri, Jan 2, 2026, 3:04 AM"),
    ("de", "Fr., 2. Jan. 2026, 3:04"),
    ("fr-CA", "ven. 2 janv. 2026, 3 h 04"),
    ("hi", "शुक्र, 2 जन॰ 2026, 3:04 am"),
])
def test_the_hour_has_as_few_digits_as_it_takes_in_the_locales_own_pattern(locale, expected):
    # Intl's {hour: "numeric"}: "3:04", where the locale's short time says "HH:mm".
    assert quote_date(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), locale) == expected
