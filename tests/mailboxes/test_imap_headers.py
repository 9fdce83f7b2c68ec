"""The compiled header values (``mailboxes/imap/_headers.pyx``) are exactly what the Python
reference in ``parse`` gives: decoded text (RFC 2047 words of every kind, broken ones, folding,
8-bit bytes), header fields, message ids and dates, on hand-picked values, on every header of
the message corpus, on encoded words of random text in several charsets, and on random bytes
made of the pieces each syntax turns on; ``make`` built them, so they are what runs. Pure
functions: no server."""

from __future__ import annotations

import base64
import binascii
import os
import random
import re
from pathlib import Path

import pytest

from mailboxes.imap import parse
from tests.mailboxes import mime_shapes
from tests.python_runs import copy_tree, python_in

ROOT = Path(__file__).resolve().parents[2]

try:
    from mailboxes.imap import _headers
except ImportError:  # not built: test_the_compiled_header_values_are_in_use says so
    _headers = None

needs_native = pytest.mark.skipif(_headers is None, reason="the compiled header values are not built")

VALUES = [
    None, "=?utf-8?q?str?=", b"", b"Plain ASCII", b"a=b?c", b"=?", b"?=",
    b"=?utf-8?q?J=C3=B6rg_M=C3=BCller?=", b"=?UTF-8?B?5p2O5bCP6b6N?=", b"=?utf-8?b?5p2O5bCP6b6N?= 2",
    b"=?iso-8859-1?q?caf=E9?=", b"=?ISO-8859-1*fr?Q?caf=e9?=", b"=?utf-8*en-us?q?x?=",
    # Adjacent words: the space between is dropped; one charset joined before decoding (a
    # character split across two words survives), two charsets not.
    b"=?utf-8?q?=C3?= =?utf-8?q?=A9?=", b"=?utf-8?q?a?=\t=?iso-8859-1?q?=E9?=",
    b"x =?utf-8?q?a?= y =?utf-8?q?b?=z", b"=?utf-8?q?a?=  \r\n =?utf-8?q?b?=",
    # Broken words: an escape that is not =XX, a soft break, an empty text, a bad encoding
    # letter, a space in the charset, nested starts, an unknown charset, invalid UTF-8.
    b"=?utf-8?q?a=ZZb?=", b"=?utf-8?q?a=?=", b"=?utf-8?q?a=4?=", b"=?utf-8?q?a==41?=",
    b"=?utf-8?q??=", b"=?utf-8?x?abc?=", b"=?utf 8?q?a?=", b"=?=?utf-8?q?a?=", b"=??q?a?=",
    b"=?x-unknown?q?caf=E9?=", b"=?utf-8?q?caf=E9?=", b"=?us-ascii?q?caf=E9?=",
    b"=?gb2312?b?1tDOxA==?=", b"=?shift_jis?b?g2WDWINn?=", b"=?utf-16?b?AEEAQg==?=",
    # Base64 with junk, missing or extra padding, a lone last character.
    b"=?utf-8?b?5p2O 5bCP\t6b6N?=", b"=?utf-8?b?QQ?=", b"=?utf-8?b?QUI?=", b"=?utf-8?b?QUJD?=",
    b"=?utf-8?b?QUJDR?=", b"=?utf-8?b?Q=Q==?=", b"=?utf-8?b?****?=", b"=?utf-8?b?QR==?=",
    # Folding and stray line ends, raw 8-bit text (UTF-8, Windows-1252, neither).
    b"Long\r\n subject", b"a\r\n\tb\rc\nd", b"=?utf-8?q?a?=\r\n =?utf-8?q?b?=",
    b"caf\xc3\xa9", b"caf\xe9 \x80", b"\x81\x8d\x8f", b"\xff=?utf-8?q?a?=\xfe",
]

# The pieces the syntax turns on, and a few it does not.
PIECES = [b"=?", b"?=", b"?", b"=", b"utf-8", b"UTF-8", b"iso-8859-1", b"*en", b"q", b"Q", b"b",
          b"B", b"=C3", b"=a9", b"=E9", b"=4", b"=ZZ", b"_", b" ", b"\t", b"\r\n", b"\n", b"\r",
          b"5p2O", b"QQ==", b"+/", b"x-unknown", b"us-ascii", b"\xc3\xa9", b"\xff", b"a", b"Z",
          b"\xe6\x9d\x8e", b"gb2312", b"\x0b"]
