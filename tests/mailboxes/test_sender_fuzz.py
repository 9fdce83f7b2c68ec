"""A sender fuzz, against a real Dovecot: anyone can mail a customer's mailbox, so every byte of
a message is a stranger's. A fixed set of hostile messages, hand-made and generated from a fixed
seed (NUL and control characters in every header through encoded words, RFC 2231 and raw 8-bit;
charsets Python cannot or should not decode; huge, negative and non-numeric parameters; nested
and unbounded multiparts; duplicated fields; dates out of any range; 100 KB identifiers; odd
addresses and filenames; transfer encodings that do not decode; garbage calendars), seeded with
a normal message after them.

The first index takes them all (the sentinel too), and new mail announces each of them once: a
message of these that could not be stored (a NUL in an address name, written by the compiled
row writer as JSON PostgreSQL refuses) or whose Date was at the calendar's edge (an offset out
of a datetime's range) stopped its folder's index or its announcements for good.

And every route that reads them answers 200: the detail with every text, the text route, the
source, each attachment, the listing, threads, search, the dashboard's message page, and a
reply, reply-all and forward of each (dry runs). A lone surrogate (UTF-7's ``+2AA-``, or an
escape decoder run on a ``unicode_escape`` charset) failed the dashboard's sanitizer and a
reply's quoting; a CR LF in an encoded-word Subject, and a Message-ID of non-ASCII, failed the
reply's headers: each was a 500."""

from __future__ import annotations

import email
import email.policy
import random
from base64 import b64decode

import pytest
from django.test import Client

from accounts.models import Membership, User
from mailboxes import ids
from mailboxes.models import Folder, Message
from mailboxes.sync.folder import sync_folder
from tests.mailboxes.helpers import events_of
from tests.servers import seed

pytestmark = [pytest.mark.django_db]

SEED = 5322
GENERATED = 30
SENTINEL = "Sentinel after the fuzz"


def _msg(name: str, headers: bytes = b"", body: bytes = b"Hello\r\n",
         content_type: bytes = b"Content-Type: text/plain; charset=utf-8\r\n",
         subject: bytes | None = None) -> bytes:
    """A message whose fields are ``headers`` plus whatever of the usual ones it does not
    replace (``subject`` None: the name)."""
    fields = headers
    if b"\nfrom:" not in b"\n" + headers.lower():
        fields += b"From: Ann <ann@example.test>\r\n"
    if b"\nto:" not in b"\n" + headers.lower():
        fields += b"To: bob@example.test\r\n"
    if b"\nmessage-id:" not in b"\n" + headers.lower():
        fields += f"Message-ID: <{name}@fuzz.example.test>\r\n".encode()
    if b"\ndate:" not in b"\n" + headers.lower():
        fields += b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
    if b"\nsubject:" not in b"\n" + headers.lower():
        fields += b"Subject: " + (subject if subject is not None else name.encode()) + b"\r\n"
    return fields + b"MIME-Version: 1.0\r\n" + content_type + b"\r\n" + body


def _multipart(name: str, parts: list[bytes], boundary: bytes = b"b", headers: bytes = b"",
               kind: bytes = b"mixed") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + boundary + b"--\r\n"
    return _msg(name, headers, body,
                b"Content-Type: multipart/" + kind + b"; boundary=\"" + boundary + b"\"\r\n")


def _nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\nbottom"
    for level in range(depth):
        boundary = b"n%d" % level
        inner = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary
                 + b"\r\n" + inner + b"\r\n--" + boundary + b"--")
    return inner


def _nested_rfc822(depth: int) -> bytes:
    inner = b"Subject: bottom\r\nContent-Type: text/plain\r\n\r\nbottom\r\n"
    for _ in range(depth):
        inner = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n" + inner
    return inner


ATTACH = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
CONTROLS = "".join(chr(c) for c in range(32)) + "\x7f"
QP_CONTROLS = "".join(f"={c:02X}" for c in range(32)) + "=7F"


