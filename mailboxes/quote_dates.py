"""The date of the quoted message in an inline reply or forward ("On Sat, Jun 15, 2024, 2:30 PM,
Ann <ann@example.com> wrote:"), written as EmailEngine writes it.

EmailEngine formats it with ``Intl.DateTimeFormat(locale, {weekday: "short", year: "numeric",
month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZone: tz})``
(``@postalsys/email-text-tools``, ``lib/format-date.js``), where ``locale`` and ``tz`` come from
the request, else from the account. The same CLDR patterns are read here through Babel: the
date as the skeleton ``yMMMEd``, the time as the locale's hours and minutes, joined by the
locale's medium date-time pattern. In English this is EmailEngine's text exactly; other locales follow
Babel's CLDR release, which may differ from a given Node build's in punctuation.

As there, a locale nobody knows is English and a time zone nobody knows is UTC: both are hints
for a human-readable line, and a client written for EmailEngine sends them without checking.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import datetime, timezone, tzinfo

from babel import Locale, UnknownLocaleError, dates

DATE_SKELETON = "yMMMEd"  # weekday, day, month abbreviated, year
_ENGLISH = Locale("en")
# ICU puts a no-break (or narrow no-break) space before "PM"; older mail clients show a box.
_QUOTED = re.compile(r"'[^']*'")  # a pattern's literal text
_DOUBLED_HOUR = re.compile(r"([HhKk])\1")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


def quote_date(value: datetime, locale: str | None = None, tz: str | None = None) -> str:
    """``value`` for a human in ``locale`` (a BCP 47 tag such as ``de`` or ``pt-BR``) and the
    IANA time zone ``tz``; English and UTC when either is missing or unknown."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    where = _locale(locale or "")
    zone = _zone(tz or "")
    day = dates.format_skeleton(DATE_SKELETON, value, tzinfo=zone, locale=where)
    time = dates.format_datetime(value, _time_pattern(where), tzinfo=zone, locale=where)
    joined = str(dates.get_datetime_format("medium", locale=where)).replace("'", "")
    return joined.replace("{1}", day).replace("{0}", time).translate(_SPACES)


@functools.lru_cache(maxsize=128)
def _locale(tag: str) -> Locale:
    """The CLDR locale of a BCP 47 tag (``en-GB``; ``en_GB`` is taken too). As ICU does, a tag
    CLDR does not have falls back to its shorter forms (``de-XX`` is German; extensions such as
    ``-u-...`` and ``-x-...`` are dropped); English when none is known."""
    subtags = tag.replace("_", "-").split("-")
    for n, subtag in enumerate(subtags):
        if len(subtag) == 1:  # a singleton starts an extension
            subtags = subtags[:n]
            break
    for n in range(len(subtags), 0, -1):
        try:
            return Locale.parse("-".join(subtags[:n]), sep="-")
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return _ENGLISH


@functools.lru_cache(maxsize=128)
def _time_pattern(where: Locale) -> str:
    """The hour and minutes as ``Intl``'s ``{hour: "numeric", minute: "2-digit"}`` writes them:
    the locale's own hour cycle (from its short time, ``h:mm a`` or ``HH:mm``), its pattern for
    hours and minutes, and the hour in as few digits as it takes (``3:04``, not ``03:04``)."""
    short = _QUOTED.sub("", str(where.time_formats["short"].pattern))
    hour = "h" if ("h" in short or "K" in short) else "H"
    skeleton = dates.match_skeleton(hour + "m", where.datetime_skeletons)
    pattern = str(where.datetime_skeletons[skeleton].pattern) if skeleton else short
    return _DOUBLED_HOUR.sub(r"\1", pattern)


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # The keys of the time zone database, read once: a tz is looked up only among them, so no
    # tenant text ever names a file to open.
    return frozenset(zoneinfo.available_timezones())


@functools.lru_cache(maxsize=128)
def _zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``Europe/Tallinn``), UTC when it is not one."""
    if name not in _zone_names():
        return timezone.utc
    return zoneinfo.ZoneInfo(name)
