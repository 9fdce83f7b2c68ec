"""Pure unit tests of ``mailboxes.imap.parse`` on hand-written, realistic FETCH responses.

Why hand-written bytes: the shapes that break parsers (Gmail's extension items, literals in the
middle of an ENVELOPE, RFC 2231 continuations, mislabelled charsets, NIL where a list belongs)
are rare in a test server's output, so they are spelled out here exactly as servers send them.
No server, no database.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone

import pytest

from mailboxes.imap import parse
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


GMAIL = (
    b'* 12 FETCH (X-GM-THRID 1278455344230334865 X-GM-MSGID 1278455344230334866 '
    b'X-GM-LABELS (\\Inbox "\\\\Important" "Work/Clients" &AMk-tiquettes "[Gmail]/Sent Mail") '
    b'UID 4711 FLAGS (\\Seen \\Recent $Forwarded NonJunk) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
    b'RFC822.SIZE 4286 MODSEQ (12345) '
    b'ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
    b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
    b'"<B27397-0100000@cac.washington.edu>") '
    b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL) '
    b"BODY[HEADER.FIELDS (REFERENCES)] {2}\r\n\r\n)\r\n"
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
    raw = (
        b'* 3 FETCH (UID 3 ENVELOPE (NIL "He said \\"hi\\" \\\\ bye" '
        b'(("\\"Smith, J\\"" NIL "j" "example.test")) NIL NIL NIL NIL NIL NIL NIL))\r\n'
    )
    meta = meta_of(raw)
    assert meta.subject == 'He said "hi" \\ bye'
    assert meta.from_ == [Address('"Smith, J"', "j@example.test")]


def test_literal_subject_and_name_in_wire_and_imaplib_form():
    raw = (
        b"* 6 FETCH (UID 6 ENVELOPE (NIL {11}\r\nCaf\xe9 broken (({14}\r\nBroken \xe9mitter"
        b' NIL "broken" "example.test")) NIL NIL NIL NIL NIL NIL "<m@x>"))\r\n'
    )
    meta = meta_of(raw)
    assert meta.subject == "Café broken"
    assert meta.from_ == [Address("Broken émitter", "broken@example.test")]
    assert meta.message_id == "<m@x>"
    # imaplib delivers the same response as (text, literal) tuples and a trailing bytes element.
    imaplib_data = [
        (b"6 (UID 6 ENVELOPE (NIL {11}", b"Caf\xe9 broken"),
        (b" (({14}", b"Broken \xe9mitter"),
        b' NIL "broken" "example.test")) NIL NIL NIL NIL NIL NIL "<m@x>"))',
        b"7 (UID 7 FLAGS (\\Seen))",
    ]
    grouped = list(parse.imaplib_responses(imaplib_data))
    assert len(grouped) == 2
    seq, items = parse.parse_fetch(*grouped[0])
    assert seq == 6
    assert parse.message_meta(items) == meta
    assert parse.flag_change(parse.parse_fetch(*grouped[1])[1]) == FlagChange(7, ("\\Seen",), None)


def test_utf8_literal_and_binary_literal_marker():
    subject = "Grüße 日本".encode()
    raw = b"* 1 FETCH (UID 1 ENVELOPE (NIL ~{%d}\r\n%s NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n" % (
        len(subject), subject,
    )
    assert meta_of(raw).subject == "Grüße 日本"


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
        b"ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODYSTRUCTURE NIL "
        b"BODY[HEADER.FIELDS (REFERENCES)] NIL X-GM-LABELS NIL)\r\n"
    )
    assert meta == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 ENVELOPE NIL)\r\n") == MessageMeta(uid=5)
    assert meta_of(b"* 1 FETCH (UID 5 ENVELOPE (NIL))\r\n") == MessageMeta(uid=5)


def test_groups_and_missing_domains():
    addresses = parse.parse_tokens(
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)(NIL NIL "bob" "MISSING_DOMAIN")'
        b'(NIL NIL "Team" NIL)("=?utf-8?q?Zo=C3=AB?=" NIL "zoe" "x.test")(NIL NIL NIL NIL)'
        b'(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "root" ".MISSING-HOST-NAME."))'
    )[0]
    assert parse.parse_envelope_addresses(addresses) == [
        Address("", "bob"), Address("Zoë", "zoe@x.test"), Address("", "root"),
    ]


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
    meta = meta_of(b'* 1 FETCH (UID 1 ENVELOPE ("next tuesday-ish" "s" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n')
    assert meta.date is None
    assert meta.subject == "s"


def test_internaldate():
    expected = datetime(1996, 7, 7, 9, 44, 25, tzinfo=UTC)
    assert parse.parse_internaldate(b" 7-Jul-1996 02:44:25 -0700") == expected
    assert parse.parse_internaldate(b"31-Feb-2024 00:00:00 +0000") is None
    assert parse.parse_internaldate(b"01-Jan-0001 00:30:00 +0100") is None  # before year 1 in UTC
    assert parse.parse_internaldate(b"nonsense") is None


def test_references_and_in_reply_to_from_header_fields():
    block = b"References: <a@x>\r\n <b@x>\t<a@x>\r\n\t<c @x>\r\nIn-Reply-To: Your mail <c@x> (x)\r\n\r\n"
    raw = (
        b"* 2 FETCH (UID 2 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL \"  <own@x>  \") "
        b"BODY[HEADER.FIELDS (REFERENCES IN-REPLY-TO)] {%d}\r\n%s)\r\n" % (len(block), block)
    )
    meta = meta_of(raw)
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
