"""The compiled interpretation of a message's FETCH items (``mailboxes/imap/_meta.pyx``) gives
exactly what the Python reference in ``parse`` gives: the same items of a response, the same
``MessageMeta`` and the same ``(attachments, text_parts)``, on the hand-written responses of
the parser's tests, on every message of the MIME corpus as the test Dovecot describes it, and
on random trees and header fields made of the pieces the rules turn on (types, parameters with
RFC 2231 continuations, dispositions, uuencoding, unsplit multiparts, NILs where lists belong;
address headers with groups, comments and encoded names, absent Sender and Reply-To, folded and
garbage values), a stray ENVELOPE item ignored by both; ``make`` built it, so it is what runs.
Only the corpus test uses a server (Dovecot, to say how a real server describes those
messages)."""

from __future__ import annotations

import random

import pytest

from mailboxes.imap import fetch, parse
from tests.mailboxes import mime_shapes, test_imap_parse
from tests.mailboxes.test_imap_fetch import open_client
from tests.python_runs import ROOT, python_in
from tests.servers import seed

try:
    from mailboxes.imap import _meta
except ImportError:  # not built: test_the_compiled_interpretation_is_in_use says so
    _meta = None

needs_native = pytest.mark.skipif(_meta is None, reason="the compiled interpretation is not built")

# The parser tests' hand-written responses, as servers send them (Gmail's items, the header
# fields as a literal, RFC 2231 parameters, every kind of leaf).
RESPONSES = [test_imap_parse.GMAIL, test_imap_parse.MIXED]


def reference_meta(items):
    """``parse``'s Python ``message_meta`` with its Python ``parse_bodystructure`` (``parse``
    calls the compiled one by its module name where it was built)."""
    compiled = parse.parse_bodystructure
    parse.parse_bodystructure = parse.python_parse_bodystructure
    try:
        return parse.python_message_meta(items)
    finally:
        parse.parse_bodystructure = compiled


def outcome(function, value):
    """What *function* gives for *value*: its result, or the kind of exception it raised."""
    try:
        return function(value)
    except Exception as exc:  # noqa: BLE001 - both must fail alike
        return type(exc)


def same_meta(items):
    compiled = _meta.message_meta(items)
    assert compiled == reference_meta(items), items
    return compiled


def same_items(text, literals):
    compiled = _meta.parse_fetch(text, literals)
    assert compiled == parse.python_parse_fetch(text, literals), (text, literals)
    return compiled[1]


def same_structure(node):
    compiled = outcome(_meta.parse_bodystructure, node)
    assert compiled == outcome(parse.python_parse_bodystructure, node), node
    return compiled


def test_the_compiled_interpretation_is_in_use():
    """``make`` builds ``_meta``; without it every message of an index is interpreted by the
    slower Python code (a warning at import says so)."""
    assert _meta is not None, "mailboxes/imap/_meta.pyx is not built: run `make install`"
    assert parse.parse_fetch is _meta.parse_fetch
    assert parse.message_meta is _meta.message_meta
    assert parse.parse_bodystructure is _meta.parse_bodystructure


