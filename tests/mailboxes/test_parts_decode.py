"""Pure unit tests of ``mailboxes.imap.parts``: transfer decoding, charsets, ``parse_message``.

Why split at every offset: a streamed download is cut wherever the server's chunk boundary
falls, so the incremental decoders must give the same bytes however the input is cut - in the
middle of a base64 quantum, of an ``=3D`` escape, of a ``=\\r\\n`` soft line break.
No server, no database.
"""

from __future__ import annotations

import base64
import quopri
import random
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailboxes.imap import parse, parts
from tests.servers import seed


def decode_in_pieces(data: bytes, encoding: str, *cuts: int) -> bytes:
    bounds = [0, *cuts, len(data)]
    chunks = [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    return b"".join(parts.decode_stream(iter(chunks), encoding))


# -- base64 ----------------------------------------------------------------------------------


def test_it_decodes_base64_split_at_every_offset():
    original = random.Random(1).randbytes(1500)
    encoded = base64.encodebytes(original).replace(b"\n", b"\r\n")
    assert base64.b64decode(encoded) == original
    for cut in range(len(encoded) + 1):
        assert decode_in_pieces(encoded, "base64", cut) == original, cut


@pytest.mark.parametrize("size", range(0, 9))
def test_it_decodes_every_padding_length_split_anywhere(size):
    original = bytes(range(200, 200 + size))
    encoded = base64.encodebytes(original).replace(b"\n", b"\r\n")
    for first in range(len(encoded) + 1):
        for second in range(first, len(encoded) + 1):
            assert decode_in_pieces(encoded, "base64", first, second) == original


def test_it_decodes_base64_in_many_small_chunks():
    original = random.Random(2).randbytes(10_000)
    encoded = base64.encodebytes(original)
    rng = random.Random(3)
    for _ in range(50):
        cuts = sorted(rng.sample(range(len(encoded)), 40))
        assert decode_in_pieces(encoded, "BASE64", *cuts) == original


@pytest.mark.parametrize("encoded, expected", [
    (b"SGVsbG8", b"Hello"),                       # missing padding
    (b"SGVsbG8=====", b"Hello"),                  # too much padding
    (b"SGV*sb!G8~=", b"Hello"),                   # garbage characters
    (b"SGVs\r\n bG8\t=\r\n", b"Hello"),           # whitespace anywhere
    (b"SGVsbG8=V29ybGQ=", b"HelloWorld"),         # concatenated blobs: go on after padding
    (b"SGVsbG8x", b"Hello1"),
    (b"SGVsbG8xA", b"Hello1"),                    # a lone sixth-bit character is dropped
    (b"", b""),
    (b"====", b""),
    (b"\x00\xff\x80", b""),
])
def test_it_tolerates_broken_base64(encoded, expected):
    for cut in range(len(encoded) + 1):
        assert decode_in_pieces(encoded, "base64", cut) == expected
    assert parts.decode_transfer(encoded, "base64") == expected


def test_it_drops_an_incomplete_quantum_of_a_cut_base64_body():
    encoded = base64.b64encode(b"abcdefgh")  # YWJjZGVmZ2g=
    assert parts.decode_transfer(encoded[:6], "base64", final=False) == b"abc"
    assert parts.decode_transfer(encoded[:6], "base64") == b"abcd"


# -- quoted-printable ------------------------------------------------------------------------

QP_SAMPLE = (
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, 1 + 1 =3D 2.\r\n"
    b"A long line that is wrapped with a soft line break right he=\r\n"
    b"re, and one more=\r\n"
    b" time.  \r\n"                      # trailing transport whitespace is removed
    b"Tabs\tinside, a trailing one\t\r\n"
    b"Escaped trailing space=20\r\n"
    b"Soft break with space after =  \r\n"
    b"joined. Lower-case =c3=a9 and invalid =ZZ kept.\r\n"
    b"=3D=3D=3D\r\n"
    b"no final newline=3D"
)
QP_EXPECTED = (
    "Grüße aus Köln, 1 + 1 = 2.\r\n"
    "A long line that is wrapped with a soft line break right here, and one more time.\r\n"
    "Tabs\tinside, a trailing one\r\n"
    "Escaped trailing space \r\n"
    "Soft break with space after joined. Lower-case é and invalid =ZZ kept.\r\n"
    "===\r\n"
    "no final newline="
).encode()


def test_it_decodes_quoted_printable_split_at_every_offset():
    assert parts.decode_transfer(QP_SAMPLE, "quoted-printable") == QP_EXPECTED
    for cut in range(len(QP_SAMPLE) + 1):
        assert decode_in_pieces(QP_SAMPLE, "quoted-printable", cut) == QP_EXPECTED, cut


def test_it_decodes_quoted_printable_split_at_every_pair_of_offsets():
    sample = b"a=3D=\r\nb =\r\n=C3=A9\r\nc=\n=41\r\n"
    expected = parts.decode_transfer(sample, "quoted-printable")
    assert expected == "a=b é\r\ncA\r\n".encode()
    for first in range(len(sample) + 1):
        for second in range(first, len(sample) + 1):
            assert decode_in_pieces(sample, "quoted-printable", first, second) == expected


def test_it_round_trips_quoted_printable_of_random_text():
    rng = random.Random(4)
    alphabet = "abc =\t\r\nÄé€日本😀"
    text = "".join(rng.choice(alphabet) for _ in range(3000)).replace("\r", "")
    original = text.replace("\n", "\r\n").encode()
    encoded = quopri.encodestring(original)
    assert parts.decode_transfer(encoded, "quoted-printable") == original
    for _ in range(100):
        cuts = sorted(rng.sample(range(len(encoded)), 5))
        assert decode_in_pieces(encoded, "quoted-printable", *cuts) == original


def test_it_bounds_a_quoted_printable_line_without_line_breaks():
    unit = b"x=3Dy=C3=A9 \t"
    sample = unit * 20_000  # 260 kB on one line
    expected = (b"x=y\xc3\xa9 \t") * 20_000
    decoder = parts._QuotedPrintableDecoder()
    out = [decoder.decode(sample[start:start + 4096]) for start in range(0, len(sample), 4096)]
    assert len(decoder._carry) <= parts._QP_LONG_LINE + 4096
    assert b"".join(out) + decoder.flush() == expected
    for cut in range(parts._QP_LONG_LINE - 20, parts._QP_LONG_LINE + 20):
        assert decode_in_pieces(sample, "quoted-printable", cut, cut + parts._QP_LONG_LINE) == (
            expected)


def test_it_drops_an_incomplete_escape_of_a_cut_quoted_printable_body():
    assert parts.decode_transfer(b"caf=C3=A", "quoted-printable", final=False) == b"caf\xc3"
    assert parts.decode_transfer(b"caf=", "quoted-printable", final=False) == b"caf"
    assert parts.decode_transfer(b"caf=\r", "quoted-printable", final=False) == b"caf"


@pytest.mark.parametrize("encoding", [None, "", "7bit", "8bit", "binary", "x-unknown"])
def test_it_passes_other_encodings_through(encoding):
    chunks = [b"=3D", b"SGVs\r\n", b"\xff"]
    assert list(parts.decode_stream(iter(chunks), encoding)) == chunks
    assert parts.decode_transfer(b"=3D\xff", encoding) == b"=3D\xff"


# -- charsets --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, charset", [
    ("日本語のテキスト、カタカナ。", "iso-2022-jp"),
    ("Привет, мир! Ёлка.", "windows-1251"),
    ("Привет, мир!", "koi8-r"),
    ("中文测试，繁體中文，𠀀", "gb18030"),
    ("简体中文", "gb2312"),
    ("Grüße, café, naïve", "iso-8859-1"),
    ("한국어", "ks_c_5601-1987"),
    ("日本語", "shift_jis"),
    ("Grüße 🎉", "utf-8"),
    ("Grüße 🎉", "UTF8"),
    ("Grüße 🎉", '"utf-8"'),
])
def test_it_decodes_charsets(text, charset):
    data = text.encode(parts.charset_codec(charset))
    assert parts.decode_text(data, charset) == text


