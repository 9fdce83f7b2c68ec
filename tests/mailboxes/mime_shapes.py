"""Messages shaped like the real-world mail of issue 17, built byte by byte (CRLF): calendar
invites, bounces, text/enriched, inline text with a filename, ``Content-Type: text``, an RFC
2231-encoded boundary, x-uuencode, base64 and quoted-printable attachments, nested messages and
odd address headers. ``corpus(n)`` makes *n* varied messages of these shapes, deterministically.
No Django here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import random
import zlib

CRLF = b"\r\n"


def header_block(headers: list[tuple[str, str | bytes]]) -> bytes:
    lines = []
    for name, value in headers:
        value = value if isinstance(value, bytes) else value.encode("utf-8")
        lines.append(name.encode("ascii") + b": " + value)
    return CRLF.join(lines) + CRLF


def leaf(content_type: str, body: bytes, encoding: str = "7bit", disposition: str | None = None,
         content_id: str | None = None, extra: list[tuple[str, str]] = ()) -> bytes:
    """One MIME part (headers, blank line, *body* encoded with *encoding*)."""
    headers: list[tuple[str, str | bytes]] = [("Content-Type", content_type)]
    if encoding:
        headers.append(("Content-Transfer-Encoding", encoding))
    if disposition:
        headers.append(("Content-Disposition", disposition))
    if content_id:
        headers.append(("Content-ID", f"<{content_id}>"))
    headers.extend(extra)
    return header_block(headers) + CRLF + encode(body, encoding)


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(body).replace(b"\n", CRLF)
    if encoding == "quoted-printable":
        return quopri.encodestring(body.replace(CRLF, b"\n")).replace(b"\n", CRLF)
    if encoding == "x-uuencode":
        return uuencode(body, "file.bin")
    return body


def uuencode(data: bytes, name: str) -> bytes:
    lines = [f"begin 644 {name}".encode()]
    for start in range(0, len(data), 45):
        lines.append(binascii.b2a_uu(data[start:start + 45]).rstrip(b"\n"))
    lines += [b"`", b"end"]
    return CRLF.join(lines) + CRLF


def multipart(subtype: str, parts: list[bytes], boundary: str,
              boundary_param: str | None = None) -> bytes:
    """A multipart part; *boundary_param* replaces ``boundary="<boundary>"`` in its header."""
    param = boundary_param or f'boundary="{boundary}"'
    head = header_block([("Content-Type", f"multipart/{subtype}; {param}")])
    mark = f"--{boundary}".encode()
    body = b"".join(mark + CRLF + part + CRLF for part in parts) + mark + b"--" + CRLF
    return head + CRLF + b"This is a multi-part message in MIME format." + CRLF + body


def message(body_part: bytes, subject: str = "Shapes", to: str = "Bob <bob@example.test>",
            sender: str = "Alice <alice@example.test>", extra: list[tuple[str, str | bytes]] = (),
            number: int = 0) -> bytes:
    """A whole message: top headers, then *body_part* (a part: its own headers and body)."""
    headers = [
        ("From", sender), ("To", to), ("Subject", subject),
        ("Date", "Mon, 04 Mar 2024 09:30:00 +0000"),
        ("Message-ID", f"<shape-{number}-{zlib.crc32(subject.encode()):08x}@example.test>"),
        ("MIME-Version", "1.0"), *extra,
    ]
    return header_block(headers) + body_part


# -- the shapes ----------------------------------------------------------------------

ICS = (
    "BEGIN:VCALENDAR\r\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\n"
    "VERSION:2.0\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTART:20240305T100000Z\r\nDTEND:20240305T110000Z\r\nSUMMARY:Quartalsplanung Q2 – "
    "Raum 4\r\nORGANIZER:mailto:alice@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def calendar_invite(method: str = "REQUEST", number: int = 0) -> tuple[bytes, bytes]:
    """An invite as Outlook sends it: text, HTML and the text/calendar part, no filename."""
    ics = ICS.format(method=method, uid=f"evt-{number}@example.test").encode("utf-8")
    body = multipart("alternative", [
        leaf("text/plain; charset=utf-8", "Einladung: Quartalsplanung\r\n".encode(),
             "quoted-printable"),
        leaf("text/html; charset=utf-8", b"<p>Einladung: Quartalsplanung</p>\r\n",
             "quoted-printable"),
        leaf(f"text/calendar; charset=utf-8; method={method}", ics, "base64"),
    ], f"cal-{number}")
    return message(body, f"Invitation {number}", number=number), ics


def calendar_only(method: str = "CANCEL", number: int = 0) -> tuple[bytes, bytes]:
    """An Outlook cancellation that is nothing but its text/calendar part."""
    ics = ICS.format(method=method, uid=f"only-{number}@example.test").encode("utf-8")
    part = leaf(f'text/calendar; charset="utf-8"; method={method}', ics, "7bit")
    return message(part, f"Canceled {number}", number=number), ics


DELIVERY_STATUS = (
    b"Reporting-MTA: dns; mx.example.test\r\nArrival-Date: Mon, 4 Mar 2024 09:30:00 +0000\r\n"
    b"\r\nFinal-Recipient: rfc822; nobody@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
)
RFC822_HEADERS = (
    b"From: Alice <alice@example.test>\r\nTo: nobody@example.test\r\n"
    b"Subject: Lunch?\r\nMessage-ID: <lunch-1@example.test>\r\n"
)


# What ``bounce()``'s report says: EmailEngine's messageBounce data without ``bounceMessage``.
BOUNCE = {
    "recipient": "nobody@example.test", "action": "failed",
    "response": {"source": "smtp", "message": "550 5.1.1 User unknown", "status": "5.1.1"},
    "mta": "mx.example.test", "messageId": "<lunch-1@example.test>",
    "messageHeaders": {"from": ["Alice <alice@example.test>"], "to": ["nobody@example.test"],
                       "subject": ["Lunch?"], "message-id": ["<lunch-1@example.test>"]}}


def bounce(number: int = 0) -> bytes:
    """A DSN: the human text, message/delivery-status and text/rfc822-headers."""
    body = multipart("report", [
        leaf("text/plain; charset=us-ascii", b"Delivery to nobody@example.test failed.\r\n"),
        leaf("message/delivery-status", DELIVERY_STATUS),
        leaf("text/rfc822-headers", RFC822_HEADERS),
    ], f"dsn-{number}")
    body = body.replace(b"multipart/report;", b"multipart/report; report-type=delivery-status;", 1)
    return message(body, f"Undelivered Mail Returned to Sender {number}",
                   sender="MAILER-DAEMON <postmaster@example.test>", number=number)


# Postfix's DSN for a message to two recipients, one refused and one still being tried,
# with the whole original attached (``RET=FULL``), as Postfix 3 writes it.
POSTFIX_STATUS = (
    b"Reporting-MTA: dns; mail.example.test\r\nX-Postfix-Queue-ID: 4Q7Z1X2Y3Z\r\n"
    b"X-Postfix-Sender: rfc822; alice@example.test\r\n"
    b"Arrival-Date: Mon,  4 Mar 2024 09:30:00 +0000 (UTC)\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; carol@example.net\r\nOriginal-Recipient: rfc822;carol@example.net\r\n"
    b"Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; MX.Example.NET\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <carol@example.net>: Recipient address\r\n"
    b"    rejected: User unknown in virtual mailbox table\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; dave@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
    b"Diagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.7]:25: Connection\r\n"
    b"    timed out\r\n"
)


def postfix_bounce(message_id: str, number: int = 0) -> bytes:
    """A Postfix DSN for the message *message_id* (two recipients: one failed, one delayed),
    the original attached whole as message/rfc822."""
    original = header_block([
        ("From", "Alice <alice@example.test>"), ("To", "carol@example.net, dave@example.org"),
        ("Subject", "Quarterly numbers"), ("Date", "Mon, 04 Mar 2024 09:29:00 +0000"),
        ("Message-ID", message_id), ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=us-ascii")]) + CRLF + b"The numbers.\r\n"
    body = multipart("report", [
        leaf("text/plain; charset=us-ascii",
             b"This is the mail system at host mail.example.test.\r\n\r\n"
             b"I'm sorry to have to inform you that your message could not\r\n"
             b"be delivered to one or more recipients.\r\n", disposition="inline",
             extra=[("Content-Description", "Notification")]),
        leaf("message/delivery-status", POSTFIX_STATUS,
             extra=[("Content-Description", "Delivery report")]),
        leaf("message/rfc822", original, "8bit", extra=[("Content-Description",
                                                          "Undelivered Message")]),
    ], f"postfix-{number}")
    body = body.replace(b"multipart/report;", b"multipart/report; report-type=delivery-status;", 1)
    return message(body, "Undelivered Mail Returned to Sender", to="alice@example.test",
                   sender="MAILER-DAEMON@mail.example.test (Mail Delivery System)",
                   extra=[("Auto-Submitted", "auto-replied")], number=number)


# An abuse report (ARF, RFC 5965) as a mailbox provider's feedback loop sends it.
FEEDBACK_REPORT = (
    b"Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 1\r\n"
    b"Original-Mail-From: <bounces@example.test>\r\n"
    b"Original-Rcpt-To: erin@example.net\r\n"
    b"Arrival-Date: Mon, 04 Mar 2024 11:30:00 +0200\r\n"
    b"Reporting-MTA: dns; mta1.feedback.example.net\r\nSource-IP: 192.0.2.1\r\n"
    b"Authentication-Results: mta1.feedback.example.net;\r\n"
    b"    spf=pass smtp.mailfrom=example.test\r\n"
    b"Reported-Domain: example.test\r\n"
)


def complaint(message_id: str, number: int = 0) -> bytes:
    """An ARF abuse report about the message *message_id*, the original attached whole."""
    original = header_block([
        ("Return-Path", "<bounces@example.test>"), ("From", "Alice <alice@example.test>"),
        ("To", "Erin <erin@example.net>"), ("Subject", "=?utf-8?q?Sp=C3=A4tsommer_sale?="),
        ("Date", "Mon, 04 Mar 2024 09:29:00 +0000"), ("Message-ID", message_id),
        ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii"),
    ]) + CRLF + b"Buy now.\r\n"
    body = multipart("report", [
        leaf("text/plain; charset=us-ascii",
             b"This is an email abuse report for an email message received from IP\r\n"
             b"192.0.2.1 on Mon, 04 Mar 2024 09:30:00 +0000.\r\n"),
        leaf("message/feedback-report", FEEDBACK_REPORT),
        leaf("message/rfc822", original, "7bit", "inline"),
    ], f"arf-{number}")
    body = body.replace(b"multipart/report;", b"multipart/report; report-type=feedback-report;", 1)
    return message(body, "FW: Spätsommer sale", to="abuse@example.test",
                   sender="Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.example.net>",
                   number=number)


# qmail's bounce: plain text, no DSN, the original's headers quoted after it.
QMAIL_TEXT = (
    b"Hi. This is the qmail-send program at mail.example.test.\r\n"
    b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
    b"<frank@example.net>:\r\n"
    b"192.0.2.9 does not like recipient.\r\n"
    b"Remote host said: 550 5.1.1 <frank@example.net>... User unknown\r\n"
    b"Giving up on 192.0.2.9.\r\n\r\n"
    b"--- Below this line is a copy of the message.\r\n\r\n"
    b"Return-Path: <alice@example.test>\r\n"
    b"Received: (qmail 1234 invoked by uid 89); 4 Mar 2024 09:30:00 -0000\r\n"
    b"From: Alice <alice@example.test>\r\nTo: frank@example.net\r\n"
    b"Subject: Minutes\r\n"
    b"Message-ID: <minutes-1@example.test>\r\n\r\nThe minutes.\r\n"
)


def qmail_bounce(number: int = 0) -> bytes:
    """qmail's plain-text bounce, from MAILER-DAEMON."""
    return message(leaf("text/plain; charset=us-ascii", QMAIL_TEXT),
                   "failure notice", to="alice@example.test",
                   sender="MAILER-DAEMON@mail.example.test", number=number)


