"""``mailboxes.imap.parts`` against the real test Dovecot (no mocks).

Why a real server: partial fetches (``BODY[1]<0>`` answers, empty answers past the end, a
non-multipart message's part ``1``), what a server sends for a UID that is gone, and that
``BODY.PEEK`` really leaves ``\\Seen`` alone can only be checked against a server. The folder is
selected read-write, as when a user reads mail, so a non-PEEK fetch would set ``\\Seen``. The
part records are built exactly as the index stores them (``index._part``). No database.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import random
import tracemalloc
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailboxes.imap import fetch, parts
from mailboxes.imap.client import ImapSettings, connect
from mailboxes.sync.index import _part as index_part
from tests.servers import seed

NAMES = list(seed.MESSAGE_IDS)
JAPANESE = "日本語のテキストです。\nカタカナとひらがな、漢字。\n"
RUSSIAN = "Здравствуйте!\nСчёт во вложении. Ёжик.\n"
LONG_TEXT = "".join(f"Zeile {n}: Grüße, 日本語, 🎉 — ünïcödé.\n" for n in range(400))


def open_client(user, secure: bool = False):
    """A session as the application opens one (STARTTLS), on INBOX selected read-write."""
    client = connect(ImapSettings(
        host=user.host, port=user.imaps_port if secure else user.imap_port, secure=secure,
        user=user.username, password=user.password, tls_verify=False, timeout=60,
        allow_private=True,  # the test Dovecot is on loopback
    ))
    client.select_folder("INBOX")
    return client


def text_message(text: str, charset: str | None = None, html: str | None = None,
                 cte: str | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "a@example.test"
    msg["To"] = "b@example.test"
    msg["Subject"] = "charset test"
    options = {"charset": charset} if charset else {}
    if cte:
        options["cte"] = cte
    msg.set_content(text, **options)
    if html is not None:
        msg.add_alternative(html, subtype="html", **options)
    return msg.as_bytes()


@pytest.fixture
def mailbox(mail_user):
    messages = seed.build_named_messages()
    messages.update({
        "japanese": text_message(JAPANESE, charset="iso-2022-jp"),
        "russian": text_message(RUSSIAN, charset="windows-1251",
                                html=f"<p>{RUSSIAN}</p>"),
        "russian_qp": text_message(RUSSIAN, charset="windows-1251", cte="quoted-printable"),
        "long_base64": text_message(LONG_TEXT, cte="base64", html=f"<pre>{LONG_TEXT}</pre>"),
        "long_qp": text_message(LONG_TEXT, cte="quoted-printable"),
        "chinese": text_message("中文测试，繁體中文。\n", charset="gb18030", cte="base64"),
    })
    uids = seed.seed_mailbox(mail_user, messages=list(messages.values()))
    return mail_user, messages, dict(zip(messages, uids, strict=True))


@pytest.fixture
def client(mailbox):
    client = open_client(mailbox[0])
    yield client
    client.logout()


def text_parts(client, uid: int) -> list[dict]:
    """The message's text part records, as the index stores them."""
    [meta] = fetch.fetch_meta(client, str(uid))
    return [index_part(part) for part in meta.text_parts]


def read(client, uid: int, text_type: str = "*", max_bytes: int | None = None) -> dict:
    return parts.fetch_text(client, uid, text_parts(client, uid), text_type, max_bytes)


def test_it_reads_plain_text(client, mailbox):
    uid = mailbox[2]["plain"]
    assert read(client, uid) == {
        "plain": "Hi Bob,\n\njust plain ASCII text.\n\n-- \nAlice\n", "html": None,
        "hasMore": False}


def test_it_reads_only_the_asked_text_type(client, mailbox):
    uid = mailbox[2]["alternative"]
    html = "<html><body><h1>This week</h1><p>HTML <b>part</b>.</p></body></html>\n"
    plain = "This week: text part.\nhttps://example.test/news\n"
    assert read(client, uid, "*") == {"plain": plain, "html": html, "hasMore": False}
    assert read(client, uid, "html") == {"plain": None, "html": html, "hasMore": False}
    assert read(client, uid, "plain") == {"plain": plain, "html": None, "hasMore": False}