def test_it_reads_microsoft_extensions_of_iso_2022_jp():
    text = "半角ｶﾀｶﾅ"  # half-width katakana: not in ISO-2022-JP proper, sent by Outlook anyway
    assert parts.decode_text(text.encode("iso2022_jp_ext"), "ISO-2022-JP") == text


def test_it_reads_iso_8859_1_as_windows_1252_and_keeps_c1_bytes():
    assert parts.decode_text(b"\x80 5, \x93quoted\x94", "ISO-8859-1") == "€ 5, “quoted”"
    assert parts.decode_text(b"a\x81b", "iso-8859-1") == "a\x81b"  # undefined in 1252: latin-1


@pytest.mark.parametrize("charset", [None, "", "x-unknown", "unknown-8bit", "no-such-charset",
                                     "base64", "zlib", "rot13", "idna", "undefined", "utf-8\x00",
                                     "unicode_escape", "raw_unicode_escape", "punycode"])
def test_it_falls_back_to_utf8_for_missing_and_unknown_charsets(charset):
    assert parts.charset_codec(charset) == "utf-8"
    assert parts.decode_text("Grüße".encode(), charset) == "Grüße"
    assert parts.decode_text(b"caf\xe9 \x80", charset) == "caf\ufffd \ufffd"


def test_a_charset_that_decodes_to_a_lone_surrogate_gives_a_replacement_character():
    # UTF-7 decodes "+2AA-" to U+D800 alone, which nothing downstream can encode as UTF-8.
    assert parts.decode_text(b"a+2AA-b +ZeVnLIqe-", "utf-7") == "a\ufffdb 日本語"
    assert parts.decode_text(b"a+2AA-b", "utf-7", final=False) == "a\ufffdb"
    assert parse.decode_header(b"=?utf-7?q?+2AA-?= =?utf-7?q?+ZeVnLIqe-?=") == "\ufffd日本語"