def test_without_the_compiled_module_the_reference_is_used():
    code = ("import sys; sys.modules['mailboxes.imap._meta'] = None\n"
            "from mailboxes.imap import parse\n"
            "assert parse.parse_fetch is parse.python_parse_fetch\n"
            "assert parse.message_meta is parse.python_message_meta\n"
            "assert parse.parse_bodystructure is parse.python_parse_bodystructure\n"
            "_, items = parse.parse_fetch(b'* 1 FETCH (uid 5 BODYSTRUCTURE (text html))')\n"
            "meta = parse.message_meta(items)\n"
            "print(meta.uid, meta.text_parts[0].content_type)")
    result = python_in(ROOT, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5 text/html"


@needs_native
def test_same_meta_on_the_hand_written_responses_and_their_mutations():
    """Each response as written, then 2,000 times with bytes cut, copied or changed (as the
    parser's own test mutates them): whatever the tokenizer makes of it."""
    for raw in RESPONSES:
        (text, literals), = parse.wire_responses(raw)
        meta = same_meta(same_items(text, literals))
        assert meta is not None
        assert meta.uid > 0
    for text, literals in test_imap_parse.mutations(7, RESPONSES, 2000):
        same_meta(same_items(text, literals))


@needs_native
def test_what_the_compiled_meta_is():
    """The model both follow, spelt out on one response (the reference could be wrong too)."""
    (text, literals), = parse.wire_responses(test_imap_parse.MIXED)
    meta = same_meta(parse.parse_fetch(text, literals)[1])
    assert [part.part for part in meta.text_parts] == ["1.1", "1.2", "5"]
    assert [(part.part, part.filename) for part in meta.attachments] == [
        ("2", "logo.png"), ("3", "Résumé 2024€.pdf"), ("4", None), ("6", None),
        ("7", "déjà.bin")]
    assert meta.attachments[3].method == "REQUEST"
    assert meta.has_attachments is True


@needs_native
def test_same_meta_on_the_corpus_as_dovecot_describes_it(mail_user, monkeypatch):
    seed.seed_mailbox(mail_user, messages=mime_shapes.corpus(120))
    seen = []

    def recorded(items):
        seen.append(dict(items))
        return _meta.message_meta(items)
    monkeypatch.setattr(parse, "message_meta", recorded)
    client = open_client(mail_user)
    try:
        metas = fetch.fetch_meta(client, "1:*")
    finally:
        client.logout()
    assert len(metas) == len(seen) == 120
    for items in seen:
        same_meta(items)
    assert sum(len(meta.attachments) for meta in metas) > 50  # the corpus's shapes were there


TYPES = [b"text", b"TEXT", b"plain", b"html", b"HTML", b"calendar", b"image", b"png",
         b"application", b"octet-stream", b"message", b"rfc822", b"multipart", b"", None,
         b"x-uuencode", b"mixed", b"related", b"alternative", b"text\r\nX: y", b"pl ain",
         b"\x1b[31m", b"html\x7f", b"\xff", b"a/b", b"x;y"]
KEYS = [b"charset", b"CHARSET", b"name", b"name*", b"name*0", b"name*1*", b"name*0*",
        b"filename", b"filename*", b"filename*0*", b"filename*1", b"method", b"boundary",
        b"boundary*", b"format", b"x*y", b"name*\xb2"]
VALUES = [b"utf-8", b"UTF-8", b"iso-8859-1", b"REQUEST", b" cancel ", b"a.pdf", b"tool.zip",
          b"utf-8''d%C3%A9j%C3%A0.bin", b"iso-8859-1'fr'caf%E9", b"%", b"=?utf-8?q?R=C3=A9?=",
          b"\xe9t\xe9", b"", b"b0"]
DISPOSITIONS = [None, b"attachment", b"INLINE", b"inline", b"", [], [b"attachment"],
                b"attach\r\nment"]
ENCODINGS = [b"7bit", b"base64", b"QUOTED-PRINTABLE", b"x-uuencode", b"uue", None, b"",
             b"base64\r\n", b"\x01"]
IDS = [None, b"<c@d>", b"  <x@y>  ", b"plain", b"<>", [b"x"]]
NUMBERS = [b"0", b"12", b"123456", None, b"x", [b"7"]]


def _params(rng: random.Random):
    if rng.random() < 0.15:
        return rng.choice([None, b"x", [], [b"charset"], [None, b"a"]])
    params = []
    for _ in range(rng.randint(0, 4)):
        params += [rng.choice(KEYS), rng.choice(VALUES)]
    return params


def _leaf(rng: random.Random) -> list:
    main = rng.choice(TYPES)
    node = [main, rng.choice(TYPES), _params(rng), rng.choice(IDS), None,
            rng.choice(ENCODINGS), rng.choice(NUMBERS), rng.choice(NUMBERS)]
    if main in (b"message", b"MESSAGE") and rng.random() < 0.6:
        node += [[None] * 10, _tree(rng, 2), b"3"]
    node += [None]
    disposition = rng.choice(DISPOSITIONS)
    if isinstance(disposition, bytes) and rng.random() < 0.7:
        disposition = [disposition, _params(rng)]
    node.append(disposition)
    return node[:rng.randint(1, len(node))] if rng.random() < 0.1 else node


def _tree(rng: random.Random, depth: int = 0) -> list:
    if depth > 3 or rng.random() < 0.4:
        return _leaf(rng)
    children = [_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.1:
        children.append([])
    boundary = rng.choice([[b"boundary", b"b1"], [b"boundary*", b"''b1"], [b"BOUNDARY", b"x"],
                           None, b"x", []])
    return [*children, rng.choice(TYPES), boundary, None, None, None]


# What a FETCH response's item list turns on: names in any case, values of every kind, an
# odd count, a sequence number or not, text before the list.
ITEM_PIECES = [b"UID", b"uid", b"Flags", b"7", b"(", b")", b" ", b"NIL", b'"x"', b"{3}",
               b"BODY[HEADER.FIELDS (TO)]", b"body[1]<0>", b"X-GM-LABELS", b"\\Seen", b"\xff",
               b"*", b"FETCH", b"12"]


@needs_native
def test_same_items_on_random_responses():
    rng = random.Random(11)
    names = set()
    for _ in range(20_000):
        text = b"".join(rng.choice(ITEM_PIECES) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.7:
            text = b"* %d FETCH (" % rng.randint(1, 99) + text + b")"
        names.update(same_items(text, [b"abc", b"\xff\xfe"]))
    assert {"UID", "FLAGS", "BODY[HEADER.FIELDS (TO)]", "BODY[1]<0>"} <= names


@needs_native
def test_same_structure_on_random_trees():
    rng = random.Random(2026)
    kinds = set()
    for _ in range(20_000):
        node = _tree(rng) if rng.random() < 0.95 else rng.choice([None, b"x", [], [[]], [None]])
        result = same_structure(node)
        if isinstance(result, tuple):
            attachments, texts = result
            kinds.update(part.content_type for part in attachments + texts)
    assert {"text/plain", "text/html", "text/calendar", "message/rfc822",
            "multipart/mixed"} <= kinds


NAMES = [None, b"Alice", b"=?utf-8?q?J=C3=B6rg?=", b"O'Brien, Pat", b"\xe9"]
MAILBOXES = [b"alice", b"MISSING_MAILBOX", None, b""]
HOSTS = [b"example.test", b".MISSING-HOST-NAME.", b"SYNTAX_ERROR", None]
HEADERS = [b"Alice <alice@example.test>", b"a@b, c@d", b"Mikel@Lindsaar <a@b>, c@d",
           b"=?utf-8?q?J=C3=B6rg?= <j@x.test>", b"undisclosed-recipients:;", b"",
           b"ops@x.test (Ops Desk)", b'"Last, First" <lf@x.test>, g: a@x, b@y;', b"user",
           b"a@b,\r\n\tC <c@d>", b"J\xc3\xb6rg <j@x.test>", b"<>", b"\xe9 <e@x>"]
DATES = [b"Mon, 1 Jan 2024 08:00:00 +0530", b"junk", b"", b"Tue, 5 Mar 24 09:30 EST",
         b"1 Jan 2024 08:00:00\r\n +0000"]
SUBJECTS = [b"Hi", b"=?utf-8?q?caf=C3=A9?=", b"\xff", b"", b"two  spaces\tand a tab", b" x ",
            b"folded\r\n\tsubject", b"=?utf-8?q?a?=\r\n =?utf-8?q?b?="]
MESSAGE_IDS = [b"<m@x>", b"<>", b"m@x", b"", b"\r\n <m@x>"]
ADDRESS_FIELDS = (b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc")


def _addresses(rng: random.Random):
    if rng.random() < 0.2:
        return rng.choice([None, b"x", []])
    return [[rng.choice(NAMES), None, rng.choice(MAILBOXES), rng.choice(HOSTS)]
            for _ in range(rng.randint(0, 3))]


def _envelope(rng: random.Random):
    """An ENVELOPE item as a server sends it (the engine does not ask for one): both ignore it."""
    shared = _addresses(rng)
    envelope = [rng.choice([None, b"Mon, 1 Jan 2024 08:00:00 +0530", b"junk"]),
                rng.choice([None, b"Hi", b"=?utf-8?q?caf=C3=A9?=", b"\xff"])]
    envelope += [shared if rng.random() < 0.5 else _addresses(rng) for _ in range(6)]
    envelope += [rng.choice([None, b"<p@x>", b"p@x"]), rng.choice([None, b"<m@x>", b"<>"])]
    if rng.random() < 0.2:
        envelope = envelope[:rng.randint(0, 10)] if rng.random() < 0.7 else b"x"
    return envelope


def _header_block(rng: random.Random):
    """The header fields the envelope is read from: each field or not, its name in any case,
    Sender and Reply-To often the From value or absent, in any order, sometimes twice (the
    first counts); now and then not a block at all."""
    if rng.random() < 0.03:
        return rng.choice([None, b"", b"x", [b"From: a@b"]])
    shared = rng.choice(HEADERS)
    lines = [(name, shared if rng.random() < 0.4 else rng.choice(HEADERS))
             for name in ADDRESS_FIELDS if rng.random() < 0.6]
    lines += [(name, rng.choice(values)) for name, values in (
        (b"Date", DATES), (b"Subject", SUBJECTS), (b"Message-ID", MESSAGE_IDS)) if rng.random() < 0.8]
    if rng.random() < 0.5:
        lines += [(b"References", b"<r1@x> <r2@x>"), (b"In-Reply-To", rng.choice(MESSAGE_IDS))]
    rng.shuffle(lines)
    if lines and rng.random() < 0.1:
        lines.append((rng.choice(lines)[0], rng.choice(HEADERS)))
    return b"".join(rng.choice([name, name.upper(), name.lower()]) + b": " + value + b"\r\n"
                    for name, value in lines) + b"\r\n"


def _items(rng: random.Random) -> dict:
    items = {"UID": rng.choice([b"7", b"7", b"7", None, b"x", [b"9"]]),
             "FLAGS": rng.choice([[b"\\Seen", b"\\Recent", b"$Label"], [], None, b"x"]),
             "INTERNALDATE": rng.choice([b" 1-Jan-2024 08:00:00 +0000", None, b"x"]),
             "RFC822.SIZE": rng.choice(NUMBERS), "MODSEQ": rng.choice(NUMBERS),
             "BODYSTRUCTURE": _tree(rng),
             test_imap_parse.HEADER_FIELDS.decode(): _header_block(rng),
             "EMAILID": rng.choice([None, [b"M1"], b"M2", [], [b""]]),
             "THREADID": rng.choice([None, [b"T1"], b"NIL"])}
    if rng.random() < 0.3:
        items.update({"X-GM-MSGID": rng.choice(NUMBERS), "X-GM-THRID": rng.choice(NUMBERS),
                      "X-GM-LABELS": rng.choice([[b"\\Inbox", b"caf&AOk-"], [], b"x", None])})
    if rng.random() < 0.1:
        items["BODY"] = items.pop("BODYSTRUCTURE")
    for name in rng.sample(list(items), k=rng.randint(0, 2)):
        del items[name]
    if rng.random() < 0.3:  # a stray ENVELOPE, anywhere among the items
        order = list(items.items())
        order.insert(rng.randint(0, len(order)), ("ENVELOPE", _envelope(rng)))
        items = dict(order)
    return items


@needs_native
def test_same_meta_on_random_items():
    rng = random.Random(6)
    found = dict.fromkeys(("addresses", "subject", "date", "message_id", "envelope ignored"), 0)
    for _ in range(10_000):
        items = _items(rng)
        meta = same_meta(items)
        if meta is None:
            continue
        found["addresses"] += bool(meta.from_ or meta.to)
        found["subject"] += bool(meta.subject)
        found["date"] += meta.date is not None
        found["message_id"] += meta.message_id is not None
        if "ENVELOPE" in items:  # the same meta as without it, in both
            assert same_meta({k: v for k, v in items.items() if k != "ENVELOPE"}) == meta, items
            found["envelope ignored"] += bool(meta.from_ or meta.to or meta.subject)
    # Most runs got as far as each field of a non-empty envelope, and a stray ENVELOPE was
    # beside a non-empty one often.
    assert min(found.values()) > 1000, found
