"""Pure unit tests of ``mailboxes.imap.parse`` on hand-written, realistic FETCH responses.

Why hand-written bytes: the shapes that break parsers (Gmail's extension items, the header
fields as a literal, ``~{n}`` and 8-bit literals in the middle of a response, RFC 2231
continuations, mislabelled charsets, NIL where a list belongs) are rare in a test server's
output, so they are spelled out here exactly as servers send them. A message's envelope is read
from its ``BODY[HEADER.FIELDS (...)]`` item (``fetch.BASE_META_ITEMS``); a server's ENVELOPE
item is ignored. No server, no database.
"""

from __future__ import annotations

import base64
import random
import re
from datetime import datetime, timedelta, timezone

import pytest

from mailboxes.imap import fetch, parse
from mailboxes.imap.types import Address, FlagChange, MessageMeta, Part

UTC = timezone.utc


def meta_of(raw: bytes) -> MessageMeta:
    """The MessageMeta of one raw wire response (``* n FETCH ...`` with literals inline)."""
    (text, literals), *rest = list(parse.wire_responses(raw))
    assert not rest
    _, items = parse.parse_fetch(text, literals)
    meta = parse.message_meta(items)
    assert meta is not None
    return meta


# The header fields the engine asks for (fetch.BASE_META_ITEMS), as a server names the item in
# its answer (without .PEEK), and the names of those fields.
_ASKED = re.search(r"BODY\.PEEK(\[HEADER\.FIELDS \(([^)]*)\)\])", fetch.BASE_META_ITEMS)
HEADER_FIELDS = b"BODY" + _ASKED.group(1).encode()
FIELD_NAMES = tuple(_ASKED.group(2).encode().split())


def fields(block: bytes, marker: bytes = b"") -> bytes:
    """The header-fields item carrying *block* (its lines and the blank line that ends them) as
    a literal of its exact length; *marker* ``b"~"`` makes it a binary literal (RFC 3516)."""
    return HEADER_FIELDS + b" %s{%d}\r\n" % (marker, len(block)) + block


# RFC 3501's FETCH example, its envelope as the header lines it was made from (field order and
# case as the message has them: "cc", "Message-Id"; no Sender or Reply-To).
GMAIL_HEADERS = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"\r\n"
)
GMAIL = (
    b'* 12 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334866 '
    b'X-GM-LABELS (\\Inbox "\\\\Important" "Work/Clients" &AMk-tiquettes "[Gmail]/Sent Mail") '
    b'UID 4711 FLAGS (\\Seen \\Recent $Forwarded NonJunk) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
    b'RFC822.SIZE 4286 MODSEQ (12345) '
    b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL) '
    + fields(GMAIL_HEADERS) + b")\r\n"
)


def test_gmail_response_with_extension_items():
    meta = meta_of(GMAIL)
    assert meta.uid == 4711
    assert meta.flags == ("\\Seen", "$Forwarded", "NonJunk")
    assert meta.internal_date == datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)
    assert meta.internal_date.tzinfo is UTC
    assert meta.size == 4286
    assert meta.modseq == 12345
    assert meta.gm_msgid == 1278455344230334866
    assert meta.gm_thrid == 1278455344230334865
    assert meta.labels == ("\\Inbox", "\\Important", "Work/Clients", "Étiquettes", "[Gmail]/Sent Mail")
    assert meta.subject == "IMAP4rev1 WG mtg summary and minutes"
    assert meta.from_ == [Address("Terry Gray", "gray@cac.washington.edu")]
    # No Sender or Reply-To header: both are the From addresses (RFC 3501), as the
    # server's ENVELOPE for this message has them.
    assert meta.sender == [Address("Terry Gray", "gray@cac.washington.edu")]
    assert meta.reply_to == [Address("Terry Gray", "gray@cac.washington.edu")]
    assert meta.to == [Address("", "imap@cac.washington.edu")]
    assert [a.as_dict() for a in meta.cc] == [
        {"name": "", "address": "minutes@CNRI.Reston.VA.US"},
        {"name": "John Klensin", "address": "KLENSIN@MIT.EDU"},
    ]
    assert meta.bcc == []
    assert meta.date == datetime(1996, 7, 17, 2, 23, 25, tzinfo=timezone(timedelta(hours=-7)))
    assert meta.message_id == "<B27397-0100000@cac.washington.edu>"
    assert meta.in_reply_to is None
    assert meta.references == []
    assert meta.text_parts == [Part("1", "text/plain", 3028, encoding="7bit", charset="us-ascii")]
    assert meta.has_attachments is False
    assert meta.attachments == []
    assert meta.email_id is None
    assert meta.thread_id is None


