"""Which new messages are bounces or abuse reports, and what they say (``mailboxes.feedback_reports``):
pure functions, on reports shaped like real MTAs' (``tests.mailboxes.mime_shapes``)."""

from __future__ import annotations

import quopri
import time

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


# --- deliveryReport (a DSN's delivery or delay) ---------------------------------------------------


def notice_status(kind: dict[str, str]) -> str:
    return mime_shapes.POSTFIX_SUCCESS_STATUS.decode().format(**kind)


def test_a_delivered_dsn_is_emailengines_delivery_report_and_no_bounce():
    report = fr.read_report({fr.STATUS: notice_status(mime_shapes.DELIVERED),
                             fr.HEADERS: ORIGINAL_HEADERS})
    assert report.delivery_report == mime_shapes.DELIVERY_REPORT
    assert report.bounces == []


def test_a_delayed_dsn_has_a_delivery_report():
    report = fr.read_report({fr.STATUS: notice_status(mime_shapes.DELAYED)})
    assert report.delivery_report["action"] == "delayed"
    assert report.delivery_report["diagnosticCode"] == {
        "label": "smtp", "value": "451 4.4.1 mx.example.net: Connection timed out"}


@pytest.mark.parametrize("action", ["failed", "relayed", "expanded", "", "delivered; x"])
def test_only_a_delivery_or_a_delay_makes_a_delivery_report(action):
    """A failure is a bounce, and EmailEngine publishes no report for the other actions (nor
    for an action with a type token, which it reads as an object)."""
    status = notice_status({**mime_shapes.DELIVERED, "action": action})
    assert fr.read_report({fr.STATUS: status}).delivery_report is None


def test_the_first_recipient_is_the_one_a_delivery_report_describes():
    """Its fields are never mixed with another recipient's: the second's diagnostic is not the
    first's."""
    status = (notice_status(mime_shapes.DELAYED) + "\r\nFinal-Recipient: rfc822; x@example.org\r\n"
              "Action: failed\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n")
    report = fr.read_report({fr.STATUS: status, fr.HEADERS: ORIGINAL_HEADERS})
    assert report.delivery_report["finalRecipient"]["value"] == "carol@example.net"
    assert report.delivery_report["diagnosticCode"]["value"].startswith("451 4.4.1")
    assert [b["recipient"] for b in report.bounces] == ["x@example.org"]  # still a bounce
    first_failed = fr.read_report({fr.STATUS: mime_shapes.POSTFIX_STATUS.decode()})
    assert first_failed.delivery_report is None


def test_a_delivery_report_keeps_an_arrival_date_that_is_no_date_and_drops_prototype_names():
    status = ("Reporting-MTA: mx.example.test\r\nArrival-Date: yesterday\r\nTo-String: x\r\n"
              "Constructor: y\r\nX-Note: see: here; there\r\n\r\n"
              "Final-Recipient: rfc822; a@example.net\r\nAction: Delivered\r\n")
    assert fr.read_report({fr.STATUS: status}).delivery_report == {
        "reportingMta": "mx.example.test", "arrivalDate": "yesterday",
        "xNote": "see: here; there", "finalRecipient": {"label": "rfc822", "value": "a@example.net"},
        "action": "Delivered"}


# --- the provider plain-text shapes ---------------------------------------------------------------


def top_of(raw: bytes) -> str:
    return raw[:raw.index(b"\r\n\r\n")].decode()


def text_of(raw: bytes) -> str:
    return raw[raw.index(b"\r\n\r\n") + 4:].decode()


def test_exims_bounce_names_its_recipient_in_x_failed_recipients():
    raw = mime_shapes.exim_bounce("<inv-42@example.test>")
    [bounce] = fr.read_report({fr.TEXT: text_of(raw), fr.TOP: top_of(raw)}).bounces
    assert bounce["recipient"] == "judy@example.net"
    assert bounce["action"] == "failed"
    assert bounce["response"] == {
        "message": "550 5.1.1 <judy@example.net>: Recipient address rejected: User unknown in "
                   "virtual mailbox table", "status": "5.1.1"}
    assert bounce["messageId"] == "<inv-42@example.test>"
    assert bounce["messageHeaders"]["subject"] == ["Invoice 42"]  # quoted in its text


def test_exims_own_reason_is_read_from_under_the_failed_address():
    raw = mime_shapes.exim_bounce("<inv-42@example.test>", reason="Unrouteable address")
    [bounce] = fr.read_report({fr.TEXT: text_of(raw), fr.TOP: top_of(raw)}).bounces
    assert bounce["response"] == {"message": "Unrouteable address"}


def test_exims_bounce_without_its_header_names_no_recipient():
    raw = mime_shapes.exim_bounce("<inv-42@example.test>", reason="Unrouteable address")
    assert not fr.read_report({fr.TEXT: text_of(raw)})


