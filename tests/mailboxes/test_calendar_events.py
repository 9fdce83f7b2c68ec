"""``mailboxes.calendar_events``: EmailEngine's ``calendarEvents`` from real-shaped invites
(``tests.mailboxes.mime_shapes``, and Outlook's and Google's own forms), pure."""

from __future__ import annotations

import base64

import pytest

from mailboxes.calendar_events import MAX_DEPTH, calendar_events, parse_components, parse_event
from tests.mailboxes import mime_shapes
from tests.mailboxes.bounded import finishes

# Outlook's form: a Windows zone name with its VTIMEZONE, folded lines, escaped text.
OUTLOOK = (
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nPRODID:Microsoft Exchange Server 2010\r\n"
    "VERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"
    "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\nORGANIZER;CN=\"Doe, Jane\":mailto:jane@example.test\r\n"
    "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Bob:mailto:bo\r\n"
    " b@example.test\r\nDESCRIPTION;LANGUAGE=en-US:Agenda:\\n1. Budget\\, plans\\; more\\n\r\n"
    "UID:040000008200E00074C5B7101A82E00800000000\r\n"
    "SUMMARY;LANGUAGE=en-US:Quarterly review\r\n"
    "DTSTART;TZID=W. Europe Standard Time:20240705T100000\r\n"
    "DTEND;TZID=W. Europe Standard Time:20240705T113000\r\nCLASS:PUBLIC\r\n"
    "BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nACTION:DISPLAY\r\nEND:VALARM\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()

# Google's form: an IANA zone, no VTIMEZONE for it.
GOOGLE = (
    "BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\n"
    "METHOD:REQUEST\r\nBEGIN:VEVENT\r\nDTSTART;TZID=America/New_York:20240115T090000\r\n"
    "DURATION:PT45M\r\nUID:g1@google.com\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n").encode()

ALL_DAY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:day-1\r\n"
    "DTSTART;VALUE=DATE:20240601\r\nSUMMARY:Offsite\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def test_an_outlook_invite_from_the_shapes():
    _raw, ics = mime_shapes.calendar_invite("REQUEST", 7)
    assert parse_event(ics) == {
        "eventId": "evt-7@example.test", "method": "REQUEST",
        "summary": "Quartalsplanung Q2 – Raum 4", "description": None, "timezone": None,
        "startDate": "2024-03-05T10:00:00.000Z", "endDate": "2024-03-05T11:00:00.000Z",
        "organizer": "mailto:alice@example.test"}


def test_a_windows_zone_is_read_through_the_calendars_own_vtimezone():
    event = parse_event(OUTLOOK)
    assert event["timezone"] == "W. Europe Standard Time"
    assert event["startDate"] == "2024-07-05T08:00:00.000Z"  # summer: UTC+2
    assert event["endDate"] == "2024-07-05T09:30:00.000Z"


def test_text_is_unescaped_and_lines_unfolded():
    event = parse_event(OUTLOOK)
    assert event["description"] == "Agenda:\n1. Budget, plans; more\n"
    assert event["summary"] == "Quarterly review"
    assert event["organizer"] == "mailto:jane@example.test"


def test_an_iana_zone_and_a_duration():
    event = parse_event(GOOGLE)
    assert event["startDate"] == "2024-01-15T14:00:00.000Z"  # winter: UTC-5
    assert event["endDate"] == "2024-01-15T14:45:00.000Z"


def test_an_all_day_event_ends_a_day_later_at_midnight_utc():
    event = parse_event(ALL_DAY)
    assert event["startDate"] == "2024-06-01T00:00:00.000Z"
    assert event["endDate"] == "2024-06-02T00:00:00.000Z"
    assert event["method"] is None


def test_no_event_without_a_vevent_or_a_uid():
    assert parse_event(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n") is None
    assert parse_event(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
                       b"END:VCALENDAR\r\n") is None
    assert parse_event(b"not a calendar at all") is None
    assert parse_event(bytes(range(256))) is None


def test_emailengines_entry_shape_with_the_parts_method_and_content():
    _raw, ics = mime_shapes.calendar_only("CANCEL", 2)
    [event] = calendar_events([({"id": "ATT1", "contentType": "text/calendar",
                                 "method": "CANCEL", "filename": None}, ics)])
    assert event == {
        "eventId": "only-2@example.test", "attachment": "ATT1", "method": "CANCEL",
        "summary": "Quartalsplanung Q2 – Raum 4", "startDate": "2024-03-05T10:00:00.000Z",
        "endDate": "2024-03-05T11:00:00.000Z", "organizer": "mailto:alice@example.test",
        "contentType": "text/calendar", "encoding": "base64",
        "content": base64.b64encode(ics).decode(), "filename": "invite.ics"}


def test_one_entry_per_uid_text_calendar_first_the_ics_file_lending_its_name():
    _raw, ics = mime_shapes.calendar_invite("REQUEST", 1)
    events = calendar_events([
        ({"id": "FILE", "contentType": "application/ics", "filename": "meeting.ics"}, ics),
        ({"id": "PART", "contentType": "text/calendar", "method": "REQUEST"}, ics),
        ({"id": "PDF", "contentType": "application/pdf", "filename": "x.pdf"}, b"%PDF"),
    ])
    assert len(events) == 1
    assert events[0]["attachment"] == "PART"
    assert events[0]["filename"] == "meeting.ics"


def test_filename_defaults_to_event_ics_without_request_or_cancel():
    [event] = calendar_events([({"id": "A", "contentType": "text/calendar"}, ALL_DAY)])
    assert event["filename"] == "event.ics"
    assert "method" not in event  # empty values are left out


def test_parts_not_read_or_unparsable_give_nothing():
    assert calendar_events([({"id": "A", "contentType": "text/calendar"}, None),
                            ({"id": "B", "contentType": "text/calendar"}, b"garbage")]) == []


def test_a_year_before_1000_is_written_with_four_digits_as_javascript_does():
    event = parse_event(ALL_DAY.replace(b"20240601", b"09990601"))
    assert event["startDate"] == "0999-06-01T00:00:00.000Z"


# --- hostile calendars: any sender writes them, and each is read on every messageNew ---------


def calendar(*lines: str) -> bytes:
    return "\r\n".join(("BEGIN:VCALENDAR", *lines, "END:VCALENDAR", "")).encode()


def event(*lines: str) -> bytes:
    return calendar("BEGIN:VEVENT", "UID:hostile-1", *lines, "END:VEVENT")


def test_components_nested_past_the_depth_kept_are_passed_over_in_time():
    text = "BEGIN:VCALENDAR\r\n" * 8_000
    [top] = finishes(lambda: parse_components(text))
    depth, component = 1, top
    while component.children:
        [component] = component.children
        depth += 1
    assert depth == MAX_DEPTH
    assert len(top.lines) == 8_000  # the lines of what is passed over are still its own


def test_what_a_component_too_deep_holds_is_not_its_parents():
    deep = ["BEGIN:X"] * 20 + ["SUMMARY:deep"] + ["END:X"] * 20
    assert parse_event(event(*deep, "SUMMARY:kept"))["summary"] == "kept"


def test_a_line_folded_a_million_times_is_unfolded_in_time():
    # 3 MB (more than a part is read for) so that the old quadratic unfolding is far past the
    # bound: it took 7 s at 2 MB.
    text = "BEGIN:VCALENDAR\r\nX-LONG:" + "\r\n a" * 1_000_000 + "\r\nEND:VCALENDAR\r\n"
    [top] = finishes(lambda: parse_components(text))
    assert len(top.first("x-long")[1]) == 1_000_000


def zone(tzid: str, rule: str) -> tuple[str, ...]:
    """A VTIMEZONE of Outlook's shape whose two observances follow *rule*."""
    return ("BEGIN:VTIMEZONE", f"TZID:{tzid}",
            "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100", f"RRULE:{rule}", "END:STANDARD",
            "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0300", f"RRULE:{rule}", "END:DAYLIGHT", "END:VTIMEZONE")


@pytest.mark.parametrize(("tzid", "start"), [
    ("Hostile Standard Time", "2024-07-05T07:00:00.000Z"),  # its last TZOFFSETTO, +0300
    ("Europe/Berlin", "2024-07-05T08:00:00.000Z"),  # the IANA zone of its name: summer, +0200
])
def test_a_vtimezone_of_secondly_rules_is_not_stepped_through(tzid, start):
    ics = calendar(*zone(tzid, "FREQ=SECONDLY"), "BEGIN:VEVENT", "UID:hostile-1",
                   f"DTSTART;TZID={tzid}:20240705T100000", "END:VEVENT")
    found = finishes(lambda: parse_event(ics))
    assert found["startDate"] == start
    assert found["timezone"] == tzid


def test_a_time_far_ahead_through_outlooks_rules_is_answered_in_time():
    ics = calendar(*zone("W. Europe", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"), "BEGIN:VEVENT",
                   "UID:far-1", "DTSTART;TZID=W. Europe:99990705T100000", "END:VEVENT")
    assert finishes(lambda: parse_event(ics))["startDate"].startswith("9999-07-05T")


@pytest.mark.parametrize(("lines", "start", "end"), [
    (["DTSTART;VALUE=DATE:99991231"], "9999-12-31T00:00:00.000Z", None),
    (["DTSTART:20240101T100000Z", "DURATION:P999999999W"], "2024-01-01T10:00:00.000Z", None),
    (["DTSTART:20240101T100000Z", "DURATION:P" + "9" * 5_000 + "D"],
     "2024-01-01T10:00:00.000Z", None),
    (["DTSTART;TZID=Asia/Tokyo:00010101T000000"], None, None),
], ids=["whole-day-9999", "weeks-past-range", "digits-past-int", "year-1-east-of-utc"])
def test_a_time_out_of_range_is_left_out(lines, start, end):
    found = parse_event(event(*lines))
    assert found["eventId"] == "hostile-1"
    assert found["startDate"] == start
    assert found["endDate"] == end