def test_objectid_items():
    raw = b'* 1 FETCH (UID 9 EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9def) FLAGS ())\r\n'
    meta = meta_of(raw)
    assert (meta.email_id, meta.thread_id, meta.flags) == ("M6d99ac3275bb4e", "T64b478a75b7ea9def", ())
    assert meta_of(b"* 1 FETCH (UID 9 EMAILID (Mab) THREADID NIL)\r\n").thread_id is None


def test_subject_split_over_encoded_words():
    # "日本語" in UTF-8 is e6 97 a5 e6 9c ac e8 aa 9e: the words split the second character.
    first = base64.b64encode("日本語".encode()[:4]).decode()
    second = base64.b64encode("日本語".encode()[4:]).decode()
    subject = f"=?UTF-8?B?{first}?=\r\n =?utf-8?b?{second}?= =?ISO-8859-1?Q?_gr=FC=DFe?= x"
    assert parse.decode_header(subject.encode()) == "日本語 grüße x"
    # Whitespace between an encoded word and plain text is kept; between two words dropped.
    assert parse.decode_header(b"Re: =?utf-8?q?M=C3=A4rz?=  =?utf-8?q?_2024?= ok") == "Re: März 2024 ok"
    assert parse.decode_header(b"=?utf-8*de?Q?Gr=C3=BC=C3=9Fe?=") == "Grüße"  # RFC 2231 language
    assert parse.decode_header(b"=?utf-8?B?w7xiZXI?=") == "über"  # missing base64 padding


def test_quoted_string_with_escaped_quotes():
    # An IMAP quoted string with \" and \\ escapes (a Gmail label), and in the header block a
    # quoted display name with escaped quotes and a comma that does not split the address.
    block = b'Subject: He said "hi" \\ bye\r\nFrom: "\\"Smith, J\\"" <j@example.test>\r\n\r\n'
    raw = b'* 3 FETCH (UID 3 X-GM-LABELS ("He said \\"hi\\" \\\\ bye") ' + fields(block) + b")\r\n"
    meta = meta_of(raw)
    assert meta.labels == ('He said "hi" \\ bye',)
    assert meta.subject == 'He said "hi" \\ bye'
    assert meta.from_ == [Address('"Smith, J"', "j@example.test")]


def test_literal_subject_and_name_in_wire_and_imaplib_form():
    # Two literals, 8-bit Latin-1 (undeclared) in both: the header block, then a file name in
    # the middle of a BODYSTRUCTURE, with text after it.
    block = (b"Subject: Caf\xe9 broken\r\nFrom: Broken \xe9mitter <broken@example.test>\r\n"
             b"Message-ID: <m@x>\r\n\r\n")
    name = b"Caf\xe9.pdf"
    structure = b' BODYSTRUCTURE ("application" "pdf" ("name" {%d}' % len(name)
    rest = b') NIL NIL "base64" 10 NIL NIL NIL NIL))'
    raw = b"* 6 FETCH (UID 6 " + fields(block) + structure + b"\r\n" + name + rest + b"\r\n"
    meta = meta_of(raw)
    assert meta.subject == "Café broken"
    assert meta.from_ == [Address("Broken émitter", "broken@example.test")]
    assert meta.message_id == "<m@x>"
    assert [part.filename for part in meta.attachments] == ["Café.pdf"]
    # imaplib delivers the same response as (text, literal) tuples and a trailing bytes element.
    imaplib_data = [
        (b"6 (UID 6 " + HEADER_FIELDS + b" {%d}" % len(block), block),
        (structure, name),
        rest,
        b"7 (UID 7 FLAGS (\\Seen))",
    ]
    grouped = list(parse.imaplib_responses(imaplib_data))
    assert len(grouped) == 2
    seq, items = parse.parse_fetch(*grouped[0])
    assert seq == 6
    assert parse.message_meta(items) == meta
    assert parse.flag_change(parse.parse_fetch(*grouped[1])[1]) == FlagChange(7, ("\\Seen",), None)


