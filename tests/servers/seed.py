"""Realistic test messages and IMAP APPEND seeding.

Why: parsing bugs hide in real-world mail, not in "Subject: test".  The
fixtures here cover the shapes the API must survive: RFC 2047 encoded
non-ASCII headers (umlauts, CJK, emoji), multipart/alternative,
multipart/mixed with attachments and an inline CID image with RFC 2231
encoded non-ASCII filenames, a threaded reply, and a deliberately broken
message (unknown charset, raw 8-bit header bytes, no Date).

Messages are put into a mailbox through IMAP APPEND, exactly as a mail
client would, and the UIDs come from the server's UIDPLUS APPENDUID
response.  Everything is deterministic (fixed dates and Message-IDs), so
tests can assert on them.

No Django imports here: this module must work for any test.
"""

from __future__ import annotations

import email.policy
import email.utils
import inspect
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any

from imapclient import IMAPClient

__all__ = [
    "Attachment",
    "MESSAGE_IDS",
    "SUBJECTS",
    "MALFORMED_SUBJECT_BYTES",
    "build_messages",
    "build_named_messages",
    "make_message",
    "build_email",
    "seed_mailbox",
    "append_messages",
]

DOMAIN = "rig.example.test"
# Stable Message-IDs of build_messages(), in order.
MESSAGE_IDS = {
    "plain": f"<plain-1@{DOMAIN}>",
    "unicode": f"<unicode-2@{DOMAIN}>",
    "alternative": f"<alternative-3@{DOMAIN}>",
    "attachments": f"<attachments-4@{DOMAIN}>",
    "reply": f"<reply-5@{DOMAIN}>",
    "malformed": f"<malformed-6@{DOMAIN}>",
}
UNICODE_SUBJECT = "Ünïcödé Grüße 日本語 🎉"
SUBJECTS = {
    "plain": "Plain ASCII hello",
    "unicode": UNICODE_SUBJECT,
    "alternative": "Newsletter: text and HTML",
    "attachments": "Rechnung März mit Anhang",
    "reply": "Re: Plain ASCII hello",
}
# Raw latin-1 bytes, not RFC 2047: how a parser decodes them is up to it.
MALFORMED_SUBJECT_BYTES = b"Caf\xe9 broken"
PDF_FILENAME = "Rechnung März 2024.pdf"
IMAGE_FILENAME = "grüße-logo.png"
IMAGE_CID = f"logo-4@{DOMAIN}"
APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")

Attachment = tuple[str, bytes, str]  # (filename, content, "maintype/subtype")
FlagsFor = Mapping[int, Sequence[Any]] | Callable[[int, bytes], Sequence[Any]]


def _date(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 3, day, hour, 30, tzinfo=timezone.utc)