def test_it_reads_text_next_to_attachments(client, mailbox):
    text = read(client, mailbox[2]["attachments"])
    assert text["plain"] == "Anbei die Rechnung.\n"
    assert f'<img src="cid:{seed.IMAGE_CID}">' in text["html"]
    assert read(client, mailbox[2]["unicode"])["plain"] == "Grüße aus Köln! 日本語のテキスト。 🎉\n"


@pytest.mark.parametrize("name, expected", [
    ("japanese", JAPANESE), ("russian", RUSSIAN), ("russian_qp", RUSSIAN),
    ("chinese", "中文测试，繁體中文。\n"), ("long_base64", LONG_TEXT), ("long_qp", LONG_TEXT),
])
def test_it_decodes_transfer_encodings_and_charsets(client, mailbox, name, expected):
    assert read(client, mailbox[2][name], "plain") == {
        "plain": expected, "html": None, "hasMore": False}


def test_it_decodes_html_in_windows_1251(client, mailbox):
    assert read(client, mailbox[2]["russian"], "html")["html"] == f"<p>{RUSSIAN}</p>\n"


def test_it_reads_an_unknown_charset_as_utf8_with_replacements(client, mailbox):
    text = read(client, mailbox[2]["malformed"])
    assert text["plain"] == "Body with latin-1 \ufffd\ufffd and stray \ufffd\ufffd bytes.\n"


def test_it_reads_the_single_part_of_a_non_multipart_message(client, mailbox):
    uid = mailbox[2]["japanese"]
    records = text_parts(client, uid)
    assert [record["part"] for record in records] == ["1"]  # parse.py numbers it like RFC 3501
    assert parts.fetch_text(client, uid, records, "plain")["plain"] == JAPANESE
    assert parts.fetch_section(client, uid, "1") == parts.fetch_section(client, uid, "TEXT")


def test_it_finds_the_text_parts_itself_when_the_index_has_none(client, mailbox):
    for name, expected in (("japanese", JAPANESE), ("plain", "Hi Bob,")):
        text = parts.fetch_text(client, mailbox[2][name], [], "*", None)
        assert text["plain"].startswith(expected)
    text = parts.fetch_text(client, mailbox[2]["alternative"], [], "html", None)
    assert text["html"].startswith("<html>")
    assert text["plain"] is None


@pytest.mark.parametrize("name", ["long_base64", "long_qp", "russian_qp", "japanese"])
def test_it_cuts_text_at_max_bytes(client, mailbox, name):
    uid = mailbox[2][name]
    full = read(client, uid, "plain")["plain"]
    size = text_parts(client, uid)[0]["size"]  # encoded size: what max_bytes counts
    cuts = [n for n in (0, 1, 2, 3, 5, 77, 100, 101, 1000, 4097) if n < size]
    cuts += range(size - 12, size)
    for max_bytes in cuts:
        text = read(client, uid, "plain", max_bytes)
        assert text["hasMore"] is True
        assert full.startswith(text["plain"]), max_bytes
        assert "\ufffd" not in text["plain"]
        assert len(text["plain"]) > len(full) / 2 or max_bytes < size / 2 + 10
    assert read(client, uid, "plain", size) == {"plain": full, "html": None, "hasMore": False}
    assert read(client, uid, "plain", size - 1)["hasMore"] is True


def test_it_reports_has_more_when_any_part_is_cut(client, mailbox):
    uid = mailbox[2]["long_base64"]
    text = read(client, uid, "*", 3000)
    assert text["hasMore"] is True
    assert LONG_TEXT.startswith(text["plain"])
    assert text["html"].startswith("<pre>Zeile 0")


def test_it_never_sets_seen(client, mailbox):
    user, messages, uids = mailbox
    for name, uid in uids.items():
        read(client, uid, "*")
        read(client, uid, "plain", 10)
        parts.fetch_section(client, uid, "")
        parts.fetch_section(client, uid, "HEADER", max_bytes=100)
        assert b"".join(parts.stream_section(client, uid, "", chunk=500)) == messages[name]
        parts.source_size(client, uid)
    flags = flags_seen_by_another_session(user, list(uids.values()))
    assert set(flags) == set(uids.values())
    assert all(b"\\Seen" not in found for found in flags.values()), flags
    # Control: this session can set \Seen, so the check above could fail.
    client.fetch([uids["plain"]], ["BODY[TEXT]"])
    assert b"\\Seen" in flags_seen_by_another_session(user, [uids["plain"]])[uids["plain"]]