def test_the_first_of_several_x_failed_recipients_is_the_bounce():
    raw = mime_shapes.exim_bounce("<inv-42@example.test>").replace(
        b"X-Failed-Recipients: judy@example.net", b"X-Failed-Recipients: judy@example.net,\r\n"
        b" kai@example.net")
    [bounce] = fr.read_report({fr.TEXT: text_of(raw), fr.TOP: top_of(raw)}).bounces
    assert bounce["recipient"] == "judy@example.net"


def test_exims_delay_warning_is_no_bounce():
    raw = mime_shapes.exim_delay_warning("<inv-42@example.test>")
    assert not fr.read_report({fr.TEXT: text_of(raw), fr.TOP: top_of(raw)})


def test_old_gmails_bounce_is_read_from_its_text():
    [bounce] = fr.read_report({fr.TEXT: mime_shapes.OLD_GMAIL_TEXT.decode()}).bounces
    assert bounce["recipient"] == "kim@example.net"
    assert bounce["response"]["status"] == "5.1.1"
    assert bounce["response"]["message"].startswith("Google tried to deliver your message")
    assert bounce["messageId"] == "<CAFw1hR0ld-gmail-1@mail.gmail.com>"


def test_old_gmails_delay_notice_is_no_bounce():
    text = mime_shapes.OLD_GMAIL_TEXT.decode().replace(
        "failed permanently", "has been delayed").replace("permanent failure", "temporary failure") \
        .replace("550 550 5.1.1", "451 451 4.4.1").replace("(state 14).", "(state 14). Will retry.")
    assert fr.text_bounces(text) == []


def workmail_parts(message_id: str = "<prop-1@example.test>") -> dict[str, str]:
    """What the sync reads of WorkMail's bounce: its text (decoded), its header, the
    original's header."""
    raw = mime_shapes.workmail_bounce(message_id)
    text = raw[raw.index(b"quoted-printable\r\n\r\n") + 20:raw.index(b"\r\n--=_WM_generated\r\n",
                                                                        raw.index(b"Technical"))]
    return {fr.TEXT: quopri.decodestring(text).decode(), fr.TOP: top_of(raw),
            fr.HEADERS: f"Message-ID: {message_id}\r\nSubject: Proposal\r\n"}


def test_workmails_technical_report_is_read_as_a_dsn():
    [bounce] = fr.read_report(workmail_parts()).bounces
    assert bounce == {
        "recipient": "liam@example.net", "action": "failed",
        "response": {"source": "smtp", "status": "5.1.1",
                     "message": "550 5.1.1 <liam@example.net>: Recipient address rejected: User "
                                "unknown in relay recipient table"},
        "mta": "a2-75.smtp-out.eu-west-1.amazonses.com", "messageId": "<prop-1@example.test>",
        "messageHeaders": {"message-id": ["<prop-1@example.test>"], "subject": ["Proposal"]}}


def test_workmails_report_is_read_only_when_its_header_says_workmail():
    parts = workmail_parts()
    parts[fr.TOP] = parts[fr.TOP].replace("Amazon WorkMail", "Other Mailer")
    assert not fr.read_report(parts)


def test_workmails_bounce_is_a_candidate_by_its_subject_and_attached_original():
    sections = fr.sections_to_read([attachment("2", "message/rfc822")],
                                   [text()], [Address("", "amazonses.com")],
                                   "Undelivered Mail Returned to Sender")
    assert [(s.section, s.role) for s in sections] == [
        ("1", fr.TEXT), ("HEADER", fr.TOP), ("2.HEADER", fr.HEADERS)]


ZOHO = [Address("", "mailer-daemon@mail.zoho.com")]


def zoho_quoted(message_id: str = "<nl-1@example.test>") -> str:
    raw = mime_shapes.zoho_bounce(message_id)
    start = raw.index(b"Undelivered Message\r\n\r\n") + len(b"Undelivered Message\r\n\r\n")
    return raw[start:raw.rindex(b"\r\n------=_Part")].decode()


def test_zohos_text_rfc822_part_is_read_as_the_originals_headers():
    sections = fr.sections_to_read([attachment("2", "message/delivery-status"),
                                    attachment("3", "text/rfc822")], [text()], ZOHO,
                                   "Undelivered Mail Returned to Sender")
    assert [(s.section, s.role) for s in sections] == [
        ("2", fr.STATUS), ("3", fr.QUOTED), ("HEADER", fr.TOP)]
    [bounce] = fr.read_report({fr.STATUS: mime_shapes.ZOHO_STATUS.decode(),
                               fr.QUOTED: zoho_quoted(), fr.TOP: ""}, ZOHO).bounces
    assert bounce["recipient"] == "mia@example.net"
    assert bounce["response"] == {"message": "5.2.1 The email account that you tried to reach "
                                             "is disabled.", "status": "550"}
    assert bounce["messageId"] == "<nl-1@example.test>"
    assert bounce["messageHeaders"]["subject"] == ["Newsletter"]
    assert bounce["messageHeaders"]["received"][0].startswith("from app.example.test")