CHARSETS = ["utf-8", "UTF-8", "iso-8859-1", "windows-1252", "iso-8859-7", "koi8-r", "shift_jis",
            "gb2312", "big5", "euc-kr"]


def _same(value) -> str:
    compiled = _headers.decode_header(value)
    assert compiled == parse.python_decode_header(value), value
    return compiled


def test_the_compiled_header_values_are_in_use():
    """``make`` builds ``_headers``; without it every name, subject, date and message id of an
    index goes through the slower Python code (a warning at import says so)."""
    assert _headers is not None, "mailboxes/imap/_headers.pyx is not built: run `make install`"
    assert parse.decode_header is _headers.decode_header
    assert parse._header_fields is _headers.header_fields
    assert parse.normalize_message_id is _headers.normalize_message_id
    assert parse.message_id_list is _headers.message_id_list
    assert parse.parse_date is _headers.parse_date
    assert parse.parse_internaldate is _headers.parse_internaldate
    assert parse.header_addresses is _headers.header_addresses


@needs_native
@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_the_reference(value):
    _same(value)


@needs_native
def test_what_the_text_is():
    """The model both follow, spelt out."""
    assert _same(b"=?utf-8?q?=C3?= =?utf-8?q?=A9?= x =?iso-8859-1?b?6Q==?=") == "é x é"
    assert _same(b"=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <j@x>") == "Jörg Müller <j@x>"
    assert _same(b"=?utf-8?q?a=ZZb?=") == "a=ZZb"
    assert _same(b"caf\xe9") == "café"


@needs_native
def test_same_text_on_every_header_of_the_corpus():
    values = []
    for raw in mime_shapes.corpus(120):
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        values += [value for _name, value in re.findall(rb"(?m)^([^ \t:]+):(.*(?:\r?\n[ \t].*)*)",
                                                      head)]
    assert len(values) > 500
    for value in values:
        _same(value.strip())


@needs_native
def test_same_text_for_encoded_headers_of_random_text():
    rng = random.Random(20261205)
    alphabet = "aZ 9_=?é€ñ中文한국어Ωж\t"
    for _ in range(5000):
        charset = rng.choice(CHARSETS)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        data = text.encode(charset, "ignore")
        words = []
        for start in range(0, len(data), rng.randint(1, 9)):
            chunk = data[start:start + rng.randint(1, 9)]
            if rng.random() < 0.5:
                body = base64.b64encode(chunk).decode().rstrip("=" if rng.random() < 0.3 else "")
                words.append(f"=?{charset}?{rng.choice('bB')}?{body}?=")
            else:
                body = binascii.b2a_qp(chunk, header=True).decode().replace("?", "=3F")
                words.append(f"=?{charset}?{rng.choice('qQ')}?{body}?=")
        value = rng.choice([" ", "\r\n ", "", "  x "]).join(words).encode()
        _same(value)


@needs_native
def test_same_text_on_random_bytes():
    rng = random.Random(17)
    for _ in range(30_000):
        _same(b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24))))


@needs_native
def test_a_decoder_older_than_its_source_is_not_loaded(tmp_path):
    """The IMAP package copied with its compiled modules and ``_headers.pyx`` then edited: the
    Python decoder runs (with a warning), and decodes the same."""
    copy_tree(tmp_path, "mailboxes/imap", "emailapi/lib/native.py", "emailapi/lib/storable.py")
    package = tmp_path / "mailboxes" / "imap"
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from mailboxes.imap import parse\n"
            "print(parse.decode_header is parse.python_decode_header)\n"
            "print(parse.decode_header(b'=?utf-8?q?J=C3=B6rg?= =?utf-8?b?5p2O?='))")
    fresh = python_in(tmp_path, code)
    assert fresh.returncode == 0, fresh.stderr
    later = max(path.stat().st_mtime for path in package.iterdir()) + 10
    os.utime(package / "_headers.pyx", (later, later))
    stale = python_in(tmp_path, code)
    assert stale.returncode == 0, stale.stderr
    assert "mailboxes/imap/_headers.pyx changed since it was compiled" in stale.stderr
    assert fresh.stdout.split("\n")[0] == "False"
    assert stale.stdout.split("\n")[0] == "True"
    assert stale.stdout.split("\n")[1] == fresh.stdout.split("\n")[1] == "Jörg李"


# -- header fields, message ids, dates ---------------------------------------------------------