def test_utf8_literal_and_binary_literal_marker():
    # Raw UTF-8 headers (RFC 6532) in a binary literal (~{n}), an item after it.
    block = "Subject: Grüße 日本\r\nFrom: Jörg 日本 <j@example.test>\r\n\r\n".encode()
    raw = b"* 1 FETCH (UID 1 " + fields(block, b"~") + b" FLAGS (\\Seen))\r\n"
    meta = meta_of(raw)
    assert meta.subject == "Grüße 日本"
    assert meta.from_ == [Address("Jörg 日本", "j@example.test")]
    assert meta.flags == ("\\Seen",)


MIXED = (
    b'* 4 FETCH (UID 40 BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL '
    b'"quoted-printable" 120 4 NIL NIL NIL NIL)("text" "html" ("charset" "UTF-8") NIL NIL "base64" 400 6 '
    b'NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL)'
    b'("image" "png" ("name" "logo.png") "<logo@x.test>" NIL "base64" 96 NIL NIL NIL NIL)'
    b'("application" "pdf" ("name" "=?utf-8?Q?Rechnung_M=C3=A4rz.pdf?=") NIL NIL "base64" 206 NIL '
    b'("attachment" ("filename*0*" "utf-8\'\'R%C3%A9sum%C3%A9%20" "filename*1*" "2024%E2%82%AC" '
    b'"filename*2" ".pdf")) NIL NIL)'
    b'("message" "rfc822" NIL NIL NIL "7bit" 900 (NIL "Inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)("image" "gif" NIL '
    b'NIL NIL "base64" 50 NIL ("attachment" ("filename" "inner.gif")) NIL NIL) "mixed" ("boundary" "b3") '
    b'NIL NIL NIL) 30 NIL ("attachment" NIL) NIL NIL)'
    b'("text" "plain" ("charset" "iso-8859-1") NIL NIL "8bit" 77 3 NIL ("inline" ("filename" "notes.txt")) '
    b'NIL NIL)'
    b'("text" "calendar" ("charset" "utf-8" "method" "REQUEST") NIL NIL "7bit" 500 20 NIL NIL NIL NIL)'
    b'("application" "octet-stream" ("name*" "iso-8859-1\'\'d%E9j%E0.bin") NIL NIL "base64" 8 NIL NIL '
    b'NIL NIL) "mixed" ("boundary" "b0") NIL NIL NIL))\r\n'
)


def test_multipart_mixed_bodystructure():
    meta = meta_of(MIXED)
    assert meta.text_parts == [
        Part("1.1", "text/plain", 120, encoding="quoted-printable", charset="utf-8"),
        Part("1.2", "text/html", 400, encoding="base64", charset="utf-8"),
        # An inline text part with a filename is body text (as mailparser and EmailEngine
        # read it), not an attachment (issue 17, item 3).
        Part("5", "text/plain", 77, "notes.txt", None, "inline", "8bit", "iso-8859-1"),
    ]
    assert meta.has_attachments is True
    assert meta.attachments == [
        Part("2", "image/png", 96, "logo.png", "logo@x.test", "inline", "base64"),
        # RFC 2231 continuations win over the RFC 2047 name parameter.
        Part("3", "application/pdf", 206, "Résumé 2024€.pdf", None, "attachment", "base64"),
        # An attached message is listed itself; its own parts (inner.gif) are not.
        Part("4", "message/rfc822", 900, None, None, "attachment", "7bit"),
        # text/calendar without a name is an attachment, with its method (issue 17, item 1).
        Part("6", "text/calendar", 500, encoding="7bit", charset="utf-8", method="REQUEST"),
        Part("7", "application/octet-stream", 8, "déjà.bin", None, None, "base64"),
    ]


@pytest.mark.parametrize("parse_bodystructure", [parse.parse_bodystructure,
                                                 parse.python_parse_bodystructure])