def test_a_text_rfc822_part_from_anyone_but_zoho_is_not_read_as_headers():
    read = {fr.STATUS: mime_shapes.ZOHO_STATUS.decode(), fr.QUOTED: zoho_quoted(), fr.TOP: ""}
    assert not fr.read_report(read, DAEMON)
    read[fr.TOP] = "X-Mailer: Zoho Mail\r\n"  # its header says Zoho: read
    assert len(fr.read_report(read, DAEMON).bounces) == 1


def test_exchanges_undeliverable_subject_counts_only_with_auto_submitted():
    sections = fr.sections_to_read([], [text()], [Address("Microsoft Outlook",
                                                          "postmaster-notice@contoso.example")],
                                   "Undeliverable: Quarterly report")
    assert [s.role for s in sections] == [fr.TEXT, fr.TOP_GATED]
    ndr = ("Delivery has failed to these recipients or groups:\r\n\r\nnoor@example.net\r\n"
           "The e-mail address you entered couldn't be found.\r\n\r\n"
           "Diagnostic information for administrators:\r\n\r\n"
           "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\r\n\r\n"
           "Received: from a.example.test\r\nMessage-ID: <q-9@example.test>\r\n")
    assert not fr.read_report({fr.TEXT: ndr, fr.TOP_GATED: "Subject: Undeliverable: x\r\n"})
    [bounce] = fr.read_report({fr.TEXT: ndr, fr.TOP_GATED: "Auto-Submitted: auto-replied\r\n"}
                              ).bounces
    assert bounce["recipient"] == "noor@example.net"
    assert bounce["messageId"] == "<q-9@example.test>"


@pytest.mark.parametrize("text, recipient, message", [
    ("The following recipients were affected:\n  ola@example.net\n\n550 5.1.1 User unknown here\n",
     "ola@example.net", "550 5.1.1 User unknown here"),
    ("Could not be delivered to: <pia@example.jp>\nReason: Unknown user\n", "pia@example.jp",
     None),
    ("The following recipients returned permanent errors: rui@example.net\n", "rui@example.net",
     None),
    ("The reason for the problem:\n5.1.0 - Unknown address error 550-'sol@example.net... No such "
     "user'\n\nRCPT TO: sol@example.net\n", "sol@example.net",
     "5.1.0 - Unknown address error 550-'sol@example.net... No such user'"),
    ("Message could not be delivered to mobile.\nRCPT TO: 5551234@vtext.example\n",
     "5551234@vtext.example", "Message could not be delivered"),
])
def test_the_other_phrasings_emailengine_reads(text, recipient, message):
    """Carriers' and old MTAs' wordings: each names the failed recipient (some no reply)."""
    [bounce] = fr.text_bounces(text)
    assert bounce["recipient"] == recipient
    assert bounce["action"] == "failed"
    assert bounce.get("response", {}).get("message") == message


def test_a_named_recipient_and_a_reply_without_a_claimed_failure_is_no_bounce():
    """"Your message could not be delivered to the following address: <a@b>" with "Remote host
    said:" names both, but claims no failure: EmailEngine makes no bounce of it either."""
    assert fr.text_bounces("Your message could not be delivered to the following address: "
                           "<tom@example.net>\nRemote host said: 550 Mailbox unavailable\n") == []


# --- hostile input --------------------------------------------------------------------------------


HOSTILE = {
    "angles": "<" * 60_000, "open addresses": "<a@" * 20_000, "newlines": "\n" * 60_000,
    "blank lines": " \n" * 30_000, "deliveries": "Delivery " * 8_000, "errors": "Error:" * 10_000,
    "replies": "550 " * 15_000, "host said": "<a@b>: host " * 5_000, "qmail": "\n<a@b>:" * 8_000,
    "reply lines": "\n550-5.1.1-" * 6_000, "received": "Received:" * 7_000, "dashes": "-" * 60_000,
    "gmail": "Delivery to the following recipient failed permanently: a@b "
             "Technical details of failure: " * 500,
    "exim": "The following address(es) failed:\n" + "  a@b\n" * 10_000,
    "nul and controls": "\x00\x01\x1b[0m\ufffd\ud7ff" * 10_000,
    "prototype names": "__proto__: x\r\nconstructor: y\r\n_-_proto__: z\r\n" * 2_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_never_raises_and_costs_little(name):
    """Every role the sync reads, given the same hostile text: the parser returns (never
    raises), in well under a second (its patterns cannot rescan the text from each start), and
    what it returns is bounded by what was read."""
    text = HOSTILE[name]
    started = time.perf_counter()
    for role in (fr.STATUS, fr.TEXT, fr.FEEDBACK):
        report = fr.read_report({role: text, fr.TOP: text, fr.HEADERS: text, fr.QUOTED: text},
                                ZOHO)
        assert len(report.bounces) <= fr.MAX_BOUNCES
        assert len(repr(report)) < 4 * len(text) + 10_000
    fr.text_bounces(text, {"x-failed-recipients": [text[:fr.MAX_VALUE]]})
    assert time.perf_counter() - started < 2.0