def flags_seen_by_another_session(user, uids: list[int]) -> dict:
    other = user.imap_client()
    try:
        other.select_folder("INBOX", readonly=True)
        return other.get_flags(uids)
    finally:
        other.logout()


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, parts.DEFAULT_CHUNK])
def test_it_streams_attachments_to_their_original_bytes(client, mailbox, chunk):
    uid = mailbox[2]["attachments"]
    [meta] = fetch.fetch_meta(client, str(uid))
    found = {}
    for part in meta.attachments:
        raw = parts.stream_section(client, uid, part.part, chunk=chunk)
        found[part.filename] = b"".join(parts.decode_stream(raw, part.encoding))
    assert found == {seed.IMAGE_FILENAME: seed.tiny_png(), seed.PDF_FILENAME: seed.tiny_pdf()}


def test_it_streams_the_raw_source(client, mailbox):
    _, messages, uids = mailbox
    for name in ("plain", "attachments", "malformed", "long_qp"):
        uid, raw = uids[name], messages[name]
        assert parts.source_size(client, uid) == len(raw)
        for chunk in (len(raw) - 1, len(raw), len(raw) + 1, 1000):
            chunks = list(parts.stream_section(client, uid, "", chunk=chunk))
            assert b"".join(chunks) == raw
            assert all(len(piece) == chunk for piece in chunks[:-1])
        assert parts.fetch_section(client, uid, "") == raw
        assert parts.fetch_section(client, uid, "", max_bytes=10) == raw[:10]


def test_parse_message_numbers_parts_as_the_server_does(client, mailbox):
    uids = mailbox[2]
    for name in NAMES:
        uid = uids[name]
        [meta] = fetch.fetch_meta(client, str(uid))
        parsed = parts.parse_message(b"".join(parts.stream_section(client, uid, "")))
        assert [(a.part, a.filename, a.content_type) for a in parsed.attachments] == [
            (p.part, p.filename, p.content_type) for p in meta.attachments], name
        for attachment in parsed.attachments:
            raw = parts.fetch_section(client, uid, attachment.part)
            encoding = next(p.encoding for p in meta.attachments if p.part == attachment.part)
            assert parts.decode_transfer(raw, encoding) == attachment.content


def test_a_missing_message_raises(client, mailbox):
    _, _, uids = mailbox
    missing = max(uids.values()) + 100
    with pytest.raises(parts.MessageNotFound) as error:
        parts.fetch_section(client, missing, "1")
    assert error.value.uid == missing
    with pytest.raises(parts.MessageNotFound):
        parts.stream_section(client, missing, "")
    with pytest.raises(parts.MessageNotFound):
        parts.fetch_text(client, missing, [{"part": "1", "contentType": "text/plain"}], "*", None)
    with pytest.raises(parts.MessageNotFound):
        parts.fetch_text(client, missing, [], "*", None)
    with pytest.raises(parts.MessageNotFound):  # nothing to fetch, still not there
        parts.fetch_text(client, missing, [{"part": "1", "contentType": "text/plain"}], "html", 10)
    assert parts.source_size(client, missing) is None
    # The connection is still in step: the next command gets its own answer.
    assert parts.fetch_section(client, uids["plain"], "") == mailbox[1]["plain"]


def test_an_expunged_message_raises(client, mailbox):
    user, _, uids = mailbox
    uid = uids["reply"]
    other = user.imap_client()
    try:
        other.select_folder("INBOX")
        other.delete_messages([uid])
        other.expunge()
    finally:
        other.logout()
    with pytest.raises(parts.MessageNotFound):
        parts.fetch_section(client, uid, "TEXT")
    assert parts.source_size(client, uid) is None
    assert read(client, uids["plain"])["plain"].startswith("Hi Bob")


def test_a_message_expunged_while_streaming_raises_instead_of_truncating(client, mailbox):
    user, messages, uids = mailbox
    uid = uids["long_qp"]
    chunks = parts.stream_section(client, uid, "", chunk=1000)
    received = next(chunks) + next(chunks)
    other = user.imap_client()
    try:
        other.select_folder("INBOX")
        other.delete_messages([uid])
        other.expunge()
    finally:
        other.logout()
    with pytest.raises(parts.MessageNotFound):
        for chunk in chunks:
            received += chunk
    assert messages["long_qp"].startswith(received)
    assert len(received) < len(messages["long_qp"])