def test_an_escape_codec_is_not_run_on_a_header():
    # Python's unicode_escape would turn a sender's text "\x00" into a NUL.
    assert parse.decode_header(b"=?unicode_escape?q?a=5Cx00b?=") == "a\\x00b"
    assert parse.decode_header(b"=?raw_unicode_escape?q?=5Cud800?=") == "\\ud800"


def test_it_reads_us_ascii_labels_as_utf8():
    assert parts.decode_text("Grüße".encode(), "us-ascii") == "Grüße"


def test_it_replaces_bytes_invalid_in_the_declared_charset():
    assert parts.decode_text(b"ok \xff\xfe end", "utf-8") == "ok \ufffd\ufffd end"
    assert parts.decode_text(b"\x1b$B\xff\xff\x1b(B ok", "iso-2022-jp").endswith(" ok")
    assert "ok" in parts.decode_text(b"\x98 ok", "windows-1251")


def test_it_drops_a_character_split_by_a_cut():
    data = "añb€".encode()
    assert parts.decode_text(data[:-1], "utf-8", final=False) == "añb"
    assert parts.decode_text(data[:-1], "utf-8") == "añb\ufffd"
    assert parts.decode_text("中文".encode("gb18030")[:3], "gb18030", final=False) == "中"


# -- parse_message ---------------------------------------------------------------------------


def test_it_parses_the_named_seed_messages():
    messages = seed.build_named_messages()
    plain = parts.parse_message(messages["plain"])
    assert plain.plain == "Hi Bob,\n\njust plain ASCII text.\n\n-- \nAlice\n"
    assert plain.html is None
    assert plain.attachments == []
    headers = {h["key"]: h["value"] for h in plain.headers}
    assert headers["Subject"] == seed.SUBJECTS["plain"]
    assert headers["Message-ID"] == seed.MESSAGE_IDS["plain"]

    unicode = parts.parse_message(messages["unicode"])
    headers = {h["key"]: h["value"] for h in unicode.headers}
    assert headers["Subject"] == seed.UNICODE_SUBJECT
    assert "Jörg Müller-Łukasiewicz" in headers["From"]
    assert unicode.plain == "Grüße aus Köln! 日本語のテキスト。 🎉\n"

    alternative = parts.parse_message(messages["alternative"])
    assert alternative.plain.startswith("This week: text part.")
    assert alternative.html.startswith("<html><body><h1>This week</h1>")

    with_attachments = parts.parse_message(messages["attachments"])
    assert with_attachments.plain == "Anbei die Rechnung.\n"
    assert f"cid:{seed.IMAGE_CID}" in with_attachments.html
    image, pdf = with_attachments.attachments
    assert image.as_dict() == {
        "part": "1.2.2", "contentType": "image/png", "size": len(seed.tiny_png()),
        "filename": seed.IMAGE_FILENAME, "contentId": seed.IMAGE_CID, "disposition": "inline",
        "inline": True}
    assert image.content == seed.tiny_png()
    assert (pdf.part, pdf.filename, pdf.content_type, pdf.inline) == (
        "2", seed.PDF_FILENAME, "application/pdf", False)
    assert pdf.content == seed.tiny_pdf()

    malformed = parts.parse_message(messages["malformed"])
    headers = {h["key"]: h["value"] for h in malformed.headers}
    assert headers["Subject"] == "Café broken"
    assert headers["From"] == '"Broken émitter" <broken@example.test>'
    assert malformed.plain == "Body with latin-1 \ufffd\ufffd and stray \ufffd\ufffd bytes.\n"