def hand_made() -> dict[str, bytes]:
    """The named hostile messages."""
    m: dict[str, bytes] = {}
    ew = f"=?utf-8?q?x{QP_CONTROLS}y?=".encode()
    m["controls_everywhere"] = _msg("controls_everywhere", headers=(
        b"From: " + ew + b" <ann@example.test>\r\nTo: " + ew + b" <bob@example.test>\r\n"
        b"Cc: " + ew + b" <cc@example.test>\r\nReply-To: " + ew + b" <r@example.test>\r\n"
        b"Sender: " + ew + b" <s@example.test>\r\nSubject: " + ew + b"\r\n"
        b"In-Reply-To: <a\x01b@example.test>\r\nReferences: <c\x1bd@example.test> <\x7f@x>\r\n"
        b"X-Custom: " + ew + b"\r\nComments: " + ew + b"\r\nKeywords: " + ew + b"\r\n"))
    m["nul_b64_words"] = _msg("nul_b64_words", headers=(
        b"From: =?utf-8?b?AEFubgA=?= <ann@example.test>\r\n"
        b"Subject: =?utf-8?b?AAAA?= =?iso-8859-1?q?=00?= =?utf-16?b?AAA=?=\r\n"))
    m["raw_8bit_headers"] = _msg("raw_8bit_headers", headers=(
        b"From: \xff\xfe\xed\xa0\x80 <ann@example.test>\r\nTo: \xc0\x80 <bob@example.test>\r\n"
        b"Subject: \xff\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80 \x01\x1b[31m\x7f\r\n"
        b"X-Raw: \x80\x81\x82\r\n"))
    m["utf7_nul_subject"] = _msg("utf7_nul_subject", subject=b"=?utf-7?q?a+AAA-b+2AA-?=",
                                 body=b"a+AAA-b +2AA- +ZeVnLIqe-\r\n",
                                 content_type=b"Content-Type: text/plain; charset=utf-7\r\n")
    m["charset_backslash"] = _msg("charset_backslash",
                                  content_type=b'Content-Type: text/plain; charset="x\\\\"\r\n',
                                  subject=b'=?x\\?q?abc?=')
    for codec in ("unicode_escape", "raw_unicode_escape", "undefined", "rot13", "hex", "base64",
                  "punycode", "idna", "zlib", "utf-16", "utf-32-be", "mbcs", "", "utf-8'en'",
                  "x" * 3000):
        name = "charset_" + "".join(c for c in codec if c.isalnum())[:20]
        m[name] = _msg(
            name, subject=f"=?{codec}?q?a=00=5Cx00b?= =?{codec}?b?AAECAw==?=".encode(),
            body=b"a\\x00b \\u0000 \\ud800 +AAA- \xff\xfe\x00",
            content_type=f'Content-Type: text/plain; charset="{codec}"\r\n'.encode())
    m["html_unicode_escape"] = _msg(
        "html_unicode_escape", body=b"<p>a\\x00b<img src=\"cid:\\x00\"></p>",
        content_type=b"Content-Type: text/html; charset=unicode_escape\r\n")
    m["huge_params"] = _multipart("huge_params", [
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes; x=" + b"y" * 100_000
        + b"\r\n\r\nhi",
        ATTACH + b"filename=a.bin; size=99999999999999999999999999; creation-date=\"x\"\r\n\r\nAA",
        ATTACH + b"filename=b.bin; size=-5\r\n\r\nBB",
        ATTACH + b"filename=c.bin; size=abc\r\n\r\nCC",
        ATTACH + b"filename*99999999999999999999*=utf-8''z; filename*-1=q\r\n\r\nDD",
        ATTACH + b"filename*0*=utf-8''a%00; filename*2=c; filename*1*=%ZZ\r\n\r\nEE",
        ATTACH + b"filename*=utf-8'" + b"x" * 5000 + b"'f.txt\r\n\r\nFF",
        ATTACH + b"filename*=bogus-charset''%FF%FE.txt\r\n\r\nGG",
    ])
    m["deep_multipart"] = _msg("deep_multipart", body=_nested(300).split(b"\r\n\r\n", 1)[1],
                               content_type=_nested(300).split(b"\r\n\r\n", 1)[0] + b"\r\n")
    m["deep_rfc822"] = _msg("deep_rfc822", body=b"Subject: l\r\nContent-Type: message/rfc822\r\n"
                            b"\r\n" + _nested_rfc822(120), content_type=b"Content-Type: message/rfc822\r\n")
    m["no_boundary"] = _msg("no_boundary", body=b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
                            content_type=b"Content-Type: multipart/mixed\r\n")
    m["empty_boundary"] = _msg("empty_boundary", body=b"--\r\n\r\nx\r\n----\r\n",
                               content_type=b'Content-Type: multipart/mixed; boundary=""\r\n')
    m["boundary_never_used"] = _msg("boundary_never_used", body=b"just text\r\n",
                                    content_type=b"Content-Type: multipart/alternative; boundary=zz\r\n")
    m["boundary_huge"] = _multipart("boundary_huge", [b"Content-Type: text/plain\r\n\r\nx"],
                                    boundary=b"q" * 69)
    m["unterminated_multipart"] = _msg(
        "unterminated_multipart", body=b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n",
        content_type=b"Content-Type: multipart/mixed; boundary=b\r\n")
    m["duplicated_headers"] = _msg("duplicated_headers", headers=(
        b"Subject: one\r\nSubject: two\r\nFrom: a@example.test\r\nFrom: b@example.test\r\n"
        b"Message-ID: <d1@x>\r\nMessage-ID: <d2@x>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
        b"Date: garbage\r\nTo: c@example.test\r\nTo: d@example.test\r\n"
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"), body=b"=3Cb=3Ex\r\n")
    for label, date in [("year0", "Mon, 1 Jan 0000 00:00:00 +0000"),
                        ("year99999", "Mon, 1 Jan 99999 00:00:00 +9999"),
                        ("zone9999", "Mon, 1 Jan 2026 00:00:00 +9999"),
                        ("zoneneg", "Mon, 1 Jan 2026 00:00:00 -9999"),
                        ("feb31", "Mon, 31 Feb 2026 25:61:61 +0000"),
                        ("year1", "Mon, 1 Jan 0001 00:00:00 +1400"),
                        ("year9999", "Fri, 31 Dec 9999 23:59:59 -1400"),
                        ("huge", "1 Jan " + "9" * 400 + " 00:00:00 +0000"),
                        ("words", "yesterday at noon"), ("empty", ""),
                        ("twodigit", "1 Jan 49 00:00:00 GMT"), ("epoch_minus", "31 Dec 1969 23:59:59 +0000")]:
        m["date_" + label] = _msg("date_" + label, headers=f"Date: {date}\r\n".encode())
    long_id = b"<" + b"x" * 100_000 + b"@example.test>"
    m["long_ids"] = _msg("long_ids", headers=(
        b"Message-ID: " + long_id + b"\r\nIn-Reply-To: " + long_id + b"\r\nReferences: "
        + b" ".join(b"<r%d@example.test>" % i for i in range(5000)) + b"\r\n"))
    m["long_header_line"] = _msg("long_header_line", headers=b"X-Long: " + b"z" * 200_000 + b"\r\n",
                                 subject=b"s" * 50_000)
    m["odd_addresses"] = _msg("odd_addresses", headers=(
        b'From: "a\\"b\\\\" <"x y"@example.test>\r\nTo: ,,,;;; , "unterminated <u@example.test>\r\n'
        b"Cc: group:;, undisclosed:a@example.test,c@example.test;, <@r1,@r2:route@example.test>\r\n"
        b"Bcc: a@b@c, @, <>, <<>>, \"\" <>, =?utf-8?b?!!!?= <e@example.test>\r\n"
        b"Reply-To: =?utf-8?q?x?=@example.test, \"=?utf-8?q?=00?=\" <q@example.test>\r\n"
        b"Sender: (comment (nested) " + b"(" * 200 + b"\r\n"))
    m["from_empty"] = _msg("from_empty", headers=b"From: \r\nTo: \r\nSubject: \r\n")
    m["from_only_group"] = _msg("from_only_group", headers=b"From: group: ;\r\nTo: x:;\r\n")
    m["filenames"] = _multipart("filenames", [
        ATTACH + b"filename*=utf-8''a%0D%0ABcc%3A%20x%0D%0A.txt\r\n\r\nA",
        ATTACH + b'filename="=?utf-8?q?a=0D=0AContent-Type:_text/html?="\r\n\r\nB',
        ATTACH + b'filename="../../../etc/passwd"\r\n\r\nC',
        ATTACH + b'filename="..\\\\..\\\\boot.ini"\r\n\r\nD',
        ATTACH + b'filename=".."\r\n\r\nE', ATTACH + b'filename="."\r\n\r\nF',
        ATTACH + b'filename="..."\r\n\r\nG', ATTACH + b'filename=""\r\n\r\nH',
        ATTACH + b'filename="/"\r\n\r\nI', ATTACH + b'filename="' + b"n" * 10_000 + b'"\r\n\r\nJ',
        b'Content-Type: application/pdf; name="\x01\x7f\r\n\t.pdf"\r\n\r\nK',
        ATTACH + b'filename="\xff\xfe.bin"\r\n\r\nL',
        ATTACH + b"filename*=utf-8''%ED%A0%80.bin\r\n\r\nM",
    ])
    for index, kind in enumerate([b"text/plain\x7f", b"/", b"text/", b";;;", b"text/html; charset",
                                  b"\x1b[31mred", b"multipart/", b"message/", b"text/plain; ; ; =",
                                  b"application/octet-stream; name*=x''%", b"\xff/\xfe"]):
        m[f"content_type_{index}"] = _msg(f"content_type_{index}",
                                          content_type=b"Content-Type: " + kind + b"\r\n")
    m["rfc822_no_body"] = _multipart("rfc822_no_body", [
        b"Content-Type: text/plain\r\n\r\nouter", b"Content-Type: message/rfc822\r\n",
        b"Content-Type: message/rfc822\r\n\r\n", b"Content-Type: message/rfc822\r\n\r\nSubject: x"])
    m["rfc822_top_empty"] = _msg("rfc822_top_empty", body=b"",
                                 content_type=b"Content-Type: message/rfc822\r\n")
    m["bad_transfer"] = _multipart("bad_transfer", [
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nQQ",
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n====\r\nA===",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
        ATTACH + b"filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%",
        ATTACH + b"filename=y.bin\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=G=",
        ATTACH + b"filename=z.bin\r\nContent-Transfer-Encoding: x-garbage\r\n\r\nzz",
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xff\xc0",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n\x01\x02\x7f",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: \x01\r\n\r\nx",
    ])
    m["uuencode"] = _multipart("uuencode", [
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 ../x\r\nM garbage !!!\r\nend\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 \r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: uuencode\r\n\r\nno begin line",
        b"Content-Type: text/plain\r\n\r\nbegin 644 inline.txt\r\n#86)C\r\n`\r\n",
        b"Content-Type: text/plain\r\n\r\nbegin 999999999999 \x01..\r\nM\xff\r\n",
    ])
    m["calendar"] = _multipart("calendar", [
        b"Content-Type: text/plain\r\n\r\ninvite",
        b"Content-Type: text/calendar; method=REQUEST; charset=utf-7\r\n\r\nBEGIN:VCALENDAR\r\n"
        b"METHOD:+AAA-\r\nBEGIN:VEVENT\r\nDTSTART:99999999T999999Z\r\nDTEND:0\r\nRRULE:FREQ=\r\n"
        + b"BEGIN:VEVENT\r\n" * 500 + b"SUMMARY:\xff\r\n",
        b"Content-Type: text/calendar; method=\x01\r\nContent-Transfer-Encoding: base64\r\n\r\n!!",
        b"Content-Type: application/ics; name=invite.ics\r\n\r\nEND:VCALENDAR\r\n",
    ], kind=b"alternative")
    m["html_hostile"] = _multipart("html_hostile", [
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" + b"<div>" * 20_000
        + b'<img src="cid:"><img src="cid:%00"><img src="cid:../x"><meta charset=utf-7>+ADw-',
        b"Content-Type: image/png\r\nContent-ID: <>\r\nContent-Disposition: inline\r\n\r\nxx",
        b"Content-Type: image/png\r\nContent-ID: <../x>\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n!!",
        b"Content-Type: image/svg+xml\r\nContent-ID: <\x01>\r\n\r\n<svg onload=alert(1)/>",
    ], kind=b"related")
    m["html_utf16_odd"] = _msg("html_utf16_odd", body=b"<\x00p\x00>\x00\xd8",
                               content_type=b"Content-Type: text/html; charset=utf-16-le\r\n")
    m["headers_only"] = (b"From: ann@example.test\r\nSubject: headers_only\r\n"
                         b"Message-ID: <headers_only@fuzz.example.test>\r\n")
    m["no_colon"] = (b"This is not a header\r\nFrom ann@example.test\r\n\tcontinued\r\n"
                     b"Subject: no_colon\r\n\r\nbody\r\n")
    m["starts_folded"] = b" folded first\r\nSubject: starts_folded\r\n\r\nbody\r\n"
    m["lone_lf_cr"] = (b"Subject: lone_lf_cr\nFrom: a@example.test\rTo: b@example.test\n"
                       b"Content-Type: text/plain\n\nx\ry\n")
    return m


# Fragments the generated messages are made of.
WORDS = ["=?utf-8?q?=00?=", "=?utf-8?b?AA==?=", "=?utf-7?q?+AAA-?=", "=?unicode_escape?q?=5Cx00?=",
         "=?x\\?q?a?=", "=?utf-8?q?=ED=A0=80?=", "=?utf-8*en?q?a?=", "=?utf-8?x?a?=", "=??q??=",
         "=?utf-8?b?!!?=", "\x01", "\x7f", "\x1b]0;x\x07", "\u202e", "\udcff", "é", "𝔘", "\"", "\\",
         "<", ">", "(", ")", ",", ";", ":", "@", "%00", "'", "*", "x" * 500]
TYPES = ["text/plain", "text/html", "text/calendar", "text/enriched", "message/rfc822",
         "message/delivery-status", "message/partial", "message/external-body", "multipart/digest",
         "application/pdf", "image/png", "text/x-\x01", "", "application/ms-tnef"]
CHARSETS = ["utf-8", "utf-7", "unicode_escape", "x\\", "undefined", "utf-16", "gb18030",
            "iso-2022-jp", "", "utf-8'en", "99999999999999999999", "-1", "big5hkscs", "cp037"]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus", ""]
BODIES = [b"plain", b"!!!!", b"=ZZ", b"\xff\xfe\x00\x00", b"\\x00\\u0000", b"+AAA-",
          b"begin 644 x\r\nM\r\nend", b"PGI0+A==", b"BEGIN:VCALENDAR\r\nX:\xff", b"\r\n" * 50]
FIELDS = ["Subject", "From", "To", "Cc", "Reply-To", "Sender", "In-Reply-To", "References",
          "Message-ID", "Date", "List-Unsubscribe", "Content-Language", "X-Priority",
          "Disposition-Notification-To", "Return-Path", "Auto-Submitted"]


def _fragment(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def _raw_text(text: str) -> bytes:
    # Control characters and raw 8-bit go out as they are; a lone surrogate as invalid UTF-8.
    return text.replace("\x00", "").encode("utf-8", "surrogateescape")


def _part(rng: random.Random, depth: int) -> bytes:
    kind = rng.choice(TYPES)
    if depth < 3 and rng.random() < 0.3:
        boundary = rng.choice(["g%d" % depth, "", "x" * 100, "\x01"])
        children = [_part(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
        return (f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n".encode() + body
                + (b"--" + boundary.encode() + b"--" if rng.random() < 0.7 else b""))
    params = [f"charset=\"{rng.choice(CHARSETS)}\""]
    if rng.random() < 0.5:
        params.append(f"name=\"{_fragment(rng)}\"")
    disposition = ""
    if rng.random() < 0.5:
        value = rng.choice([f"filename*=utf-8''{_fragment(rng)}", f"filename=\"{_fragment(rng)}\"",
                            "filename*0=a; filename*5=b", "size=-1", "size=1e999"])
        disposition = f"Content-Disposition: {rng.choice(['attachment', 'inline', '', 'x'])}; {value}\r\n"
    cid = f"Content-ID: <{_fragment(rng)}>\r\n" if rng.random() < 0.3 else ""
    head = (f"Content-Type: {kind}; {'; '.join(params)}\r\n{disposition}{cid}"
            f"Content-Transfer-Encoding: {rng.choice(ENCODINGS)}\r\n\r\n")
    return _raw_text(head) + rng.choice(BODIES)


def generated() -> dict[str, bytes]:
    """``GENERATED`` messages of random hostile fields and structure, from ``SEED``."""
    rng = random.Random(SEED)
    messages = {}
    for number in range(GENERATED):
        name = f"generated_{number:02d}"
        fields = [f"{field}: {_fragment(rng)}" for field in rng.sample(FIELDS, rng.randint(3, 10))]
        fields.append(f"X-Fuzz-Name: {name}")
        if not any(field.startswith("Subject:") for field in fields):
            fields.append(f"Subject: {name}")
        messages[name] = _raw_text("\r\n".join(fields) + "\r\nMIME-Version: 1.0\r\n") + _part(rng, 0)
    return messages


def hostile() -> dict[str, bytes]:
    return {**hand_made(), **generated()}


@pytest.fixture
def inbox_messages():
    return {**hostile(), "sentinel": seed.make_message(subject=SENTINEL)}


def _inbox(synced) -> Folder:
    return Folder.objects.get(email_account=synced.account, path="INBOX")


def test_it_indexes_every_hostile_message_and_the_sentinel_after_them(synced):
    rows = dict(Message.objects.filter(email_account=synced.account).values_list("uid", "subject"))
    assert sorted(rows) == sorted(synced.uids)
    assert rows[synced.uid_of["sentinel"]] == SENTINEL
    assert len(synced.uids) == len(hostile()) + 1


def test_it_announces_each_hostile_message_again_as_new_mail(synced, mail_user):
    messages = list(synced.seeded.values())
    uids = seed.seed_mailbox(mail_user, messages=messages)

    assert sync_folder(synced.session, _inbox(synced)).new == len(messages)
    announced = [event.data["uid"] for event in events_of(synced.account, "messageNew")]
    assert sorted(announced) == uids
    assert Message.objects.filter(email_account=synced.account).count() == 2 * len(messages)


def _ids(synced) -> dict[str, str]:
    """API id by name (``synced.id_of`` reads one page of the listing: more are seeded here)."""
    return {name: ids.message_id_for(_inbox(synced), uid) for name, uid in synced.uid_of.items()}


def _status(response) -> int:
    """The status, once a streamed body is read to its end (which gives its IMAP connection
    back to the pool: an unread one would hold it, and the next reads would wait for one)."""
    if response.streaming:
        b"".join(response.streaming_content)
    return response.status_code


def test_every_read_route_answers_each_hostile_message(synced):
    base = f"/v1/account/{synced.account.account_id}"
    client = synced.client
    client.raise_request_exception = False
    failed, attachments = [], 0
    for name, message_id in _ids(synced).items():
        detail = client.get(f"{base}/message/{message_id}?textType=*&webSafeHtml=true"
                            "&embedAttachedImages=true&markAsSeen=false")
        if detail.status_code != 200:
            failed.append((name, "detail", detail.status_code))
            continue
        found = detail.json()
        urls = {"source": f"{base}/message/{message_id}/source",
                "text": f"{base}/text/{found['text']['id']}?textType=*"}
        for attachment in found.get("attachments") or []:
            urls[f"attachment {attachment['id']}"] = f"{base}/attachment/{attachment['id']}"
            attachments += 1
        failed += [(name, route, status) for route, url in urls.items()
                   if (status := _status(client.get(url))) != 200]
    for route, url in {"list": f"{base}/messages?path=INBOX&pageSize=250",
                       "threads": f"{base}/threads?path=INBOX&pageSize=250"}.items():
        failed += [("all", route, status) for status in [client.get(url).status_code]
                   if status != 200]
    for term in ({"subject": "x"}, {"body": "x"}, {"from": "a"}):
        search = client.post(f"{base}/search?path=INBOX", {"search": term}, format="json")
        if search.status_code != 200:
            failed.append(("all", f"search {term}", search.status_code))
    assert failed == []
    assert attachments > 40  # the attachments were there to read


@pytest.mark.parametrize("action", ["reply", "replyAll", "forward"])
@pytest.mark.parametrize("inline", [True, False])
def test_each_hostile_message_can_be_replied_to_and_forwarded(synced, action, inline):
    client = synced.client
    client.raise_request_exception = False
    failed, prefix = [], "Fwd:" if action == "forward" else "Re:"
    for name, message_id in _ids(synced).items():
        answer = client.post(f"/v1/account/{synced.account.account_id}/submit", {
            "reference": {"message": message_id, "action": action, "inline": inline},
            "text": "ok", "html": "<p>ok</p>", "dryRun": True,
            "from": {"address": "me@example.test"}, "to": [{"address": "to@example.test"}]},
            format="json")
        if answer.status_code != 200:
            failed.append((name, answer.status_code))
            continue
        sent = email.message_from_bytes(b64decode(answer.json()["preview"]), policy=email.policy.default)
        subject = sent["Subject"] or ""
        if not subject.startswith(prefix) or len(subject.splitlines()) > 1:
            failed.append((name, subject[:80]))
    assert failed == []


def test_the_dashboard_shows_each_hostile_message(synced, alice):
    owner = User.objects.create_user(email="owner@alice.test", password="Correct-Horse-Battery-9")
    Membership.objects.create(tenant=alice.tenant, user=owner, role="owner")
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)
    failed = []
    for name, message_id in _ids(synced).items():
        for query in ("", "?images=remote"):
            page = browser.get(f"/dashboard/mailboxes/{synced.account.account_id}/messages/"
                               f"{message_id}{query}")
            if page.status_code != 200:
                failed.append((name, query, page.status_code))
    assert failed == []
