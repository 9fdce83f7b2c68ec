"""A message's calendar events, as EmailEngine's ``messageNew`` carries them with
``notifyCalendarEvents`` (``calendarEvents``, built in its ``lib/email-client/base-client.js``
``processNew`` with ical.js):

    [{"eventId": UID, "attachment": attachment id, "method": "REQUEST", "summary",
      "description", "timezone": the first VTIMEZONE's TZID, "startDate", "endDate" (ISO, UTC),
      "organizer": "mailto:...", "filename", "contentType", "encoding": "base64",
      "content": the part's bytes, base64}]

One entry per event UID, from the message's ``text/calendar`` parts first, then its
``application/ics`` ones; of each part only the calendar's first VEVENT counts, and a part
without one (or without a UID) gives none. A UID seen again lends its part's filename to the
entry that has none. Empty values are left out; the filename defaults to ``invite.ics`` for
a REQUEST or CANCEL, else ``event.ics``; ``method`` is the part's Content-Type ``method``, else
the calendar's METHOD.

Times: a UTC time as it is; a TZID's through the calendar's own VTIMEZONE of that name (the
Windows names Outlook uses come with one), else the IANA zone of that name; a floating time, a
date, or a TZID neither knows is read as UTC. (EmailEngine registers no time zones with ical.js,
so there every zoned time is read in the server's local zone, UTC in its images: the same wall
clock, hours off. Here a zoned time is the instant it names.) An event without DTEND ends after
its DURATION, a whole-day one a day after it starts, any other when it starts, as ical.js has
it.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz as dateutil_tz

from emailapi.lib.timestamps import utc_iso

CALENDAR_TYPES = ("text/calendar", "application/ics")
# The most lines one part is read for (a calendar of one invite has a few dozen; each line is
# bounded by the part's size, which the caller bounds).
MAX_LINES = 100_000
# The deepest component kept (an invite's deepest is VCALENDAR > VEVENT > VALARM); one deeper
# is passed over, with all it holds.
MAX_DEPTH = 10
# What a calendar's own VTIMEZONE may ask of dateutil, which finds a time's offset by stepping
# each STANDARD/DAYLIGHT rule from its start to that time: rules by the year or the month only,
# with no parts that multiply their steps (BYHOUR, BYSECOND...), and at most about
# ``MAX_RULE_COST`` microseconds' stepping for a time (a rule's period costs about 25, each day
# it yields about one more; reading each RDATE about 40). Outlook's rules start in 1601: its
# two yearly ones cost about 30,000 to 2100. A zone past this is read from the IANA zone of its
# name, else as the fixed offset of its last TZOFFSETTO (dateutil takes minutes on a secondly
# rule from 1601).
_RULE_PERIODS = {"YEARLY": 1, "MONTHLY": 12}
_RULE_PARTS = {"FREQ", "INTERVAL", "UNTIL", "COUNT", "WKST", "BYMONTH", "BYDAY", "BYMONTHDAY"}
_PERIOD_COST = 25
_DATE_COST = 40
MAX_RULE_COST = 50_000
MAX_OBSERVANCES = 64
_DATE_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(?:T(\d\d)(\d\d)(\d\d)(Z?))?$")
_DURATION = re.compile(r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_TEXT_ESCAPE = re.compile(r"\\([\\;,Nn])")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_OFFSET = re.compile(r"([+-])(\d\d)(\d\d)(\d\d)?$")
_PARAMETER = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:,]*)((?:,(?:"[^"]*"|[^";:,]*))*)')


@dataclass
class Component:
    name: str
    properties: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)
    # Its own unfolded lines, BEGIN to END, are source[start:end] (end None: to the end of the
    # text): each line is kept once, in the list all the components share.
    source: list[str] = field(default_factory=list, repr=False, compare=False)
    start: int = 0
    end: int | None = None

    @property
    def lines(self) -> list[str]:
        return self.source[self.start:self.end]

    def first(self, name: str) -> tuple[dict[str, str], str] | None:
        for prop, params, value in self.properties:
            if prop == name:
                return params, value
        return None

    def child(self, name: str) -> Component | None:
        return next((child for child in self.children if child.name == name), None)


def is_calendar(attachment: Mapping) -> bool:
    return (attachment.get("contentType") or "").lower() in CALENDAR_TYPES


def calendar_events(parts: Sequence[tuple[Mapping, bytes | None]]) -> list[dict]:
    """``calendarEvents`` of a message: *parts* are its attachments (the listing's entries:
    ``id``, ``contentType``, ``filename``, ``method``) with their decoded bytes (None: not
    read); those that are not calendars are passed over."""
    wanted = [(entry, data) for entry, data in parts if is_calendar(entry) and data]
    wanted.sort(key=lambda item: (item[0]["contentType"].lower() != "text/calendar",
                                  item[0]["contentType"].lower()))
    events: dict[str, dict] = {}
    for entry, data in wanted:
        found = parse_event(data)
        if found is None:
            continue
        if found["eventId"] in events:
            earlier = events[found["eventId"]]
            if entry.get("filename") and not earlier.get("filename"):
                earlier["filename"] = entry["filename"]
            continue
        values = {**found, "attachment": entry.get("id"),
                  "method": entry.get("method") or found.pop("method", None),
                  "filename": entry.get("filename"), "contentType": entry.get("contentType"),
                  "encoding": "base64", "content": base64.b64encode(data).decode()}
        order = ("eventId", "attachment", "method", "summary", "description", "timezone",
                 "startDate", "endDate", "organizer", "filename", "contentType", "encoding",
                 "content")
        events[found["eventId"]] = {key: values[key] for key in order if values.get(key)}
    out = []
    for event in events.values():
        if not event.get("filename"):
            request = (event.get("method") or "").upper() in ("REQUEST", "CANCEL")
            event["filename"] = "invite.ics" if request else "event.ics"
        out.append(event)
    return out


def parse_event(data: bytes) -> dict | None:
    """The first VEVENT of an iCalendar object: ``eventId``, ``method`` (the calendar's
    METHOD), ``summary``, ``description``, ``timezone``, ``startDate``, ``endDate``,
    ``organizer`` (None values for what it lacks); None when it has no VEVENT with a UID."""
    top = parse_components(data.decode("utf-8", "replace").lstrip("\ufeff"))
    calendar = next((c for c in top if c.name == "vcalendar"), None)
    event = calendar.child("vevent") if calendar is not None else None
    uid = event.first("uid") if event is not None else None
    if uid is None or not _text(uid[1]):
        return None
    zones = _Zones(calendar)
    start = event.first("dtstart")
    start_at = _instant(start, zones) if start else None
    end_at = _end(event, start, start_at, zones)
    first_zone = calendar.child("vtimezone")
    tzid = first_zone.first("tzid") if first_zone is not None else None
    method = calendar.first("method")
    organizer = event.first("organizer")
    return {
        "eventId": _text(uid[1]),
        "method": _text(method[1]) if method else None,
        "summary": _text_of(event, "summary"),
        "description": _text_of(event, "description"),
        "timezone": tzid[1] if tzid else None,
        "startDate": _iso(start_at),
        "endDate": _iso(end_at),
        "organizer": organizer[1] if organizer else None,
    }


def parse_components(text: str) -> list[Component]:
    """The top-level components of iCalendar *text* (RFC 5545: lines unfolded, names
    lower-cased, parameters split, quoted values unquoted). Lines that are not content lines
    are passed over; an unclosed component ends with the text; an END closes the innermost
    open component of its name and those inside it (none when no open one has the name);
    components nested deeper than ``MAX_DEPTH`` are passed over with what they hold."""
    top: list[Component] = []
    stack: list[Component] = []
    passed_over: list[str] = []  # the names of the open components deeper than MAX_DEPTH
    passed_count: Counter[str] = Counter()
    read: list[str] = []  # the content lines, each component's a slice of them
    for number, line in enumerate(_unfolded(text)):
        if number >= MAX_LINES:
            break
        parsed = _content_line(line)
        if parsed is None:
            continue
        read.append(line)
        name, params, value = parsed
        if name == "begin" and len(stack) >= MAX_DEPTH:
            passed_over.append(value.strip().lower())
            passed_count[passed_over[-1]] += 1
        elif name == "begin":
            component = Component(value.strip().lower(), source=read, start=len(read) - 1)
            (stack[-1].children if stack else top).append(component)
            stack.append(component)
        elif name == "end" and stack:
            closing = value.strip().lower()
            if passed_count[closing]:
                while (inner := passed_over.pop()) != closing:
                    passed_count[inner] -= 1
                passed_count[closing] -= 1
            elif any(component.name == closing for component in stack):
                passed_over.clear()
                passed_count.clear()
                while True:
                    component = stack.pop()
                    component.end = len(read)
                    if component.name == closing:
                        break
        elif stack and not passed_over:
            stack[-1].properties.append((name, params, value))
    return top


def _unfolded(text: str) -> list[str]:
    lines: list[str] = []
    pieces: list[str] = []  # the line being unfolded (joined once: not copied for each piece)
    for line in re.split(r"\r\n|\n|\r", text):
        if line[:1] in (" ", "\t") and pieces:
            pieces.append(line[1:])
        elif line:
            if pieces:
                lines.append("".join(pieces))
            pieces = [line]
    if pieces:
        lines.append("".join(pieces))
    return lines


def _content_line(line: str) -> tuple[str, dict[str, str], str] | None:
    """``name;param=value;param="quoted":value`` -> (name, params, value)."""
    name_end = _NAME.match(line)
    if name_end is None:
        return None
    name, position, params = name_end.group(0).lower(), name_end.end(), {}
    while position < len(line) and line[position] == ";":
        match = _PARAMETER.match(line, position)
        if match is None:
            return None
        params[match.group(1).lower()] = (match.group(2) + match.group(3)).strip('"')
        position = match.end()
    if position >= len(line) or line[position] != ":":
        return None
    return name, params, line[position + 1:]


def _text(value: str) -> str:
    return _TEXT_ESCAPE.sub(lambda m: "\n" if m.group(1) in "Nn" else m.group(1), value)


def _text_of(component: Component, name: str) -> str | None:
    found = component.first(name)
    return _text(found[1]) if found else None


class _Zones:
    """The time zones a calendar's TZIDs name: its own VTIMEZONEs, else IANA's."""

    def __init__(self, calendar: Component):
        self.calendar = calendar
        self._own: dict[str, _OwnZone | None] = {}
        self._found: dict[tuple[str, int], tzinfo] = {}

    def get(self, tzid: str, year: int) -> tzinfo:
        """The zone of *tzid* for a time in *year* (what dateutil's reading costs depends on
        how far the time is from the rules' start)."""
        if tzid not in self._own:
            self._own[tzid] = _own_zone(self.calendar, tzid)
        own = self._own[tzid]
        if own is None:
            return _iana(tzid) or UTC
        if own.rules is not None and own.cost(year) <= MAX_RULE_COST:
            return own.rules
        return _iana(tzid) or own.fixed or UTC


@dataclass
class _OwnZone:
    """A calendar's VTIMEZONE: dateutil's reading of it (None: not handed to dateutil), what
    reading a time through it costs, and the fixed offset of its last TZOFFSETTO."""

    rules: tzinfo | None
    fixed: tzinfo | None
    # (start year, cost a year) of each STANDARD/DAYLIGHT's rule, and the cost of its dates.
    yearly: list[tuple[int, int]] = field(default_factory=list)
    dates: int = 0

    def cost(self, year: int) -> int:
        return self.dates + sum(max(year - start + 1, 0) * each for start, each in self.yearly)


def _own_zone(calendar: Component, tzid: str) -> _OwnZone | None:
    """The calendar's VTIMEZONE of *tzid*; None when it has none, or one dateutil cannot read
    (then the name is read as an IANA one, else as UTC)."""
    zone = next((child for child in calendar.children if child.name == "vtimezone"
                 and (named := child.first("tzid")) is not None and named[1] == tzid), None)
    if zone is None:
        return None
    lines = zone.lines
    own = _OwnZone(None, _fixed_offset(lines))
    if not _cost_of(lines, own) or any(len(line.splitlines()) != 1 for line in lines):
        return own  # (dateutil splits lines at more characters than RFC 5545 does)
    try:
        own.rules = dateutil_tz.tzical(io.StringIO("\r\n".join(lines))).get(tzid)
    except Exception:  # noqa: BLE001 - a VTIMEZONE dateutil cannot read: not used
        return None
    return own


def _cost_of(lines: list[str], own: _OwnZone) -> bool:
    """Put what reading a time costs into *own*: each STANDARD/DAYLIGHT's rules (from its
    DTSTART's year) and dates in the VTIMEZONE's *lines*; False when one is not handed to
    dateutil (a frequency other than yearly or monthly, a part that multiplies the steps, an
    EXRULE, too many observances or dates)."""
    observances = 0
    start, rules = 1, []
    for line in lines:
        parsed = _content_line(line)
        name, _params, value = parsed if parsed is not None else ("", {}, "")
        value = value.strip().upper()
        if name == "begin" and value in ("STANDARD", "DAYLIGHT"):
            observances += 1
            if observances > MAX_OBSERVANCES:
                return False
            start, rules = 1, []
        elif name == "end" and value in ("STANDARD", "DAYLIGHT"):
            own.dates += _PERIOD_COST
            own.yearly += [(start, each) for each in rules]
        elif name == "dtstart":
            start = int(value[:4]) if value[:4].isdigit() else 1
        elif name in ("rdate", "exdate"):
            own.dates += (value.count(",") + 1) * _DATE_COST
        elif name == "exrule":
            return False
        elif name == "rrule":
            each = _rule_cost(value)
            if each is None:
                return False
            rules.append(each)
    return own.dates <= MAX_RULE_COST  # (dateutil reads all the dates before any time)


def _rule_cost(value: str) -> int | None:
    """What an RRULE's year costs dateutil (its periods, and the days each yields at most);
    None for one not handed to it."""
    parts = dict(part.partition("=")[::2] for part in value.split(";"))
    if parts.get("FREQ") not in _RULE_PERIODS or not set(parts) <= _RULE_PARTS:
        return None
    months = parts["BYMONTH"].count(",") + 1 if "BYMONTH" in parts else 12
    days = 1
    if "BYDAY" in parts:  # "-1SU" is a day a month, "SU" up to five
        days = sum(1 if day[:1] in "+-0123456789" else 5 for day in parts["BYDAY"].split(","))
    if "BYMONTHDAY" in parts:
        monthdays = parts["BYMONTHDAY"].count(",") + 1
        days = min(days, monthdays) if "BYDAY" in parts else monthdays
    return _RULE_PERIODS[parts["FREQ"]] * _PERIOD_COST + months * days


def _fixed_offset(lines: list[str]) -> tzinfo | None:
    """The offset of a VTIMEZONE's last TZOFFSETTO (``+0100``, ``-053000``)."""
    for line in reversed(lines):
        parsed = _content_line(line)
        if parsed is None or parsed[0] != "tzoffsetto":
            continue
        match = _OFFSET.match(parsed[2].strip())
        if match is None:
            return None
        sign, hours, minutes, seconds = match.groups()
        span = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
        try:
            return timezone(-span if sign == "-" else span)
        except ValueError:  # 24 hours or more
            return None
    return None


def _iana(tzid: str) -> tzinfo | None:
    try:
        return ZoneInfo(tzid.lstrip("/"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _instant(prop: tuple[dict[str, str], str], zones: _Zones) -> datetime | date | None:
    """A DATE as a ``date``; a DATE-TIME as an aware ``datetime`` (see the module's "Times");
    None for one that is not, or whose instant is out of range (year 1 east of UTC)."""
    params, value = prop
    match = _DATE_TIME.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        local = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         min(int(second), 59))
        zone = UTC if utc or not params.get("tzid") else zones.get(params["tzid"], local.year)
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _end(event: Component, start, start_at, zones: _Zones):
    """DTEND, else the start plus DURATION, else a day after a date's start, else the start;
    None when that is out of range (after 9999)."""
    end = event.first("dtend")
    if end is not None:
        return _instant(end, zones)
    if start_at is None:
        return None
    duration = event.first("duration")
    try:
        if duration is not None:
            span = _duration(duration[1])
            return start_at + span if span is not None else None
        if isinstance(start_at, datetime):
            return start_at
        return start_at + timedelta(days=1)
    except OverflowError:
        return None


def _duration(value: str) -> timedelta | None:
    match = _DURATION.match(value.strip())
    if match is None:
        return None
    sign, weeks, days, hours, minutes, seconds = match.groups()
    try:
        span = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                         minutes=int(minutes or 0), seconds=int(seconds or 0))
    except (OverflowError, ValueError):  # past timedelta's range, or digits past int's
        return None
    return -span if sign == "-" else span


def _iso(value) -> str | None:
    """JavaScript's ``toISOString``: UTC, milliseconds, ``Z``; a date is its midnight, UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return utc_iso(value)