def attachment_message(disposition: str) -> bytes:
    return (
        b"Subject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: " + disposition + b"\r\n\r\nJVBERi0x\r\n--b1--\r\n"
    )


@pytest.mark.parametrize("disposition", [
    b"attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf",
    b"attachment; filename*0*=UTF-8''%E2%82%AC%20ra; filename*1=tes.pdf",
    b'attachment; filename="=?UTF-8?B?4oKsIHJhdGVzLnBkZg==?="',
    b'attachment; filename="=?utf-8?Q?=E2=82=AC_rates.pdf?="',
    b'attachment; filename="\xe2\x82\xac rates.pdf"',  # raw UTF-8 (SMTPUTF8 mailers)
])
def test_it_decodes_encoded_filenames(disposition):
    parsed = parts.parse_message(attachment_message(disposition))
    assert parsed.plain == "see attached"  # the CRLF before a boundary belongs to the boundary
    [attachment] = parsed.attachments
    assert attachment.filename == "€ rates.pdf"
    assert (attachment.part, attachment.content, attachment.size) == ("2", b"%PDF-1", 6)


def test_it_decodes_a_raw_latin1_filename():
    parsed = parts.parse_message(attachment_message(b'attachment; filename="caf\xe9.pdf"'))
    assert parsed.attachments[0].filename == "café.pdf"


def nested_message() -> tuple[bytes, bytes]:
    inner = EmailMessage(policy=SMTP)
    inner["Subject"] = "Inner"
    inner.set_content("inner text\n")
    inner.add_alternative("<p>inner html</p>\n", subtype="html")
    inner.add_attachment(b"PK\x03\x04", maintype="application", subtype="zip", filename="a.zip")
    outer = EmailMessage(policy=SMTP)
    outer["Subject"] = "Fwd: Inner"
    outer.set_content("outer text\n")
    outer.add_attachment(inner)
    return outer.as_bytes(), inner.as_bytes()


def test_it_lists_an_attached_message_without_taking_its_text():
    raw, _ = nested_message()
    parsed = parts.parse_message(raw)
    assert parsed.plain == "outer text\n"
    assert parsed.html is None
    [attached] = parsed.attachments
    assert (attached.part, attached.content_type) == ("2", "message/rfc822")
    assert attached.size == len(attached.content) > 0
    assert b"Subject: Inner" in attached.content


def test_it_numbers_the_parts_of_an_attached_message_as_imap_does():
    raw, inner_raw = nested_message()
    attached = parts.parse_message(raw).attachments[0]
    inner = parts.parse_message(attached.content, section=attached.part)
    assert inner.plain == "inner text\n"
    assert inner.html == "<p>inner html</p>\n"
    assert [(a.part, a.filename, a.content) for a in inner.attachments] == [
        ("2.2", "a.zip", b"PK\x03\x04")]
    assert {h["key"]: h["value"] for h in inner.headers}["Subject"] == "Inner"
    single = parts.parse_message(b"Content-Type: image/gif\r\n\r\nGIF89a", section="3")
    assert single.attachments[0].part == "3.1"


@pytest.mark.parametrize("raw", [
    b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
    b"Subject: x\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nno boundary at all\r\n",
    b"Subject: x\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n"
    b"--zz\r\nContent-Type: text/plain\r\n\r\nno boundary at all\r\n",  # no closing boundary
])
def test_it_reads_text_of_malformed_multiparts(raw):
    parsed = parts.parse_message(raw)
    assert parsed.plain.rstrip("\n") == "no boundary at all"
    assert parsed.attachments == []