# Postfix's DSN for a message sent with NOTIFY=SUCCESS,DELAY: the recipient was delivered to
# (or, with ``action``, is still being tried), the original's headers attached.
POSTFIX_SUCCESS_STATUS = (
    b"Reporting-MTA: dns; mail.example.test\r\nX-Postfix-Queue-ID: 4Q8A2B3C4D\r\n"
    b"X-Postfix-Sender: rfc822; alice@example.test\r\n"
    b"Arrival-Date: Mon,  4 Mar 2024 09:30:00 +0000 (UTC)\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; carol@example.net\r\nOriginal-Recipient: rfc822;carol@example.net\r\n"
    b"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.net\r\n"
    b"Diagnostic-Code: smtp; {reply}\r\n"
)
DELIVERED = {"action": "delivered", "status": "2.0.0", "reply": "250 2.0.0 Ok: queued as 9F2C3"}
DELAYED = {"action": "delayed", "status": "4.4.1",
           "reply": "451 4.4.1 mx.example.net: Connection timed out"}
# What EmailEngine's deliveryReport is for POSTFIX_SUCCESS_STATUS with DELIVERED.
DELIVERY_REPORT = {
    "reportingMta": {"label": "dns", "value": "mail.example.test"},
    "xPostfixQueueId": "4Q8A2B3C4D",
    "xPostfixSender": {"label": "rfc822", "value": "alice@example.test"},
    "arrivalDate": "2024-03-04T09:30:00.000Z",
    "finalRecipient": {"label": "rfc822", "value": "carol@example.net"},
    "originalRecipient": {"label": "rfc822", "value": "carol@example.net"},
    "action": "delivered", "status": "2.0.0",
    "remoteMta": {"label": "dns", "value": "mx.example.net"},
    "diagnosticCode": {"label": "smtp", "value": "250 2.0.0 Ok: queued as 9F2C3"}}


