"""Which new messages are bounces or abuse reports, and what they say (``mailboxes.feedback_reports``):
pure functions, on reports shaped like real MTAs' (``tests.mailboxes.mime_shapes``)."""

from __future__ import annotations

import pytest

from mailboxes import feedback_reports as fr
from mailboxes.imap import parse
from mailboxes.imap.types import Address, Part
from tests.mailboxes import mime_shapes

DAEMON = [Address("Mail Delivery System", "MAILER-DAEMON@mail.example.test")]
PERSON = [Address("Alice", "alice@example.test")]
ORIGINAL_HEADERS = mime_shapes.RFC822_HEADERS.decode()


def text(number: str = "1") -> Part:
    return Part(part=number, content_type="text/plain", size=100, encoding="7bit",
                charset="us-ascii")


def attachment(number: str, content_type: str, encoding: str = "7bit") -> Part:
    return Part(part=number, content_type=content_type, size=400, encoding=encoding)


# --- the rule: ordinary mail reads nothing ------------------------------------------------------


def test_an_ordinary_message_reads_nothing():
    files = [attachment("2", "application/pdf", "base64"), attachment("3", "image/png", "base64")]
    assert fr.sections_to_read(files, [text()], PERSON, "Quarterly numbers") == []


def test_a_forwarded_message_from_a_person_reads_nothing():
    assert fr.sections_to_read([attachment("2", "message/rfc822")], [text()], PERSON,
                               "Fwd: complaint") == []


def test_a_message_without_parts_reads_nothing():
    assert fr.sections_to_read([], [], [], "") == []


def test_a_dsn_reads_its_status_and_the_originals_headers_only():
    sections = fr.sections_to_read(
        [attachment("2", "message/delivery-status"), attachment("3", "text/rfc822-headers")],
        [text()], DAEMON, "Undelivered Mail Returned to Sender")
    assert [(s.section, s.role) for s in sections] == [("2", fr.STATUS), ("3", fr.HEADERS)]
    assert all(s.limit == fr.PART_LIMIT for s in sections)


def test_an_attached_original_is_read_as_its_header_alone():
    sections = fr.sections_to_read(
        [attachment("2", "message/delivery-status"), attachment("3", "message/rfc822")],
        [text()], PERSON, "Returned mail")
    assert [(s.section, s.role) for s in sections] == [("2", fr.STATUS), ("3.HEADER", fr.HEADERS)]


def test_an_abuse_report_reads_its_report_and_the_original():
    sections = fr.sections_to_read(
        [attachment("2", "message/feedback-report"), attachment("3", "message/rfc822")],
        [text()], PERSON, "Abuse report")
    assert [(s.section, s.role) for s in sections] == [("2", fr.FEEDBACK),
                                                       ("3.HEADER", fr.HEADERS)]


def test_a_plain_text_bounce_from_the_mailer_daemon_reads_its_text_and_its_header():
    """Its own header says what the text does not (Exim's X-Failed-Recipients, WorkMail's
    X-Mailer): read in the same FETCH as the text."""
    sections = fr.sections_to_read([], [text()], DAEMON, "failure notice")
    assert [(s.section, s.role, s.encoding) for s in sections] == [("1", fr.TEXT, "7bit"),
                                                                   ("HEADER", fr.TOP, None)]


# --- DSNs (RFC 3464) ------------------------------------------------------------------------------


def test_a_dsn_is_emailengines_bounce():
    report = fr.read_report({fr.STATUS: mime_shapes.DELIVERY_STATUS.decode(),
                             fr.HEADERS: ORIGINAL_HEADERS})
    assert report.bounces == [mime_shapes.BOUNCE]
    assert report.complaint is None


def test_postfix_dsn_gives_the_failed_recipient_with_the_messages_fields():
    status = mime_shapes.POSTFIX_STATUS.decode()
    headers = "Message-ID:\r\n  <q1@example.test> (sent)\r\nSubject: Quarterly numbers\r\n"
    [bounce] = fr.read_report({fr.STATUS: status, fr.HEADERS: headers}).bounces
    assert bounce["recipient"] == "carol@example.net"
    assert bounce["response"] == {
        "source": "smtp", "status": "5.1.1",
        "message": "550 5.1.1 <carol@example.net>: Recipient address rejected: User unknown "
                   "in virtual mailbox table"}
    assert bounce["mta"] == "mx.example.net"  # Remote-MTA, lower-cased
    assert bounce["queueId"] == "4Q7Z1X2Y3Z"
    assert bounce["messageId"] == "<q1@example.test>"