BLOCKS = [
    None, b"", b"no colon", b"From: a@b\r\nTo: c@d\r\n\r\n",
    b"References: <a@b>\r\n <c@d>\r\n\t<e@f>\r\nFROM:  x@y \r\n", b"from: first\nFrom: second\n",
    b" : empty name\r\n\t: tab\r\nX-\xffName: v\r\n", b"A:\r\r\n b\r\n\r\n c", b"a:b:c\rd:e\n",
    b"Cc: \x0b x \x0c\r\n", b"To:\n \n \nx", b"\n: x\nY :z",
]
BLOCK_PIECES = [b"From", b"to", b"X-A", b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b"a@b", b"<",
                b">", b"\xff", b"\x0b", b"v"]
IDS = [None, "<a@b>", b"", b"<a@b>", b"  <a@b> ", b"<a @\r\n b>", b"x <a@b> <c@d> <a@b>", b"<>",
       b"< >", b"a@b c@d", b"<<a@b>", b"<a<b>c>", b"<a@b", b"a@b>", b">a@b<", b"<\xff@b>",
       b"<caf\xe9@b>", b"\t\n", b"<a@b> junk <c@d"]
ID_PIECES = [b"<", b">", b"a@b", b"c", b" ", b"\t", b"\r\n", b"<>", b"\xff", b"\xc3\xa9", b"@"]
DATES = [
    None, "Mon, 01 Jan 2024 08:00:00 +0000", b"", b"Mon, 01 Jan 2024 08:00:00 +0000",
    b"1 Jan 2024 08:00:00 +0000", b"Mon, 1 jan 2024 08:00:00 -0530", b"Tue, 31 DEC 1999 23:59:60 +2400",
    b"Fri, 30 Feb 2024 08:00:00 +0000", b"Mon, 01 Foo 2024 08:00:00 +0000",
    b"Mon, 01 Jan 2024 08:00:00 +0000 (UTC)", b"Mon, 01 Jan 2024 08:00:00 +0000(UTC)",
    b"Mon, 01 Jan 2024 08:00:00 +0000x", b"Mon, 01 Jan 2024 08:00:00 +00000",
    b"Mon, 01 Jan 2024 08:00 +0000", b"Monday, 01 Jan 2024 08:00:00 +0000",
    b"Mon,01 Jan 2024 08:00:00 +0000", b" Mon, 01 Jan 2024 08:00:00 +0000",
    b"Mon, 01 Jan 0000 08:00:00 +0000",
    b"Mon, 01 Jan 2024 08:00:00 GMT", b"Mon, 01 Jan 2024 08:00:00 -0000", b"Mon, 01 Jan 2024 8:0:0 +0000",
    b"Mon, 123 Jan 2024 08:00:00 +0000", b"Mon, 01 Jan 2024 08:00:00\t+0000\t", b"2024-01-01T08:00:00",
    b"Mon, 01 Jan 2024 08:00:00 +9959", b"Mon, 01 Jan 9999 23:59:59 -2359", b"\xff\xfe",
]
INTERNALDATES = [
    None, "01-Jan-2024 00:00:00 +0000", b"", b"01-Jan-2024 00:00:00 +0000", b" 1-Jan-2024 00:00:00 +0000",
    b"1-jan-2024 23:59:59 -0700", b"17-Jul-1996 02:44:25 -0700", b"31-Feb-2024 00:00:00 +0000",
    b"01-Foo-2024 00:00:00 +0000", b"01-Jan-0001 00:00:00 +0100", b"01-Jan-0001 00:00:00 -0100",
    b"31-Dec-9999 23:59:59 -0100", b"01-Jan-2024 00:00:00 +2400", b"01-Jan-2024 00:00:60 +0000",
    b"01-Jan-2024 00:00:00 +0000 trailing", b"01-Jan-2024 0:00:00 +0000", b"  01-Jan-2024 00:00:00 +0000",
    b"01-Jan-24 00:00:00 +0000", b"01-Jan-2024 00:00:00", b"01-January-2024 00:00:00 +0000",
]
DATE_PIECES = [b"Mon, ", b"Mon,", b"1", b"01", b"31", b" ", b"Jan", b"jan", b"Feb", b"2024", b"0001",
               b"08:00:00", b"8:0", b"23:59:60", b"+0000", b"-0530", b"+2400", b"(UTC)", b"-", b"x",
               b"\t"]


def _exactly(value) -> str:
    """A result as its repr: dates with their own offsets, not only the instant they name."""
    return repr(value)