def build_email(
    subject: str = "Test message",
    from_: str = "Alice Example <alice@example.test>",
    to: str | Sequence[str] = "Bob Example <bob@example.test>",
    body: str = "Hello,\n\nthis is a test message.\n",
    date: datetime | None = None,
    message_id: str | None = None,
    attachments: Iterable[Attachment] = (),
    html: str | None = None,
    cc: str | Sequence[str] | None = None,
    in_reply_to: str | None = None,
    references: str | Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Build an ``EmailMessage`` (policy SMTP, so CRLF on serialisation).

    Non-ASCII header values are RFC 2047 encoded and non-ASCII attachment
    filenames RFC 2231 encoded by ``email.policy.SMTP``.  ``date`` defaults
    to now, ``message_id`` to a fresh random one.
    """
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    if cc:
        msg["Cc"] = cc if isinstance(cc, str) else ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=DOMAIN)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references if isinstance(references, str) else " ".join(references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content, mimetype in attachments:
        maintype, subtype = mimetype.split("/", 1)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def make_message(**kwargs: Any) -> bytes:
    """``build_email(**kwargs)`` serialised: RFC 5322 bytes with CRLF endings.

    Parameters (all optional): subject, from_, to, body, date, message_id,
    attachments=[(filename, bytes, "type/subtype")], html, cc, in_reply_to,
    references, headers.
    """
    return build_email(**kwargs).as_bytes()


# Show build_email's parameters in help()/IDEs.
make_message.__signature__ = inspect.signature(build_email).replace(return_annotation=bytes)


def tiny_png() -> bytes:
    """A valid 1x1 PNG, built rather than stored as an opaque blob."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def tiny_pdf() -> bytes:
    """Bytes that look like a PDF to sniffers (magic, objects, %%EOF)."""
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def _fixed_boundaries(msg: EmailMessage, name: str) -> EmailMessage:
    """Replace random MIME boundaries so fixture bytes are reproducible."""
    for number, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_rig-{name}-{number}")
    return msg


def _fixture(name: str, **kwargs: Any) -> bytes:
    kwargs.setdefault("message_id", MESSAGE_IDS[name])
    kwargs.setdefault("subject", SUBJECTS[name])
    return _fixed_boundaries(build_email(**kwargs), name).as_bytes()


def _plain() -> bytes:
    return _fixture(
        "plain",
        body="Hi Bob,\n\njust plain ASCII text.\n\n-- \nAlice\n",
        date=_date(1),
    )


def _unicode() -> bytes:
    return _fixture(
        "unicode",
        from_="Jörg Müller-Łukasiewicz <joerg@example.test>",
        to="Zoë Ærøskøbing <zoe@example.test>",
        body="Grüße aus Köln! 日本語のテキスト。 🎉\n",
        date=_date(2),
    )


def _alternative() -> bytes:
    return _fixture(
        "alternative",
        from_="News <news@example.test>",
        body="This week: text part.\nhttps://example.test/news\n",
        html="<html><body><h1>This week</h1><p>HTML <b>part</b>.</p></body></html>\n",
        date=_date(3),
    )


def _with_attachments() -> bytes:
    """mixed[ alternative[ text, related[ html, inline image ] ], pdf ]."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Buchhaltung <billing@example.test>"
    msg["To"] = "Bob Example <bob@example.test>"
    msg["Subject"] = SUBJECTS["attachments"]
    msg["Date"] = email.utils.format_datetime(_date(4))
    msg["Message-ID"] = MESSAGE_IDS["attachments"]
    msg.set_content("Anbei die Rechnung.\n")
    msg.add_alternative(
        f'<html><body><p>Anbei die Rechnung.</p><img src="cid:{IMAGE_CID}"></body></html>\n',
        subtype="html",
    )
    html_part = msg.get_payload()[1]
    html_part.add_related(
        tiny_png(), "image", "png", cid=f"<{IMAGE_CID}>", filename=IMAGE_FILENAME,
        disposition="inline",
    )
    msg.add_attachment(tiny_pdf(), maintype="application", subtype="pdf", filename=PDF_FILENAME)
    return _fixed_boundaries(msg, "attachments").as_bytes()


def _reply() -> bytes:
    return _fixture(
        "reply",
        from_="Bob Example <bob@example.test>",
        to="Alice Example <alice@example.test>",
        body="Hi Alice,\n\nthanks!\n\n> just plain ASCII text.\n",
        date=_date(5),
        in_reply_to=MESSAGE_IDS["plain"],
        references=MESSAGE_IDS["plain"],
    )


def _malformed() -> bytes:
    """Hand-written bytes: unknown charset, raw latin-1 in headers, no Date."""
    return b"\r\n".join(
        [
            b'From: "Broken \xe9mitter" <broken@example.test>',
            b"To: bob@example.test",
            b"Subject: " + MALFORMED_SUBJECT_BYTES,
            b"X-Bad-Encoded-Word: =?x-unknown?Q?=FF=FE?=",
            b"Message-ID: " + MESSAGE_IDS["malformed"].encode(),
            b"MIME-Version: 1.0",
            b'Content-Type: text/plain; charset="x-unknown"',
            b"Content-Transfer-Encoding: 8bit",
            b"",
            b"Body with latin-1 \xe9\xe8 and stray \x80\x81 bytes.",
            b"",
        ]
    )


def build_named_messages() -> dict[str, bytes]:
    """The six fixture messages keyed like MESSAGE_IDS, oldest first."""
    return {
        "plain": _plain(),
        "unicode": _unicode(),
        "alternative": _alternative(),
        "attachments": _with_attachments(),
        "reply": _reply(),
        "malformed": _malformed(),
    }


def build_messages() -> list[bytes]:
    """The six fixture messages as raw RFC 822 bytes, oldest first."""
    return list(build_named_messages().values())


def _internal_date(raw: bytes) -> datetime | None:
    """INTERNALDATE = the Date header when parseable (like a real delivery)."""
    match = re.search(rb"^Date:[ \t]*(.+?)\r?$", raw.split(b"\r\n\r\n", 1)[0], re.M | re.I)
    if not match:
        return None
    try:
        return email.utils.parsedate_to_datetime(match.group(1).decode("ascii", "replace"))
    except (TypeError, ValueError, OverflowError):  # a year of 400 digits
        return None


def _flags(flags_for: FlagsFor | None, index: int, raw: bytes) -> Sequence[Any]:
    if flags_for is None:
        return ()
    if callable(flags_for):
        return flags_for(index, raw)
    return flags_for.get(index, ())


def _appended_uid(client: IMAPClient, folder: str, response: bytes, raw: bytes) -> int:
    match = APPENDUID_RE.search(response or b"")
    if match:
        return int(match.group(2))
    # No UIDPLUS: fall back to searching for the Message-ID.
    found = re.search(rb"^Message-ID:[ \t]*(\S+)", raw, re.M | re.I)
    if found:
        client.select_folder(folder, readonly=True)
        uids = client.search(["HEADER", "Message-ID", found.group(1).decode("ascii", "replace")])
        if uids:
            return max(uids)
    raise RuntimeError(f"cannot determine UID of appended message: {response!r}")


def append_messages(
    client: IMAPClient,
    folder: str,
    messages: Iterable[bytes],
    flags_for: FlagsFor | None = None,
) -> list[int]:
    """APPEND *messages* to *folder* (created if missing); return their UIDs."""
    if not client.folder_exists(folder):
        client.create_folder(folder)
    uids = []
    for index, raw in enumerate(messages):
        response = client.append(
            folder, raw, flags=_flags(flags_for, index, raw), msg_time=_internal_date(raw)
        )
        uids.append(_appended_uid(client, folder, response, raw))
    return uids


def seed_mailbox(
    user: Any,
    folder: str = "INBOX",
    messages: Iterable[bytes] | None = None,
    flags_for: FlagsFor | None = None,
) -> list[int]:
    """Append messages (default: ``build_messages()``) to *user*'s *folder*.

    *user* is a ``MailUser`` (anything with ``imap_client()``).
    *flags_for* maps message index -> flags (e.g. ``{0: [b"\\\\Seen"]}``) or is
    a callable ``(index, raw) -> flags``.  Returns the UIDs in order.
    """
    if messages is None:
        messages = build_messages()
    client = user.imap_client()
    try:
        return append_messages(client, folder, messages, flags_for)
    finally:
        client.logout()