def test_each_failed_recipient_is_a_bounce_and_a_delay_is_none():
    status = mime_shapes.POSTFIX_STATUS.decode().replace("Action: delayed", "Action: failed")
    bounces = fr.read_report({fr.STATUS: status, fr.HEADERS: ORIGINAL_HEADERS}).bounces
    assert [b["recipient"] for b in bounces] == ["carol@example.net", "dave@example.org"]
    assert bounces[1]["response"]["source"] == "X-Postfix"
    assert bounces[1]["mta"] == "mail.example.test"  # no Remote-MTA: the Reporting-MTA


def test_only_delays_and_deliveries_are_no_bounce():
    status = mime_shapes.POSTFIX_STATUS.decode().replace("Action: failed", "Action: delivered")
    report = fr.read_report({fr.STATUS: status, fr.HEADERS: ORIGINAL_HEADERS})
    assert report.bounces == []
    assert report.delivery_report["action"] == "delivered"  # a deliveryReport instead


def test_a_dsn_without_the_originals_message_id_is_no_bounce():
    assert not fr.read_report({fr.STATUS: mime_shapes.DELIVERY_STATUS.decode()})


def test_x_original_message_id_names_the_original_without_its_headers():
    status = "X-Original-Message-ID: <orig@example.test>\r\n\r\n" + \
        mime_shapes.DELIVERY_STATUS.decode()
    [bounce] = fr.read_report({fr.STATUS: status}).bounces
    assert bounce["messageId"] == "<orig@example.test>"
    assert bounce["messageHeaders"] is None


def recipient_blocks(addresses: list[str]) -> str:
    return "Reporting-MTA: dns; mx.example.test\r\n\r\n" + "".join(
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        for address in addresses)


def test_a_recipient_reported_twice_is_one_bounce():
    status = recipient_blocks(["carol@example.net", "dave@example.org", "Carol@Example.NET"])
    status = status.replace("Status: 5.1.1", "Status: 5.1.2", 1)  # the first block wins
    bounces = fr.read_report({fr.STATUS: status, fr.HEADERS: ORIGINAL_HEADERS}).bounces
    assert [b["recipient"] for b in bounces] == ["carol@example.net", "dave@example.org"]
    assert bounces[0]["response"]["status"] == "5.1.2"


def test_a_dsn_for_a_thousand_recipients_is_fifty_bounces():
    addresses = [f"user{n % 500}@example.net" for n in range(999)]  # each twice, nearly
    status = recipient_blocks(addresses)
    bounces = fr.read_report({fr.STATUS: status, fr.HEADERS: ORIGINAL_HEADERS}).bounces
    assert [b["recipient"] for b in bounces] == [f"user{n}@example.net" for n in range(50)]
    assert fr.MAX_BOUNCES == 50  # as the README says


@pytest.mark.parametrize("value", [
    "<a@example.test>", "  <a@example.test> (sent)", "<a@ex\r\n ample.test>",
    "<a@b> <c@d>", "a@example.test", "<>", "   ", "<a\u00a0b@example.test>",
    "<caf\u00e9@example.test>", "<a\u2003b@example.test>", "<<a@b>>", "<a@b"])
def test_the_originals_message_id_is_read_as_the_index_keeps_a_message_id(value):
    """A bounce finds its original by the Message-ID the index stored for it: the report's
    (already decoded) value goes through the index's own rule, compiled or not."""
    headers = f"Message-ID: {value}\r\n"
    [bounce] = fr.read_report({fr.STATUS: "X-Original-Message-ID: <x@y>\r\n\r\n" +
                               mime_shapes.DELIVERY_STATUS.decode(),
                               fr.HEADERS: headers}).bounces
    indexed = parse.normalize_message_id(headers[len("Message-ID:"):].strip().encode())
    assert bounce["messageId"] == (indexed or "<x@y>")
    assert indexed == parse.python_normalize_message_id(
        headers[len("Message-ID:"):].strip().encode())


def test_a_garbled_status_part_is_no_bounce():
    assert not fr.read_report({fr.STATUS: "\x00\r\n::::\r\n\r\n  folded\r\n" * 100,
                               fr.HEADERS: ORIGINAL_HEADERS})


def test_a_huge_header_block_is_bounded():
    fields = fr.header_fields("X-A: " + "b" * 100_000 + "\r\n" + "X-C: d\r\n" * 5000)
    assert len(fields["x-a"][0]) == fr.MAX_VALUE
    assert len(fields["x-c"]) == fr.MAX_FIELDS - 1