def test_a_type_that_is_no_rfc_2045_token_is_not_taken(parse_bodystructure):
    # A literal may carry anything, CR LF too; a type goes out as a download's Content-Type.
    structure = [
        [b"text\r\nX-Evil: 1", b"plain", None, None, None, b"7bit", b"1", b"1"],
        [b"image", b"png\x1b[31m", None, None, None, b"base64", b"5", None,
         [b"attach\x01ment", None], None, None],
        [b"Application", b"PDF", None, None, None, b"base64", b"9", None, [b"Attachment", None],
         None, None],
        b"mixed"]
    attachments, texts = parse_bodystructure(structure)
    assert [(p.part, p.content_type) for p in texts + attachments] == [
        ("1", "application/plain"), ("2", "image/octet-stream"), ("3", "application/pdf")]
    assert [p.disposition for p in attachments] == [None, None, "attachment"]


def test_single_part_attachment_and_nested_numbering():
    single = b'("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 10 NIL ("attachment" NIL) NIL NIL)'
    attachments, texts = parse.parse_bodystructure(parse.parse_tokens(single)[0])
    assert texts == []
    assert [(p.part, p.filename) for p in attachments] == [("1", "a.pdf")]
    nested = parse.parse_tokens(
        b'((("text" "plain" NIL NIL NIL "7bit" 1 1)(("text" "html" NIL NIL NIL "7bit" 1 1)'
        b'("image" "jpeg" NIL "<c@d>" NIL "base64" 5) "related") "alternative")'
        b'("audio" "ogg" NIL NIL NIL "base64" 9) "mixed")'
    )[0]
    attachments, texts = parse.parse_bodystructure(nested)
    assert [p.part for p in texts] == ["1.1", "1.2.1"]
    assert [(p.part, p.content_id, p.disposition) for p in attachments] == [
        ("1.2.2", "c@d", "inline"),
        ("2", None, None),
    ]


def test_broken_and_unknown_charsets_never_raise():
    assert parse.decode_header(b"=?x-unknown?Q?caf=C3=A9?=") == "café"  # valid UTF-8 wins
    assert parse.decode_header(b"=?x-unknown?Q?=FF=FE?=") == "ÿþ"  # else Latin-1 / cp1252
    assert parse.decode_header(b"=?utf-8?q?caf=E9?=") == "café"  # mislabelled Latin-1
    assert parse.decode_header(b"=?base64?q?abc?=") == "abc"  # a codec that is not a charset
    assert parse.decode_header(b"=?ks_c_5601-1987?B?x9Gxub7u?=") == "한국어"
    assert parse.decode_header(b"=?gb2312?B?1tDOxA==?=") == "中文"
    assert parse.decode_header(b"=?iso-8859-1?q?=80uro?=") == "€uro"  # the cp1252 superset
    assert parse.decode_header(b"Caf\xe9 \x81") == "Café \x81"  # not cp1252 either: Latin-1
    assert parse.decode_header(b"=?utf-8?B?###?=") == ""
    assert parse.decode_charset(b"\x82\xa0", "shift_jis") == "あ"
    assert parse.decode_charset(b"abc\xff", "euc-jp") == "abc\ufffd"
    assert parse.decode_header(b"=?idna?q?a=FFb?=") == "aÿb"  # a codec without "replace"
    assert parse.decode_header(b"=?utf-16?b?AA?=") == "\ufffd"  # odd byte count: replaced
    assert parse.decode_header(b"=?utf-8\x00?q?x?=") == "x"


def test_nil_everywhere():
    meta = meta_of(
        b"* 1 FETCH (UID 5 FLAGS NIL INTERNALDATE NIL RFC822.SIZE NIL MODSEQ NIL "
        b"BODYSTRUCTURE NIL " + HEADER_FIELDS + b" NIL X-GM-LABELS NIL)\r\n"
    )
    assert meta == MessageMeta(uid=5)
    # The header fields as an empty literal, a list, or a block with no field.
    assert meta_of(b"* 1 FETCH (UID 5 " + fields(b"") + b")\r\n") == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 " + HEADER_FIELDS + b" (NIL))\r\n") == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 " + fields(b"\r\n") + b")\r\n") == MessageMeta(uid=5)