@needs_native
@pytest.mark.parametrize("block", BLOCKS)
def test_same_header_fields_as_the_reference(block):
    assert _headers.header_fields(block) == parse.python_header_fields(block)


@needs_native
def test_same_header_fields_on_the_corpus_and_random_blocks():
    rng = random.Random(5)
    blocks = [raw.split(b"\r\n\r\n", 1)[0] for raw in mime_shapes.corpus(120)]
    blocks += [b"".join(rng.choice(BLOCK_PIECES) for _ in range(rng.randint(0, 30)))
               for _ in range(20_000)]
    for block in blocks:
        assert _headers.header_fields(block) == parse.python_header_fields(block), block


@needs_native
@pytest.mark.parametrize("value", IDS)
def test_same_message_ids_as_the_reference(value):
    assert _headers.normalize_message_id(value) == parse.python_normalize_message_id(value)
    assert _headers.message_id_list(value) == parse.python_message_id_list(value)


@needs_native
def test_same_message_ids_on_random_values():
    rng = random.Random(11)
    for _ in range(20_000):
        value = b"".join(rng.choice(ID_PIECES) for _ in range(rng.randint(0, 16)))
        assert _headers.normalize_message_id(value) == parse.python_normalize_message_id(value)
        assert _headers.message_id_list(value) == parse.python_message_id_list(value), value


@needs_native
@pytest.mark.parametrize("value", DATES)
def test_same_date_as_the_reference(value):
    assert _exactly(_headers.parse_date(value)) == _exactly(parse.python_parse_date(value))


@needs_native
@pytest.mark.parametrize("value", INTERNALDATES)
def test_same_internaldate_as_the_reference(value):
    assert _exactly(_headers.parse_internaldate(value)) == \
        _exactly(parse.python_parse_internaldate(value))


@needs_native
def test_what_the_dates_are():
    assert _headers.parse_date(b"Mon, 1 Jan 2024 08:00:00 +0530").isoformat() == \
        "2024-01-01T08:00:00+05:30"
    assert _headers.parse_internaldate(b" 1-Jan-2024 08:00:00 +0530").isoformat() == \
        "2024-01-01T02:30:00+00:00"


@needs_native
def test_same_dates_on_random_values():
    rng = random.Random(23)
    for _ in range(20_000):
        value = b"".join(rng.choice(DATE_PIECES) for _ in range(rng.randint(0, 10)))
        assert _exactly(_headers.parse_date(value)) == _exactly(parse.python_parse_date(value)), value
        internal = value.replace(b" Jan ", b"-Jan-").replace(b" jan ", b"-jan-")
        assert _exactly(_headers.parse_internaldate(internal)) == \
            _exactly(parse.python_parse_internaldate(internal)), internal


@needs_native
def test_same_dates_in_the_usual_shape_with_random_fields():
    """The shape the compiled code reads itself, with every field drawn at random (days,
    months and offsets out of range, any case, what follows the zone)."""
    rng = random.Random(29)
    months = ["Jan", "feb", "MAR", "Dec", "Foo", "jAn", "Sep", "Zzz"]
    for _ in range(20_000):
        fields = (rng.randint(0, 39), rng.choice(months), rng.randint(0, 9999), rng.randint(0, 29),
                  rng.randint(0, 69), rng.randint(0, 69), rng.choice("+-"), rng.randint(0, 2999))
        day, month, year, hour, minute, second, sign, zone = fields
        tail = rng.choice(["", " ", "(", "x", "\t", "0", " (UTC)"])
        weekday = rng.choice(["", "Mon, ", "Sun, "])
        date = f"{weekday}{day:0{rng.choice([1, 2])}d} {month} {year:04d} {hour:02d}:{minute:02d}:" \
               f"{second:02d} {sign}{zone:04d}{tail}".encode()
        assert _exactly(_headers.parse_date(date)) == _exactly(parse.python_parse_date(date)), date
        internal = f"{rng.choice(['', ' '])}{day:0{rng.choice([1, 2])}d}-{month}-{year:04d} " \
                   f"{hour:02d}:{minute:02d}:{second:02d} {sign}{zone:04d}{tail}".encode()
        assert _exactly(_headers.parse_internaldate(internal)) == \
            _exactly(parse.python_parse_internaldate(internal)), internal