def postfix_notice(message_id: str, kind: dict[str, str] = DELIVERED, number: int = 0) -> bytes:
    """Postfix's "Successful Mail Delivery Report" (``kind`` DELIVERED) or "Delayed Mail (still
    being retried)" (DELAYED) for the message *message_id*."""
    status = POSTFIX_SUCCESS_STATUS
    for key, value in kind.items():
        status = status.replace(b"{" + key.encode() + b"}", value.encode())
    headers = header_block([
        ("From", "Alice <alice@example.test>"), ("To", "carol@example.net"),
        ("Subject", "Quarterly numbers"), ("Message-ID", message_id)])
    delivered = kind["action"] == "delivered"
    body = multipart("report", [
        leaf("text/plain; charset=us-ascii",
             b"This is the mail system at host mail.example.test.\r\n\r\n" + (
                 b"Your message was successfully delivered to the destination(s)\r\n"
                 b"listed below.\r\n" if delivered else
                 b"####################################################################\r\n"
                 b"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                 b"####################################################################\r\n"),
             disposition="inline", extra=[("Content-Description", "Notification")]),
        leaf("message/delivery-status", status,
             extra=[("Content-Description", "Delivery report")]),
        leaf("text/rfc822-headers", headers,
             extra=[("Content-Description", "Message Headers")]),
    ], f"notice-{number}")
    body = body.replace(b"multipart/report;", b"multipart/report; report-type=delivery-status;", 1)
    subject = "Successful Mail Delivery Report" if delivered else \
        "Delayed Mail (still being retried)"
    return message(body, subject, to="alice@example.test",
                   sender="MAILER-DAEMON@mail.example.test (Mail Delivery System)",
                   extra=[("Auto-Submitted", "auto-replied")], number=number)


def _original(message_id: str, to: str, subject: str) -> bytes:
    return header_block([
        ("From", "Alice <alice@example.test>"), ("To", to), ("Subject", subject),
        ("Date", "Mon, 04 Mar 2024 09:29:00 +0000"), ("Message-ID", message_id),
        ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii")])


def exim_bounce(message_id: str, reason: str | None = None, number: int = 0) -> bytes:
    """Exim's bounce as it writes it by default: plain text, the failed address named in
    ``X-Failed-Recipients``, its reason indented under it (the remote server's reply, or
    Exim's own words with *reason*: "Unrouteable address"), the original quoted whole."""
    reason_lines = [reason] if reason else [
        "host mx.example.net [192.0.2.10]",
        "SMTP error from remote mail server after RCPT TO:<judy@example.net>:",
        "550 5.1.1 <judy@example.net>: Recipient address rejected: User unknown in virtual",
        "mailbox table"]
    text = (
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        "  judy@example.net\r\n" + "".join(f"    {line}\r\n" for line in reason_lines) +
        "\r\n------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        "Return-path: <alice@example.test>\r\n"
        "Received: from alice by mail.example.test with local (Exim 4.96)\r\n"
        "\t(envelope-from <alice@example.test>)\r\n\tid 1rXyZ9-000Abb-Pq\r\n"
        "\tfor judy@example.net;\r\n\tMon, 04 Mar 2024 09:30:00 +0000\r\n"
    ).encode() + _original(message_id, "judy@example.net", "Invoice 42") + \
        b"\r\nThe invoice.\r\n"
    headers = header_block([
        ("Return-path", "<>"), ("From", "Mail Delivery System <Mailer-Daemon@mail.example.test>"),
        ("To", "alice@example.test"), ("References", message_id),
        ("Content-Type", "text/plain; charset=us-ascii"),
        ("Subject", "Mail delivery failed: returning message to sender"),
        ("Message-Id", f"<E1rXyZa-000Abc-{number:02d}@mail.example.test>"),
        ("Date", "Mon, 04 Mar 2024 09:30:01 +0000"),
        ("X-Failed-Recipients", "judy@example.net"), ("Auto-Submitted", "auto-replied")])
    return headers + CRLF + text


def exim_delay_warning(message_id: str) -> bytes:
    """Exim's warning that a message has waited a day on its queue: the same shape as its
    bounce, no ``X-Failed-Recipients``, a 4xx reply: no bounce."""
    text = (
        "This message was created automatically by mail delivery software.\r\n"
        "A message that you sent has not yet been delivered to one or more of its\r\n"
        "recipients after more than 24 hours on the queue on mail.example.test.\r\n\r\n"
        "The address to which the message has not yet been delivered is:\r\n\r\n"
        "  judy@example.net\r\n    host mx.example.net [192.0.2.10]\r\n"
        "    Delay reason: SMTP error from remote mail server after RCPT TO:<judy@example.net>:\r\n"
        "    451 4.7.1 Greylisted, please try again later\r\n\r\n"
        "No action is required on your part. Delivery attempts will continue for\r\n"
        "some time, and this warning may be repeated at intervals if the message\r\n"
        "remains undelivered.\r\n\r\n"
        "Return-path: <alice@example.test>\r\n"
        "Received: from alice by mail.example.test with local (Exim 4.96)\r\n"
    ).encode() + _original(message_id, "judy@example.net", "Invoice 42")
    headers = header_block([
        ("From", "Mail Delivery System <Mailer-Daemon@mail.example.test>"),
        ("To", "alice@example.test"),
        ("Subject", "Warning: message 1rXyZ9-000Abb-Pq delayed 24 hours"),
        ("Date", "Tue, 05 Mar 2024 09:31:00 +0000"),
        ("Content-Type", "text/plain; charset=us-ascii"), ("Auto-Submitted", "auto-replied")])
    return headers + CRLF + text


# Gmail's bounce before 2015: plain text, the original's headers quoted after it.
OLD_GMAIL_TEXT = (
    b"Delivery to the following recipient failed permanently:\r\n\r\n"
    b"     kim@example.net\r\n\r\n"
    b"Technical details of permanent failure:\r\n"
    # One line, as Gmail wrote it.
    b"Google tried to deliver your message, but it was rejected by the recipient domain. We "
    b"recommend contacting the other email provider for further information about the cause "
    b"of this error. The error that the other server returned was: 550 550 5.1.1 "
    b"<kim@example.net>: Recipient address rejected: User unknown in virtual alias table "
    b"(state 14).\r\n\r\n"
    b"----- Original message -----\r\n\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b"        d=example.test; s=20120113;\r\n"
    b"        h=mime-version:date:message-id:subject:from:to:content-type;\r\n"
    b"        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Received: by 10.50.181.234 with SMTP id dz10mr1429386igc.30.1331120000000; Wed,\r\n"
    b" 07 Mar 2012 03:33:20 -0800 (PST)\r\n"
    b"Received: by 10.50.88.129 with HTTP; Wed, 7 Mar 2012 03:33:20 -0800 (PST)\r\n"
    b"Date: Wed, 7 Mar 2012 13:33:20 +0200\r\n"
    b"Message-ID: <CAFw1hR0ld-gmail-1@mail.gmail.com>\r\n"
    b"Subject: Tickets\r\nFrom: Alice <alice@example.test>\r\nTo: kim@example.net\r\n"
    b"Content-Type: text/plain; charset=ISO-8859-1\r\n\r\nThe tickets.\r\n"
)


def old_gmail_bounce() -> bytes:
    return message(leaf("text/plain; charset=ISO-8859-1", OLD_GMAIL_TEXT),
                   "Delivery Status Notification (Failure)", to="alice@example.test",
                   sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>")


def workmail_bounce(message_id: str) -> bytes:
    """Amazon WorkMail's bounce: no DSN part; the text ends in "Technical report:" and a DSN's
    fields as text (quoted-printable), the original attached; only its header (``X-Mailer``,
    ``Thread-Topic``) says WorkMail wrote it."""
    text = (
        b"An error occurred while trying to deliver the mail to the following recipients:\r\n"
        b"liam@example.net\r\n\r\n"
        b"2024-03-04 09:30:02 : An error occurred while trying to deliver the mail to the\r\n"
        b"following recipients:\r\nliam@example.net\r\n\r\n"
        b"Technical report:\r\n\r\n"
        b"Reporting-MTA: dns; a2-75.smtp-out.eu-west-1.amazonses.com\r\n\r\n"
        b"Action: failed\r\nFinal-Recipient: rfc822; liam@example.net\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <liam@example.net>: Recipient address rejected:\r\n"
        b" User unknown in relay recipient table\r\nStatus: 5.1.1\r\n")
    original = _original(message_id, "liam@example.net", "Proposal") + CRLF + b"See attached.\r\n"
    body = multipart("mixed", [
        leaf("text/plain; charset=UTF-8", text, "quoted-printable"),
        leaf("message/rfc822", original, "", "attachment"),
    ], "=_WM_generated")
    headers = header_block([
        ("Subject", "Undelivered Mail Returned to Sender"), ("From", "amazonses.com"),
        ("To", "Alice <alice@example.test>"), ("Date", "Mon, 04 Mar 2024 09:30:02 +0000"),
        ("Mime-Version", "1.0"), ("X-Mailer", "Amazon WorkMail"),
        ("Thread-Index", "AQHY3Gtv8zo56ntnTay6ZjiEHEJpZw=="),
        ("Thread-Topic", "Undelivered Mail Returned to Sender")])
    return headers + body


ZOHO_STATUS = (
    b"Reporting-MTA: dns; mx.zohomail.com\r\nArrival-Date: Mon, 4 Mar 2024 09:30:00 +0000\r\n"
    b"\r\n"
    b"Original-Recipient: rfc822; mia@example.net\r\nFinal-Recipient: rfc822; mia@example.net\r\n"
    b"Status: 550\r\nAction: failed\r\nLast-Attempt-Date: 4 Mar 2024 09:30:04 GMT\r\n"
    b"Diagnostic-Code: 5.2.1 The email account that you tried to reach is disabled.\r\n"
)


def zoho_bounce(message_id: str) -> bytes:
    """Zoho Mail's DSN: its original is no message/rfc822 but a ``text/rfc822`` part whose text
    is the original's header lines, each indented by a space, after an empty line."""
    quoted = (
        "\r\n Received:from app.example.test (app.example.test [192.0.2.30]) by mx.zohomail.com\r\n"
        "\twith SMTPS id 1709544600000101.5; Mon, 4 Mar 2024 01:30:00 -0800 (PST)\r\n"
        f" Message-ID:{message_id}\r\n Date:Mon, 4 Mar 2024 09:30:00 +0000\r\n"
        " From:Alice <alice@example.test>\r\n To:mia@example.net\r\n Subject:Newsletter\r\n"
        " Content-Type:multipart/alternative;\r\n boundary=\"b1_zoho\"\r\n").encode()
    body = multipart("report", [
        leaf("text/plain; charset=us-ascii",
             b"This message was created automatically by mail delivery software.\r\n"
             b" A message that you sent could not be delivered to one or more of its recipients."
             b" This is a permanent error. \r\n\r\nmia@example.net, ERROR CODE :550 - 5.2.1 The"
             b" email account that you tried to reach is disabled.\r\n",
             extra=[("Content-Description", "Notification")]),
        leaf("message/delivery-status", ZOHO_STATUS,
             extra=[("Content-Description", "Delivery report")]),
        leaf("text/rfc822; charset=us-ascii", quoted,
             extra=[("Content-Description", "Undelivered Message")]),
    ], "----=_Part_20940_776074881.1709544604")
    body = body.replace(b"multipart/report;", b"multipart/report; report-type=delivery-status;", 1)
    return message(body, "Undelivered Mail Returned to Sender", to="alice@example.test",
                   sender="mailer-daemon@mail.zoho.com",
                   extra=[("User-Agent", "Zoho Mail"), ("X-Mailer", "Zoho Mail")])


ENRICHED = b"<bold>Wichtig</bold>: das <italic>Protokoll</italic> ist fertig.\r\n"
WATCH_HTML = b"<b>Watch</b> version\r\n"
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice Example\r\nEND:VCARD\r\n"


def other_text_types(number: int = 0) -> bytes:
    """text/enriched, text/watch-html and text/x-vcard beside the body: each an attachment."""
    body = multipart("mixed", [
        multipart("alternative", [
            leaf("text/plain; charset=utf-8", b"Plain body\r\n"),
            leaf("text/watch-html; charset=utf-8", WATCH_HTML),
            leaf("text/html; charset=utf-8", b"<p>HTML body</p>\r\n"),
        ], f"alt-{number}"),
        leaf("text/enriched; charset=us-ascii", ENRICHED),
        leaf("text/x-vcard; charset=utf-8", VCARD, "quoted-printable"),
    ], f"mix-{number}")
    return message(body, f"Other text types {number}", number=number)


def inline_text_with_filename(number: int = 0) -> bytes:
    """A mailer's text body sent as an inline part with a filename (msg.txt)."""
    body = multipart("mixed", [
        leaf("text/plain; charset=utf-8; name=msg.txt", "Grüße aus dem Büro\r\n".encode(),
             "8bit", 'inline; filename="msg.txt"'),
    ], f"inl-{number}")
    return message(body, f"Inline text {number}", number=number)


def bare_text(number: int = 0) -> bytes:
    """``Content-Type: text`` with no subtype (text/plain by RFC 2045)."""
    return message(leaf("text", b"Just text, no subtype.\r\n", ""), f"Bare text {number}",
                   number=number)


def rfc2231_boundary(number: int = 0) -> bytes:
    """multipart/alternative whose boundary is an RFC 2231 parameter (``boundary*=''...``)."""
    boundary = f"=_rfc2231_{number}"
    body = multipart("alternative", [
        leaf("text/plain; charset=utf-8", b"The plain text behind an RFC 2231 boundary.\r\n"),
        leaf("text/html; charset=utf-8", b"<p>The HTML behind it.</p>\r\n"),
    ], boundary, boundary_param=f"boundary*=''{boundary.replace('=', '%3D')}")
    return message(body, f"RFC 2231 boundary {number}", number=number)


def rfc2231_with_attachment(data: bytes, name: str, number: int = 0) -> bytes:
    """multipart/mixed behind an RFC 2231 boundary: a text body and a base64 file."""
    boundary = f"=_rfc2231_mixed_{number}"
    body = multipart("mixed", [
        leaf("text/plain; charset=utf-8", b"The file behind an RFC 2231 boundary.\r\n"),
        leaf(f'application/pdf; name="{name}"', data, "base64",
             f'attachment; filename="{name}"'),
    ], boundary, boundary_param=f"boundary*=''{boundary.replace('=', '%3D')}")
    return message(body, f"RFC 2231 mixed {number}", number=number)


def uuencoded(data: bytes, name: str, content_type: str = "application/octet-stream",
              number: int = 0) -> bytes:
    body = multipart("mixed", [
        leaf("text/plain; charset=us-ascii", b"The file is attached (uuencoded).\r\n"),
        header_block([("Content-Type", f'{content_type}; name="{name}"'),
                      ("Content-Transfer-Encoding", "x-uuencode"),
                      ("Content-Disposition", f'attachment; filename="{name}"')])
        + CRLF + uuencode(data, name),
    ], f"uu-{number}")
    return message(body, f"uuencoded {number}", number=number)


def attachments(files: list[tuple[str, str, bytes, str]], number: int = 0) -> bytes:
    """A text body and *files* ``(content type, filename, data, encoding)``."""
    body = multipart("mixed", [
        leaf("text/plain; charset=utf-8", "Anbei die Dateien.\r\n".encode(), "quoted-printable"),
        *(leaf(f'{ctype}; name="{name}"', data, encoding, f'attachment; filename="{name}"')
          for ctype, name, data, encoding in files),
    ], f"att-{number}")
    return message(body, f"Attachments {number}", number=number)


def odd_addresses(number: int = 0) -> bytes:
    """The address headers Dovecot's ENVELOPE loses or mangles, beside names it gets right."""
    return message(
        leaf("text/plain; charset=us-ascii", b"Addresses.\r\n"), f"Addresses {number}",
        sender="=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.test>",
        to="Mikel@Lindsaar <raasdnil@example.test>, Bob <bob@example.test>, carol@example.test",
        extra=[("Cc", "Big Bug bb@bug.example.test"),
               ("Bcc", "<Undisclosed-Recipient:@mailman.example.test;>"),
               ("Reply-To", "ops@example.test (Operations Desk)")],
        number=number,
    )


# -- a varied corpus -------------------------------------------------------------------------

_BINARY_TYPES = [
    ("application/pdf", "report.pdf"), ("image/png", "chart.png"), ("image/jpeg", "photo.jpg"),
    ("application/zip", "archive.zip"), ("application/vnd.ms-excel", "sheet.xls"),
    ("application/octet-stream", "blob.bin"), ("audio/mpeg", "voice.mp3"),
]
_TEXT_TYPES = [
    ("text/csv; charset=utf-8", "numbers.csv"), ("text/x-log; charset=utf-8", "server.log"),
    ("application/json", "data.json"), ("text/plain; charset=utf-8", "notes.txt"),
]
_BODIES = [
    "Hallo Bob,\r\nanbei die Unterlagen. Grüße, Jörg\r\n",
    "Здравствуйте!\r\nСчёт во вложении.\r\n",
    "日本語のテキストです。\r\n",
    "Plain ASCII body with a long line " + "x" * 200 + "\r\n",
]


def _text_data(rng: random.Random) -> bytes:
    lines = [f"{rng.randint(0, 10**6)};Grüße;{rng.random():.5f};€" for _ in range(rng.randint(1, 80))]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _nested(rng: random.Random, number: int) -> bytes:
    inner = message(multipart("mixed", [
        leaf("text/plain; charset=utf-8", b"Inner text\r\n"),
        leaf('application/pdf; name="inner.pdf"', rng.randbytes(rng.randint(10, 3000)), "base64",
             'attachment; filename="inner.pdf"'),
    ], f"inner-{number}"), f"Inner {number}", number=number)
    return leaf("message/rfc822", inner, "7bit", 'attachment; filename="forwarded.eml"')


def corpus(count: int, seed: int = 17) -> list[bytes]:
    """*count* varied messages: the issue's shapes in turn, and mixed messages of random
    bodies, charsets, encodings and attachments (binary and text, base64, quoted-printable,
    uuencode, inline images, nested messages, calendar parts)."""
    rng = random.Random(seed)
    shapes = [
        lambda n: calendar_invite(rng.choice(["REQUEST", "CANCEL", "REPLY"]), n)[0],
        lambda n: calendar_only("CANCEL", n)[0],
        bounce, other_text_types, inline_text_with_filename, bare_text, rfc2231_boundary,
        lambda n: uuencoded(rng.randbytes(rng.randint(1, 5000)), "tool.zip", number=n),
        odd_addresses,
    ]
    out = []
    for number in range(count):
        if number % 2 == 0:
            out.append(shapes[(number // 2) % len(shapes)](number))
        else:
            out.append(_mixed(rng, number))
    return out


def _mixed(rng: random.Random, number: int) -> bytes:
    text = rng.choice(_BODIES)
    encoding = rng.choice(["quoted-printable", "base64", "8bit"])
    plain = leaf("text/plain; charset=utf-8", text.encode("utf-8"), encoding)
    if rng.random() < 0.5:
        html = f"<html><body><p>{text}</p><img src=\"cid:img{number}@x\"></body></html>\r\n"
        related = multipart("related", [
            leaf("text/html; charset=utf-8", html.encode("utf-8"), rng.choice(
                ["quoted-printable", "base64"])),
            leaf('image/png; name="logo.png"', rng.randbytes(rng.randint(50, 2000)), "base64",
                 content_id=f"img{number}@x"),
        ], f"rel-{number}")
        body = multipart("alternative", [plain, related], f"alt-{number}")
    else:
        body = plain
    parts = [body]
    for _ in range(rng.randint(0, 4)):
        kind = rng.random()
        if kind < 0.45:
            ctype, name = rng.choice(_BINARY_TYPES)
            parts.append(leaf(f'{ctype}; name="{name}"', rng.randbytes(rng.randint(0, 20000)),
                              "base64", f'attachment; filename="{name}"'))
        elif kind < 0.75:
            ctype, name = rng.choice(_TEXT_TYPES)
            parts.append(leaf(f'{ctype}; name="{name}"', _text_data(rng),
                              rng.choice(["quoted-printable", "base64"]),
                              f'attachment; filename="{name}"'))
        elif kind < 0.85:
            parts.append(_nested(rng, number))
        elif kind < 0.93:
            ics = ICS.format(method="REQUEST", uid=f"mixed-{number}").encode()
            parts.append(leaf("text/calendar; method=REQUEST; charset=utf-8", ics,
                              rng.choice(["7bit", "base64", "quoted-printable"])))
        else:
            data = rng.randbytes(rng.randint(1, 3000))
            parts.append(header_block([
                ("Content-Type", 'application/octet-stream; name="data.bin"'),
                ("Content-Transfer-Encoding", "x-uuencode")]) + CRLF + uuencode(data, "data.bin"))
    if len(parts) > 1:
        body = multipart("mixed", parts, f"mixed-{number}")
    return message(body, f"Mixed {number}", number=number)