def test_an_envelope_item_is_ignored():
    """The envelope is read from the header fields only: a server's ENVELOPE (here the one
    RFC 3501 gives for the GMAIL message, with another subject and an extra Bcc) changes
    nothing, whether it comes before or after them, and alone it gives no envelope."""
    envelope = (
        b'ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "Not the subject" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'((NIL NIL "hidden" "x.test")) NIL "<B27397-0100000@cac.washington.edu>") '
    )
    expected = meta_of(GMAIL)
    assert expected.subject == "IMAP4rev1 WG mtg summary and minutes"
    assert expected.bcc == []
    assert meta_of(GMAIL.replace(b"UID 4711 ", b"UID 4711 " + envelope)) == expected
    assert GMAIL.endswith(b")\r\n")
    assert meta_of(GMAIL[:-3] + b" " + envelope.rstrip() + b")\r\n") == expected
    assert meta_of(b"* 1 FETCH (UID 5 " + envelope + b")\r\n") == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 ENVELOPE NIL)\r\n") == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 ENVELOPE (NIL))\r\n") == MessageMeta(uid=5)


@pytest.mark.parametrize(
    "header, expected",
    [
        # An empty group gives nothing; a group gives its members (a mail client lists them).
        (b"undisclosed-recipients:;", []),
        (b"Undisclosed recipients: ;", []),
        (b"<Undisclosed-Recipient:@mailman.example.test;>", []),
        (b"team: a@x, b@x;", [Address("", "a@x"), Address("", "b@x")]),
        # A bare local part (no domain) is an address, as the server's ENVELOPE had it.
        (b"user", [Address("", "user")]),
        (b"root (Cron Daemon)", [Address("Cron Daemon", "root")]),
        # An empty address is no address.
        (b"<>", []),
        # All of it in one header, with an encoded name in the group.
        (b"undisclosed-recipients:;, bob, Team: =?utf-8?q?Zo=C3=AB?= <zoe@x.test>;, <>, root",
         [Address("", "bob"), Address("Zoë", "zoe@x.test"), Address("", "root")]),
    ],
)
def test_groups_and_missing_domains(header, expected):
    assert parse.header_addresses(header) == expected
    # ... and so they come out of a response's To header.
    raw = b"* 1 FETCH (UID 1 " + fields(b"To: " + header + b"\r\n\r\n") + b")\r\n"
    assert meta_of(raw).to == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"Mon, 4 Mar 2024 09:30:00 +0100", datetime(2024, 3, 4, 9, 30, tzinfo=timezone(timedelta(hours=1)))),
        (b"4 Mar 2024 09:30:00 -0000", datetime(2024, 3, 4, 9, 30, tzinfo=UTC)),
        (b"Tue, 5 Mar 24 09:30 EST", datetime(2024, 3, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5)))),
        (b"Tue,  5 Mar 2024 09:30:61 GMT", datetime(2024, 3, 5, 9, 30, 59, tzinfo=UTC)),
        (b"5 March 2024 09:30:00 +0000 (UTC)", datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        (b"Tue, 5 Mar 2024 09:30:00 +9999", datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        (b"2024-03-05T09:30:00", datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        (b"garbage", None),
        (b"Mon, 32 Feb 2024 10:00:00 +0000", None),
        (b"", None),
        (None, None),
    ],
)
def test_dates(raw, expected):
    result = parse.parse_date(raw)
    assert result == expected
    if result is not None:
        assert result.utcoffset() == expected.utcoffset()


def test_garbage_date_in_an_envelope():
    meta = meta_of(b"* 1 FETCH (UID 1 " + fields(b"Date: next tuesday-ish\r\nSubject: s\r\n\r\n") + b")\r\n")
    assert meta.date is None
    assert meta.subject == "s"


def test_internaldate():
    expected = datetime(1996, 7, 7, 9, 44, 25, tzinfo=UTC)
    assert parse.parse_internaldate(b" 7-Jul-1996 02:44:25 -0700") == expected
    assert parse.parse_internaldate(b"31-Feb-2024 00:00:00 +0000") is None
    assert parse.parse_internaldate(b"01-Jan-0001 00:30:00 +0100") is None  # before year 1 in UTC
    assert parse.parse_internaldate(b"nonsense") is None


def test_references_and_in_reply_to_from_header_fields():
    block = (
        b"In-Reply-To: Your mail <c@x> (x)\r\nMessage-ID:\r\n   <own@x>  \r\n"
        b"References: <a@x>\r\n <b@x>\t<a@x>\r\n\t<c @x>\r\n\r\n"
    )
    meta = meta_of(b"* 2 FETCH (UID 2 " + fields(block) + b")\r\n")
    assert meta.references == ["<a@x>", "<b@x>", "<c@x>"]
    assert meta.in_reply_to == "<c@x>"
    assert meta.message_id == "<own@x>"
    assert parse.normalize_message_id(b"  bare-id@host ") == "bare-id@host"
    assert parse.normalize_message_id(b"<>") is None


def test_sequence_sets():
    wanted = parse.SequenceSet("5,1:3,10:*")
    assert [n for n in range(1, 13) if n in wanted] == [1, 2, 3, 5, 10, 11, 12]
    assert 9 not in parse.SequenceSet("10:*")  # the RFC 3501 "n:* includes the maximum" quirk
    assert 7 in parse.SequenceSet("*:4")
    assert 123 in parse.SequenceSet("*")
    assert 1 in parse.SequenceSet("$")
    assert parse.expand_sequence_set(b"1:3,7,9:8") == [1, 2, 3, 7, 8, 9]
    assert parse.expand_sequence_set("4:*,x,2") == [2]


def test_unsolicited_and_uidless_responses():
    assert parse.message_meta(parse.parse_fetch(b"* 3 FETCH (FLAGS (\\Seen))")[1]) is None
    assert parse.flag_change(parse.parse_fetch(b"* 3 FETCH (UID 8)")[1]) is None
    seq, items = parse.parse_fetch(b"* 3 FETCH (UID 8 FLAGS (\\Deleted \\*) MODSEQ (99) X-UNKNOWN (a (b)))")
    assert seq == 3
    assert items["X-UNKNOWN"] == [b"a", [b"b"]]
    assert parse.flag_change(items) == FlagChange(8, ("\\Deleted", "\\*"), 99)


def test_tokenizer_edge_cases():
    assert parse.parse_tokens(b'(a "b c" NIL "NIL" {3}\r\n BODY[1.MIME]<0> ())', [b"xyz"]) == [
        [b"a", b"b c", None, b"NIL", b"xyz", b"BODY[1.MIME]<0>", []]
    ]
    assert parse.parse_tokens(b")) (a (b") == [[b"a", [b"b"]]]  # unbalanced: best effort
    assert parse.parse_tokens(b"{5}") == [b""]  # a literal that never came
    assert parse.literal_size(b"* 1 FETCH (BODY[] {123}") == 123
    assert parse.literal_size(b"x {12+}") == 12
    assert parse.literal_size(b"x ~{7}") == 7
    assert parse.literal_size(b'x "{7}"') is None


def test_random_garbage_never_raises():
    rng = random.Random(2024)
    pieces = [
        b"(", b")", b" ", b"NIL", b'"', b"\\", b"{3}", b"UID", b"7", b"ENVELOPE", b"BODYSTRUCTURE",
        b"FLAGS", b"=?utf-8?q?", b"?=", b"\xff", b"\xe9", b'"text"', b'"plain"', b"MODSEQ",
        b"X-GM-LABELS", b"&AMk-", b"BODY[HEADER.FIELDS (REFERENCES)]", b'"message" "rfc822"',
    ]
    for _ in range(3000):
        text = b"* 1 FETCH (UID 1 " + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        _, items = parse.parse_fetch(text, [b"abc", b"\xff\xfe"])
        parse.message_meta(items)
        parse.flag_change(items)
        parse.decode_header(text)
        parse.parse_date(text)


def mutations(seed: int, samples: list[bytes], count: int):
    """*count* copies of the *samples*, each with bytes cut, copied or changed, as
    ``(text, literals)`` of the responses the wire form then holds."""
    rng = random.Random(seed)
    for _ in range(count):
        raw = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(raw))
            action = rng.randrange(3)
            if action == 0:
                del raw[at : at + rng.randint(1, 20)]
            elif action == 1:
                raw[at:at] = raw[rng.randrange(len(raw)) :][: rng.randint(1, 30)]
            else:
                raw[at] = rng.randrange(256)
        yield from parse.wire_responses(bytes(raw))


def test_mutated_real_responses_never_raise():
    for text, literals in mutations(7, [GMAIL, MIXED], 2000):
        _, items = parse.parse_fetch(text, literals)
        parse.message_meta(items)