# What an address header's syntax turns on: quotes, comments, angle brackets, separators,
# escapes, folds, groups and routes, encoded and 8-bit names, Unicode spaces.
ADDRESS_PIECES = [b'"', b"\\", b"(", b")", b"<", b">", b",", b":", b";", b"@", b" ", b"\t",
                  b"\r\n ", b"\n", b"\r", b"alice", b"example.test", b"=?utf-8?q?J=C3=B6rg?=",
                  b"caf\xc3\xa9", b"caf\xe9", b"\xff", b"Bob Smith", b"undisclosed-recipients",
                  b"@a,@b:", b"x@y", b"\xc2\xa0", b"\x1c", b"\xe2\x80\x83", b'""', b'\\"']


def _same_addresses(value):
    compiled = _headers.header_addresses(value)
    assert compiled == parse.python_header_addresses(value), value
    return [(address.name, address.address) for address in compiled]


@needs_native
def test_same_header_addresses_on_the_corpus_and_random_values():
    values = [value for raw in mime_shapes.corpus(120)
              for name, value in re.findall(rb"(?mi)^(from|sender|reply-to|to|cc|bcc):(.*(?:\r?\n[ \t].*)*)",
                                            raw.split(b"\r\n\r\n", 1)[0])]
    assert len(values) > 200
    rng = random.Random(37)
    values += [b"".join(rng.choice(ADDRESS_PIECES) for _ in range(rng.randint(0, 20)))
               for _ in range(30_000)]
    for value in values:
        _same_addresses(value)


@needs_native
def test_what_the_header_addresses_are():
    """The model both follow (mail clients' reading, nodemailer's addressparser), spelt out."""
    assert _same_addresses(b'"Last, First" <lf@x.test>, =?utf-8?q?J=C3=B6rg?= <j@x.test>') == [
        ("Last, First", "lf@x.test"), ("Jörg", "j@x.test")]
    assert _same_addresses(b"Mikel@Lindsaar <raasdnil@x.test>, carol@x.test") == [
        ("Mikel@Lindsaar", "raasdnil@x.test"), ("", "carol@x.test")]
    assert _same_addresses(b"team: a@x.test, B <b@x.test>;, undisclosed-recipients:;") == [
        ("", "a@x.test"), ("B", "b@x.test")]
    assert _same_addresses(b"ops@x.test (Operations Desk), <@r1,@r2:u@h.test>") == [
        ("Operations Desk", "ops@x.test"), ("", "u@h.test")]
    assert _same_addresses(b"a@x.test (Ops (EU) desk), b@x.test (open") == [
        ("Ops (EU) desk", "a@x.test"), ("open", "b@x.test")]
    assert _same_addresses(b'"Esc \\"aped\\"" <e@x.test>, Caf\xe9 <c@x.test>') == [
        ('Esc "aped"', "e@x.test"), ("Café", "c@x.test")]


@needs_native
def test_the_usual_shapes_are_read_without_the_python_code(monkeypatch):
    """What nearly every message has is read in C: a compiled path that handed everything back
    would give the same results, only slower."""
    def refuse(*value):
        raise AssertionError(f"handed to Python: {value!r}")
    for name in ("parse_date", "parse_internaldate", "decode_bytes", "decode_charset"):
        monkeypatch.setitem(_headers._python, name, refuse)
    assert _headers.parse_date(b"Mon, 1 Jan 2024 08:00:00 +0530").isoformat() == \
        "2024-01-01T08:00:00+05:30"
    assert _headers.parse_date(b"01 Jan 2024 08:00:00 -0000 (UTC)") is not None
    assert _headers.parse_internaldate(b" 1-Jan-2024 08:00:00 +0000") is not None
    assert _headers.parse_internaldate(b"31-Dec-2023 23:59:59 -0700") is not None
    addresses = _headers.header_addresses(b'=?utf-8?q?J=C3=B6rg?= <j@x.test>, "B, C" <b@x.test>')
    assert [(a.name, a.address) for a in addresses] == [("Jörg", "j@x.test"), ("B, C", "b@x.test")]
    assert _headers.message_id_list(b"<a@b> <c@d>") == ["<a@b>", "<c@d>"]
    # The refusal is live: a name the C code hands over (another charset, 8-bit bytes) fails.
    with pytest.raises(AssertionError, match="handed to Python"):
        _headers.header_addresses(b"=?iso-8859-1?q?J=F6rg?= <j@x.test>")
    with pytest.raises(AssertionError, match="handed to Python"):
        _headers.header_addresses(b"J\xf6rg <j@x.test>")