# --- plain-text bounces ---------------------------------------------------------------------------


def test_a_qmail_bounce_is_read_from_its_text():
    [bounce] = fr.read_report({fr.TEXT: mime_shapes.QMAIL_TEXT.decode()}).bounces
    assert bounce["recipient"] == "frank@example.net"
    assert bounce["action"] == "failed"
    assert bounce["response"]["status"] == "5.1.1"
    assert "User unknown" in bounce["response"]["message"]
    assert bounce["messageId"] == "<minutes-1@example.test>"


def test_postfix_host_said_text_names_the_mta():
    said = ("This is the mail system at host mail.example.test.\n\n"
            "<grace@example.net>: host mx.Example.net[192.0.2.3] said: 550 5.7.1 Rejected\n"
            "    by policy (in reply to RCPT TO command)\n\n"
            "Return-Path: <alice@example.test>\nMessage-ID: <p-1@example.test>\n")
    [bounce] = fr.text_bounces(said)
    assert bounce["recipient"] == "grace@example.net"
    assert bounce["mta"] == "mx.example.net"
    assert bounce["response"] == {
        "message": "550 5.7.1 Rejected by policy (in reply to RCPT TO command)",
        "status": "5.7.1"}
    assert bounce["messageId"] == "<p-1@example.test>"


def test_a_delay_warning_in_text_is_no_bounce():
    warning = ("THIS IS A WARNING MESSAGE ONLY.\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
               "<heidi@example.net>:\n451 4.4.1 Connection timed out\n\n"
               "Received: by x\nMessage-ID: <w@example.test>\n")
    assert fr.text_bounces(warning) == []


def test_ordinary_text_is_no_bounce():
    assert fr.text_bounces("Hello,\n\nsee you at 5.\n") == []


# --- abuse reports (ARF, RFC 5965) ----------------------------------------------------------------


def complaint_headers() -> str:
    raw = mime_shapes.complaint("<sale-1@example.test>")
    start = raw.index(b"Return-Path:")
    return raw[start:raw.index(b"\r\n\r\n", start)].decode()


def test_an_arf_report_is_emailengines_complaint():
    report = fr.read_report({fr.FEEDBACK: mime_shapes.FEEDBACK_REPORT.decode(),
                             fr.HEADERS: complaint_headers()})
    assert report.bounces == []
    assert report.complaint == {
        "arf": {"feedbackType": "abuse", "userAgent": "Yahoo!-Mail-Feedback/2.0",
                "version": "1", "originalMailFrom": "bounces@example.test",
                "originalRcptTo": ["erin@example.net"],
                "arrivalDate": "2024-03-04T09:30:00.000Z",
                "reportingMta": "dns; mta1.feedback.example.net", "sourceIp": "192.0.2.1",
                "authenticationResults": [
                    "mta1.feedback.example.net; spf=pass smtp.mailfrom=example.test"],
                "reportedDomain": ["example.test"]},
        "headers": {"messageId": "<sale-1@example.test>", "from": "alice@example.test",
                    "to": ["erin@example.net"], "subject": "Spätsommer sale",
                    "date": "2024-03-04T09:29:00.000Z"}}


def test_an_arf_report_naming_no_recipient_is_no_complaint():
    report_text = mime_shapes.FEEDBACK_REPORT.decode().replace(
        "Original-Rcpt-To: erin@example.net\r\n", "")
    assert not fr.read_report({fr.FEEDBACK: report_text, fr.HEADERS: complaint_headers()})


def test_hotmails_complaint_gets_hotmails_defaults():
    headers = ("Return-Path: <bounces@example.test>\r\nX-HmXmrOriginalRecipient: "
               "<ivan@hotmail.example>\r\nMessage-ID: <h-1@example.test>\r\n"
               "X-Sender-IP: 198.51.100.4\r\n")
    sections = fr.sections_to_read([attachment("2", "message/rfc822")], [text()],
                                   [Address("", "staff@hotmail.com")], "complaint about message")
    assert [s.role for s in sections] == [fr.HEADERS]
    report = fr.read_report({fr.HEADERS: headers}, [Address("", "staff@hotmail.com")])
    assert report.complaint["arf"] == {
        "source": "Hotmail", "feedbackType": "abuse", "abuseType": "complaint",
        "originalMailFrom": "bounces@example.test", "originalRcptTo": ["ivan@hotmail.example"],
        "sourceIp": "198.51.100.4"}
    assert report.complaint["headers"] == {"messageId": "<h-1@example.test>"}