def test_it_keeps_parts_after_a_bogus_boundary_line():
    raw = (b'Content-Type: multipart/related; boundary="q"\r\n\r\npreamble\r\n'
           b"--q\r\nContent-Type: text/html; charset=windows-1251\r\n\r\n\xcf\xf0\xe8\r\n"
           b"--qq-not-it\r\n"
           b"--q\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n\r\npng\r\n--q--\r\n")
    parsed = parts.parse_message(raw)
    assert parsed.html.startswith("При")
    [image] = parsed.attachments
    assert (image.part, image.content_id, image.inline, image.disposition) == (
        "2", "img1", True, "inline")


@pytest.mark.parametrize("raw", [
    b"",
    b"\r\n\r\n",
    b"no headers, just text",
    b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@",
    b"Content-Type: \x00\xff/\xfe\r\nContent-Disposition: attachment; filename*=x''%ZZ\r\n\r\nx",
    b"Content-Type: message/rfc822\r\n\r\nnot really a message",
    b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nAction: failed\r\n",
    b"Subject: =?utf-8?B?broken?= =?x-unknown?Q?=FF?=\r\n\r\nbody",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n" * 200,
    random.Random(5).randbytes(5000),
])
def test_it_never_raises_on_garbage(raw):
    parsed = parts.parse_message(raw)
    assert isinstance(parsed.as_dict()["headers"], list)


def test_absurd_nesting_is_read_as_text():
    raw = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
                   for n in range(100)) + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    parsed = parts.parse_message(raw)
    assert parsed.plain == raw.decode().replace("\r\n", "\n")
    assert parsed.attachments == []


ATTACHED = (b'Subject: Report\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b'--b\r\nContent-Type: application/pdf; name="r.pdf"\r\n\r\n%PDF\r\n--b--\r\n')


@pytest.mark.parametrize("field", [b"To: " + b'"' * 50_000, b"Cc: a@b.c," + b" x@y.z," * 5000,
                                   b"Message-ID: <" + b"(" * 5000 + b">"])
def test_a_structured_field_beyond_the_bound_has_the_message_read_as_text(field):
    # The email package's parse of such a field grows with the square of its length (50 KB
    # of quotes in a To: 16 s): the message is read as text instead, never parsed.
    assert parts.parse_message(ATTACHED).attachments[0].filename == "r.pdf"
    raw = field + b"\r\n" + ATTACHED
    assert not parts.email_package_bounded(raw)
    parsed = parts.parse_message(raw)
    assert parsed.attachments == []
    assert parsed.plain == raw.decode().replace("\r\n", "\n")


def test_fields_within_the_bound_and_long_unstructured_ones_are_parsed():
    raw = (b"To: " + b"a@example.com, " * 120 + b"\r\nX-Long: " + b'"' * 50_000 + b"\r\n"
           + b"Cc: x@example.com\r\n" * 100 + ATTACHED)
    assert parts.email_package_bounded(raw)
    assert parts.parse_message(raw).attachments[0].filename == "r.pdf"


def test_comments_nested_past_32_levels_have_the_message_read_as_text():
    # Within 2 KB, but the email package recurses once a level: a RecursionError.
    raw = b"To: " + b"(" * 900 + b"x" + b")" * 900 + b" a@b.c\r\n" + ATTACHED
    assert not parts.email_package_bounded(raw)
    assert parts.parse_message(raw).attachments == []
    assert parts.email_package_bounded(b"To: " + b"(" * 32 + b"x" + b")" * 32 + b"\r\n" + ATTACHED)


@pytest.mark.parametrize("value, depth", [
    ("a (b (c)) d", 2), ("(" * 40 + ")" * 40, 40), ("(" * 40, 40), (")" * 50 + "(" * 33, 33),
    ("\\(" * 50 + "(x)", 1), ('"' + "(" * 50 + '"', 50)])
def test_comment_depth(value, depth):
    # At most 32 openers: their count (an upper bound); more: the depth, escapes skipped.
    assert parts.comment_depth(value) == (value.count("(") if value.count("(") <= 32 else depth)


def test_the_structured_fields_are_those_the_email_package_parses():
    from email import headerregistry

    parsed = {name for name, kind in headerregistry._default_header_map.items()
              if not issubclass(kind, headerregistry.UnstructuredHeader)}
    assert parts.STRUCTURED_FIELDS == parsed
    assert parts.structured_field(" Resent-To ")
    assert not parts.structured_field("Subject")


def test_a_folded_field_is_measured_whole():
    folded = b"To: " + b"a@example.com,\r\n " * 300 + b"b@example.com\r\n" + ATTACHED
    assert not parts.email_package_bounded(folded)