def test_the_same_sections_of_several_messages_are_one_fetch(client, mailbox, imap_commands):
    _, messages, uids = mailbox
    missing = max(uids.values()) + 100
    wanted = [uids["plain"], missing, uids["reply"]]
    found = parts.fetch_sections_of(client, wanted, {"HEADER": None, "TEXT": 20})
    assert sorted(found) == sorted([uids["plain"], uids["reply"]])  # the missing one left out
    for name in ("plain", "reply"):
        head, _, body = messages[name].partition(b"\r\n\r\n")
        assert found[uids[name]] == {"HEADER": head + b"\r\n\r\n", "TEXT": body[:20]}
    [command] = [c for c in imap_commands if b"UID FETCH" in c]
    assert b"UID FETCH %d,%d,%d (" % tuple(wanted) in command


def test_a_message_expunged_by_another_session_is_left_out_of_several(client, mailbox):
    """Dovecot answers NIL data for it and OK [EXPUNGEISSUED] without saying which: each is
    then read alone."""
    user, messages, uids = mailbox
    other = user.imap_client()
    try:
        other.select_folder("INBOX")
        other.delete_messages([uids["reply"]])
        other.expunge()
    finally:
        other.logout()
    found = parts.fetch_sections_of(client, [uids["plain"], uids["reply"]], {"": None})
    assert found == {uids["plain"]: {"": messages["plain"]}}


def test_a_nonexistent_part_of_an_existing_message_is_empty(client, mailbox):
    uid = mailbox[2]["plain"]
    assert parts.fetch_section(client, uid, "7") == b""
    assert list(parts.stream_section(client, uid, "7")) == []


@pytest.mark.parametrize("section", ["1 BODY[]", "1]", "0", "1)\r\nA1 LOGOUT", "BODY"])
def test_it_refuses_sections_that_are_not_sections(client, mailbox, section):
    with pytest.raises(ValueError):
        parts.fetch_section(client, mailbox[2]["plain"], section)
    with pytest.raises(ValueError):
        parts.stream_section(client, mailbox[2]["plain"], section)


def test_it_works_over_implicit_tls(mailbox):
    _, messages, uids = mailbox
    client = open_client(mailbox[0], secure=True)
    try:
        uid = uids["attachments"]
        assert b"".join(parts.stream_section(client, uid, "", chunk=333)) == messages["attachments"]
    finally:
        client.logout()


# -- a large attachment ----------------------------------------------------------------------

BIG_SIZE = 50 << 20
HEAP_LIMIT = 20 << 20


def big_message(payload: bytes) -> bytes:
    """A multipart message with *payload* as a base64 attachment, built without the email
    package (which would hold several copies of 70 MB)."""
    head = (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\n"
        b"Message-ID: <big@example.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big-boundary"\r\n\r\n'
        b"--big-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        b"--big-boundary\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    body = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return b"".join((head, body, b"--big-boundary--\r\n"))


def test_it_streams_a_50_mb_attachment_in_bounded_memory(mail_user):
    """About 70 MB on the wire: APPEND takes a few seconds, streaming about as long."""
    payload = random.Random(50).randbytes(BIG_SIZE)
    expected = hashlib.sha256(payload).hexdigest()
    raw = big_message(payload)
    del payload
    [uid] = seed.seed_mailbox(mail_user, messages=[raw])
    del raw
    gc.collect()
    client = open_client(mail_user)
    try:
        [meta] = fetch.fetch_meta(client, str(uid))
        [attachment] = meta.attachments
        assert (attachment.part, attachment.encoding) == ("2", "base64")
        digest, size = hashlib.sha256(), 0
        tracemalloc.start()
        try:
            raw_chunks = parts.stream_section(client, uid, attachment.part)
            for chunk in parts.decode_stream(raw_chunks, attachment.encoding):
                digest.update(chunk)
                size += len(chunk)
            del chunk, raw_chunks
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        print(f"peak traced Python heap while streaming 50 MiB: {peak / (1 << 20):.1f} MiB")
        assert peak < HEAP_LIMIT
        assert size == BIG_SIZE
        assert digest.hexdigest() == expected
        # Control: the measurement does see buffering (one 30 MB fetch held at once).
        tracemalloc.start()
        try:
            held = len(parts.fetch_section(client, uid, attachment.part, max_bytes=30 << 20))
            buffered_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert held == 30 << 20
        assert buffered_peak > HEAP_LIMIT
    finally:
        client.logout()
