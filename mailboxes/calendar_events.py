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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz as dateutil_tz

CALENDAR_TYPES = ("text/calendar", "application/ics")
# The most lines one part is read for (a calendar of one invite has a few dozen; each line is
# bounded by the part's size, which the caller bounds).
MAX_LINES = 100_000
_DATE_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(?:T(\d\d)(\d\d)(\d\d)(Z?))?$")
_DURATION = re.compile(r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_TEXT_ESCAPE = re.compile(r"\\([\\;,Nn])")
_NAME = re.compile(r"[A-Za-z0-9-]+")
_PARAMETER = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:,]*)((?:,(?:"[^"]*"|[^";:,]*))*)')


@dataclass
class Component:
    name: str
    properties: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # its own unfolded lines, BEGIN to END

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
    are passed over; an unclosed component ends with the text."""
    top: list[Component] = []
    stack: list[Component] = []
    for number, line in enumerate(_unfolded(text)):
        if number >= MAX_LINES:
            break
        parsed = _content_line(line)
        if parsed is None:
            continue
        name, params, value = parsed
        if name == "begin":
            component = Component(value.strip().lower())
            (stack[-1].children if stack else top).append(component)
            stack.append(component)
        elif name == "end" and stack:
            for component in stack:
                component.lines.append(line)
            closing = value.strip().lower()
            if any(component.name == closing for component in stack):
                while stack.pop().name != closing:
                    pass
            continue
        elif stack:
            stack[-1].properties.append((name, params, value))
        for component in stack:
            component.lines.append(line)
    return top


def _unfolded(text: str) -> list[str]:
    lines: list[str] = []
    for line in re.split(r"\r\n|\n|\r", text):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]
        elif line:
            lines.append(line)
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
        self._found: dict[str, tzinfo] = {}

    def get(self, tzid: str) -> tzinfo:
        if tzid not in self._found:
            self._found[tzid] = self._own(tzid) or _iana(tzid) or UTC
        return self._found[tzid]

    def _own(self, tzid: str) -> tzinfo | None:
        for zone in self.calendar.children:
            named = zone.first("tzid") if zone.name == "vtimezone" else None
            if named is None or named[1] != tzid:
                continue
            try:
                return dateutil_tz.tzical(io.StringIO("\r\n".join(zone.lines))).get(tzid)
            except Exception:  # noqa: BLE001 - a VTIMEZONE dateutil cannot read: not used
                return None
        return None


def _iana(tzid: str) -> tzinfo | None:
    try:
        return ZoneInfo(tzid.lstrip("/"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _instant(prop: tuple[dict[str, str], str], zones: _Zones) -> datetime | date | None:
    """A DATE as a ``date``; a DATE-TIME as an aware ``datetime`` (see the module's "Times")."""
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
    except ValueError:
        return None
    zone = UTC if utc or not params.get("tzid") else zones.get(params["tzid"])
    return local.replace(tzinfo=zone).astimezone(UTC)


def _end(event: Component, start, start_at, zones: _Zones):
    end = event.first("dtend")
    if end is not None:
        return _instant(end, zones)
    if start_at is None:
        return None
    duration = event.first("duration")
    if duration is not None:
        span = _duration(duration[1])
        return start_at + span if span is not None else None
    if isinstance(start_at, datetime):
        return start_at
    return start_at + timedelta(days=1)


def _duration(value: str) -> timedelta | None:
    match = _DURATION.match(value.strip())
    if match is None:
        return None
    sign, weeks, days, hours, minutes, seconds = match.groups()
    span = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                     minutes=int(minutes or 0), seconds=int(seconds or 0))
    return -span if sign == "-" else span


def _iso(value) -> str | None:
    """JavaScript's ``toISOString``: UTC, milliseconds, ``Z``; a date is its midnight, UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{value.microsecond // 1000:03d}Z"
