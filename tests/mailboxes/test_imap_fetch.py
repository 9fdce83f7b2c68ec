"""``mailboxes.imap.fetch`` against the real test Dovecot (no mocks).

Why a real server: what matters here is how a real server words its answers (literals for 8-bit
envelope strings, RFC 2231 parameters left encoded, unsolicited FETCH and VANISHED responses in
the middle of a command) and that the imaplib connection stays usable afterwards. The
connection is opened with the application's own ``client.connect`` (STARTTLS, as in
production); one test uses implicit TLS. No database is used.
"""

from __future__ import annotations

import imaplib
from datetime import timezone

import pytest

from mailboxes.imap import fetch, parse
from mailboxes.imap.client import ImapSettings, connect
from mailboxes.imap.types import FlagChange
from tests.servers import seed

NAMES = list(seed.MESSAGE_IDS)


def open_client(user, secure: bool = False, qresync: bool = False):
    client = connect(ImapSettings(
        host=user.host, port=user.imaps_port if secure else user.imap_port, secure=secure,
        user=user.username, password=user.password, tls_verify=False,
        allow_private=True,  # the test Dovecot is on loopback
    ))
    if qresync:
        client.enable("QRESYNC")  # imapclient allows ENABLE only before SELECT
    client.select_folder("INBOX")
    return client


@pytest.fixture
def seeded(mail_user):
    uids = seed.seed_mailbox(mail_user, messages=seed.build_messages())
    return mail_user, dict(zip(NAMES, uids, strict=True))


@pytest.fixture
def client(seeded):
    client = open_client(seeded[0])
    yield client
    client.logout()


@pytest.fixture
def other(seeded):
    """A second session on the same mailbox, making changes "from another client"."""
    client = seeded[0].imap_client()
    client.select_folder("INBOX")
    yield client
    client.logout()


def by_message_id(metas):
    return {meta.message_id: meta for meta in metas}


def test_fetch_meta_decodes_the_seed_messages(client, seeded):
    items = fetch.meta_items(client.capabilities())
    assert items.endswith("MODSEQ")  # Dovecot has CONDSTORE
    metas = fetch.fetch_meta(client, "1:*", items)
    assert [m.uid for m in metas] == sorted(seeded[1].values())
    got = by_message_id(metas)
    assert set(got) == set(seed.MESSAGE_IDS.values())
    for name, subject in seed.SUBJECTS.items():
        assert got[seed.MESSAGE_IDS[name]].subject == subject
    unicode = got[seed.MESSAGE_IDS["unicode"]]
    assert unicode.subject == seed.UNICODE_SUBJECT
    assert [a.as_dict() for a in unicode.from_] == [
        {"name": "Jörg Müller-Łukasiewicz", "address": "joerg@example.test"}]
    assert unicode.to[0].name == "Zoë Ærøskøbing"
    assert got[seed.MESSAGE_IDS["attachments"]].from_[0].name == "Buchhaltung"
    assert all(isinstance(m.modseq, int) and m.modseq > 0 for m in metas)
    assert all(m.internal_date.tzinfo is timezone.utc for m in metas)
    assert unicode.internal_date == unicode.date  # the seed uses the Date header


def test_threading_headers(client):
    got = by_message_id(fetch.fetch_meta(client, "1:*"))
    reply = got[seed.MESSAGE_IDS["reply"]]
    assert reply.in_reply_to == seed.MESSAGE_IDS["plain"]
    assert reply.references == [seed.MESSAGE_IDS["plain"]]
    plain = got[seed.MESSAGE_IDS["plain"]]
    assert (plain.in_reply_to, plain.references) == (None, [])


def test_attachments_and_text_parts(client):
    got = by_message_id(fetch.fetch_meta(client, "1:*"))
    assert [m.message_id for m in got.values() if m.has_attachments] == [seed.MESSAGE_IDS["attachments"]]
    message = got[seed.MESSAGE_IDS["attachments"]]
    files = {part.filename: part for part in message.attachments}
    assert set(files) == {seed.PDF_FILENAME, seed.IMAGE_FILENAME}  # RFC 2231, non-ASCII
    pdf, image = files[seed.PDF_FILENAME], files[seed.IMAGE_FILENAME]
    assert (pdf.part, pdf.content_type, pdf.disposition, pdf.encoding) == (
        "2", "application/pdf", "attachment", "base64")
    assert (image.part, image.content_type, image.content_id, image.disposition) == (
        "1.2.2", "image/png", seed.IMAGE_CID, "inline")
    assert [(p.part, p.content_type) for p in message.text_parts] == [
        ("1.1", "text/plain"), ("1.2.1", "text/html")]
    alternative = got[seed.MESSAGE_IDS["alternative"]]
    assert [(p.part, p.content_type, p.charset) for p in alternative.text_parts] == [
        ("1", "text/plain", "utf-8"), ("2", "text/html", "utf-8")]


def test_malformed_message_gives_best_effort_values(client):
    broken = by_message_id(fetch.fetch_meta(client, "1:*"))[seed.MESSAGE_IDS["malformed"]]
    assert broken.subject == seed.MALFORMED_SUBJECT_BYTES.decode("latin-1")
    assert broken.from_[0].as_dict() == {"name": "Broken émitter", "address": "broken@example.test"}
    assert broken.date is None  # no Date header
    assert [(p.content_type, p.charset) for p in broken.text_parts] == [("text/plain", "x-unknown")]
    assert not broken.has_attachments


def test_matches_imapclient_for_the_basic_items(client):
    ours = {m.uid: m for m in fetch.fetch_meta(client, "1:*")}
    client.normalise_times = False
    theirs = client.fetch(list(ours), ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"])
    assert set(theirs) == set(ours)
    for uid, data in theirs.items():
        meta = ours[uid]
        # imapclient passes \\Recent through; ours drops that per-session pseudo-flag.
        assert b"\\Recent" in data[b"FLAGS"]
        assert meta.flags == tuple(f.decode() for f in data[b"FLAGS"] if f != b"\\Recent")
        assert meta.size == data[b"RFC822.SIZE"]
        assert meta.internal_date == data[b"INTERNALDATE"].astimezone(timezone.utc)
        envelope = data[b"ENVELOPE"]
        assert meta.message_id == envelope.message_id.decode()
        assert meta.date == envelope.date
        assert [a.address for a in meta.to] == [
            f"{a.mailbox.decode()}@{a.host.decode()}" for a in envelope.to]


def test_uid_sets(client, seeded):
    uids = sorted(seeded[1].values())
    assert [m.uid for m in fetch.fetch_meta(client, f"{uids[1]}:{uids[3]}")] == uids[1:4]
    assert [m.uid for m in fetch.fetch_meta(client, f"{uids[0]},{uids[2]},{uids[4]}")] == uids[0:5:2]
    assert [m.uid for m in fetch.fetch_meta(client, f"{uids[4]}:*")] == uids[4:]
    # The server answers "n:*" with the highest UID even when n is above it; that is dropped.
    assert fetch.fetch_meta(client, f"{uids[-1] + 10}:*") == []
    assert fetch.fetch_meta(client, "") == []


def test_each_message_carries_its_sequence_number(client, other, seeded):
    uids = sorted(seeded[1].values())
    other.delete_messages([uids[0]])
    other.expunge()  # the sequence numbers now differ from the UIDs' order from 1
    client.noop()
    metas = fetch.fetch_meta(client, f"{uids[2]},{uids[4]}")
    assert [(m.uid, m.seq) for m in metas] == [(uids[2], 2), (uids[4], 4)]


def test_a_sequence_number_an_expunge_may_have_changed_is_not_given():
    imap = imaplib.IMAP4.__new__(imaplib.IMAP4)  # not connected: only its response store is used
    imap.untagged_responses, imap.debug = {}, 0
    collector = fetch._Collector(imap, parse.SequenceSet("40:42"))
    for line in [b"* 4 FETCH (UID 40 FLAGS ())", b"* 2 EXPUNGE", b"* 5 FETCH (UID 42 FLAGS ())"]:
        collector.on_untagged([line], [])
    assert collector.seq_of_uid == {42: 5}


@pytest.mark.parametrize("qresync", [False, True], ids=["plain", "qresync"])
def test_unsolicited_updates_for_other_uids_are_not_returned(seeded, other, qresync):
    user, by_name = seeded
    uids = sorted(by_name.values())
    client = open_client(user, qresync=qresync)
    try:
        other.add_flags([uids[-1]], [b"\\Flagged"])
        # Dovecot reports the other session's change in the middle of our next command, as
        # "* 6 FETCH (MODSEQ (8) FLAGS (...))" - with the UID only once QRESYNC is enabled.
        metas = fetch.fetch_meta(client, f"{uids[0]}:{uids[1]}")
        assert [m.uid for m in metas] == uids[:2]
        other.add_flags([uids[-2]], [b"\\Flagged"])
        assert [c.uid for c in fetch.fetch_flags(client, f"{uids[0]}:{uids[1]}")[0]] == uids[:2]
        (last,) = fetch.fetch_meta(client, str(uids[-1]))
        assert "\\Flagged" in last.flags
        # Other untagged responses are filed where imaplib would have put them.
        other.delete_messages([uids[0]])
        other.expunge()
        assert [m.uid for m in fetch.fetch_meta(client, f"{uids[1]}")] == [uids[1]]
        untagged = client._imap.untagged_responses
        assert untagged.get("EXPUNGE") == [b"1"] or untagged.get("VANISHED") == [str(uids[0]).encode()]
        # The connection is still in step: imapclient's own commands work.
        assert set(client.fetch([uids[1]], ["FLAGS"])) == {uids[1]}
    finally:
        client.logout()


def test_fetch_flags_changedsince_returns_only_the_changed_uid(client, other, seeded):
    uids = sorted(seeded[1].values())
    highest = max(m.modseq for m in fetch.fetch_meta(client, "1:*"))
    changes, vanished = fetch.fetch_flags(client, "1:*")
    assert [c.uid for c in changes] == uids
    assert vanished == []
    other.add_flags([uids[2]], [b"\\Seen", b"$Forwarded"])
    client.noop()  # Dovecot answers from the view synced after our previous command
    changes, vanished = fetch.fetch_flags(client, "1:*", changedsince=highest)
    assert [c.uid for c in changes] == [uids[2]]
    assert {"\\Seen", "$Forwarded"} <= set(changes[0].flags)
    assert changes[0].modseq > highest
    assert vanished == []
    with pytest.raises(ValueError):
        fetch.fetch_flags(client, "1:*", vanished=True)


def test_flags_after_another_sessions_change(client, other, seeded):
    """Dovecot answers FETCH with the new flags, then repeats the change unsolicited (without a
    UID, QRESYNC being off): one result per message, with the new flags."""
    uids = sorted(seeded[1].values())
    other.add_flags([uids[3]], [b"\\Flagged"])
    (meta,) = fetch.fetch_meta(client, str(uids[3]))
    assert "\\Flagged" in meta.flags
    other.remove_flags([uids[3]], [b"\\Flagged"])
    changes, _ = fetch.fetch_flags(client, f"{uids[2]}:{uids[4]}")
    assert [c.uid for c in changes] == uids[2:5]
    assert "\\Flagged" not in changes[1].flags


def test_uidless_updates_are_matched_by_sequence_number():
    """Servers may answer from a stale view and send the newer flags afterwards, without a UID
    when QRESYNC is off (RFC 3501 allows both); recorded responses fed to the collector."""
    imap = imaplib.IMAP4.__new__(imaplib.IMAP4)  # not connected: only its response store is used
    imap.untagged_responses, imap.debug = {}, 0
    collector = fetch._Collector(imap, parse.SequenceSet("40:41"))
    for line in [
        b"* 4 FETCH (UID 40 FLAGS () MODSEQ (7))",
        b"* 5 FETCH (UID 41 FLAGS (\\Seen) MODSEQ (7))",
        b"* 4 FETCH (MODSEQ (9) FLAGS (\\Flagged))",  # newer flags of UID 40
        b"* 6 FETCH (MODSEQ (9) FLAGS (\\Deleted))",  # a message we did not ask for
        b"* 3 EXPUNGE",  # renumbers: seq 5 is no longer UID 41
        b"* 4 FETCH (FLAGS (\\Answered))",
    ]:
        collector.on_untagged([line], [])
    changes = [parse.flag_change(items) for items in collector.found.values()]
    assert changes == [FlagChange(40, ("\\Flagged",), 9), FlagChange(41, ("\\Seen",), 7)]
    assert imap.untagged_responses == {"EXPUNGE": [b"3"]}


def test_vanished_reports_an_expunge_by_another_client(seeded, other):
    user, uids = seeded
    client = open_client(user, qresync=True)
    try:
        highest = max(change.modseq for change in fetch.fetch_flags(client, "1:*")[0])
        other.delete_messages([uids["alternative"]])
        other.expunge()
        other.add_flags([uids["plain"]], [b"\\Answered"])
        changes, vanished = fetch.fetch_flags(client, "1:*", changedsince=highest, vanished=True)
        assert vanished == [uids["alternative"]]
        assert [c.uid for c in changes] == [uids["plain"]]
        assert "VANISHED" not in client._imap.untagged_responses
        # Reported once: asking again from the new state finds nothing.
        newest = changes[0].modseq
        assert fetch.fetch_flags(client, "1:*", changedsince=newest, vanished=True) == ([], [])
    finally:
        client.logout()


def test_vanished_queued_by_imaplib_is_consumed(seeded, other):
    user, uids = seeded
    client = open_client(user, qresync=True)
    try:
        other.delete_messages([uids["reply"]])
        other.expunge()
        client._imap.noop()  # imaplib files the live "* VANISHED <uid>" under untagged_responses
        assert "VANISHED" in client._imap.untagged_responses
        changes, vanished = fetch.fetch_flags(client, "1:*")
        assert vanished == [uids["reply"]]
        assert uids["reply"] not in [c.uid for c in changes]
        assert "VANISHED" not in client._imap.untagged_responses
        assert fetch.fetch_flags(client, "1:*")[1] == []
    finally:
        client.logout()


def test_search_uids_with_and_without_esearch(client, other, seeded):
    uids = sorted(seeded[1].values())
    assert client.has_capability("ESEARCH")
    assert fetch.search_uids(client) == uids
    other.add_flags(uids[:3], [b"\\Seen"])
    client.noop()  # otherwise Dovecot searches the view as of our previous command
    assert fetch.search_uids(client, "UNSEEN") == uids[3:]
    assert fetch.search_uids(client, f"UID {uids[1]}:{uids[2]}") == uids[1:3]
    assert fetch.search_uids(client, "KEYWORD NoSuchKeyword") == []
    # The plain SEARCH path, on the same real server (capability hidden from imapclient's cache).
    client._cached_capabilities = tuple(c for c in client.capabilities() if c != b"ESEARCH")
    assert not client.has_capability("ESEARCH")
    assert fetch.search_uids(client) == uids
    assert fetch.search_uids(client, "UNSEEN") == uids[3:]
    assert fetch.search_uids(client, "KEYWORD NoSuchKeyword") == []


def test_errors_raise_and_leave_the_connection_usable(client):
    with pytest.raises(imaplib.IMAP4.error, match="UID FETCH failed: BAD"):
        fetch.fetch_meta(client, "1:*", "UID NOSUCHITEM")
    with pytest.raises(imaplib.IMAP4.error, match="UID SEARCH failed"):
        fetch.search_uids(client, "NOSUCHKEY")
    with pytest.raises(ValueError):  # refused before anything is sent
        fetch.fetch_meta(client, "1:* (BODY[])")
    with pytest.raises(ValueError):
        fetch.search_uids(client, "ALL\r\nA1 DELETE INBOX")
    assert len(fetch.fetch_meta(client, "1:*")) == len(NAMES)
    assert client.noop()[0].startswith(b"NOOP")
    assert not client._imap.tagged_commands  # every tag we used was completed and forgotten


def test_implicit_tls_and_many_batches(seeded):
    user, uids = seeded
    extra = [seed.make_message(subject=f"Batch {n} – über", message_id=f"<batch-{n}@x.test>")
             for n in range(60)]
    seed.seed_mailbox(user, messages=extra)
    client = open_client(user, secure=True)
    try:
        all_uids = fetch.search_uids(client)
        assert len(all_uids) == len(NAMES) + len(extra)
        seen = []
        for start in range(0, len(all_uids), 25):
            batch = all_uids[start : start + 25]
            seen += fetch.fetch_meta(client, ",".join(map(str, batch)))
        assert [m.uid for m in seen] == all_uids
        assert {m.subject for m in seen[len(NAMES):]} == {f"Batch {n} – über" for n in range(60)}
    finally:
        client.logout()


def test_search_count_with_and_without_esearch(client, other, seeded):
    uids = sorted(seeded[1].values())
    other.add_flags(uids[:3], [b"\\Seen"])
    client.noop()  # otherwise Dovecot searches the view as of our previous command
    assert fetch.search_count(client, "UNSEEN") == len(uids) - 3
    assert fetch.search_count(client, "SEEN") == 3
    assert fetch.search_count(client, "KEYWORD NoSuchKeyword") == 0  # COUNT may be left out
    client._cached_capabilities = tuple(c for c in client.capabilities() if c != b"ESEARCH")
    assert fetch.search_count(client, "UNSEEN") == len(uids) - 3


def many_parts_message(parts: int) -> bytes:
    """A message with *parts* small attachments, each with a name and a description: its
    BODYSTRUCTURE is one line of well over 1,000,000 bytes."""
    boundary = "b-many-parts"
    lines = [
        "From: sender@example.test", "To: rcpt@example.test", "Subject: many parts",
        "Message-ID: <many-parts@example.test>", "Date: Fri, 04 Dec 2026 09:00:00 +0000",
        "MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"', "",
    ]
    for index in range(parts):
        name = f"attachment-number-{index:05d}-with-a-long-descriptive-file-name.txt"
        lines += [
            f"--{boundary}",
            f'Content-Type: text/plain; charset="us-ascii"; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            f"Content-Description: part {index:05d} of a message with very many parts",
            f"Content-ID: <part-{index:05d}@example.test>",
            "", f"body {index}",
        ]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("ascii")


def test_a_response_line_longer_than_imaplibs_limit_is_read(client, other, seeded):
    """A message with thousands of MIME parts (real mail has them) gets a BODYSTRUCTURE line
    longer than imaplib's 1,000,000-byte limit. Refused, it failed its folder's first index at
    the same FETCH on every retry; it is read, and the connection stays usable."""
    parts = 5000
    other.append("INBOX", many_parts_message(parts))
    client.noop()
    uid = max(fetch.search_uids(client))
    # The same FETCH through plain imaplib: the line is really past its limit (that session
    # is left mid-line, so it is dropped, not logged out).
    probe = seeded[0].imap_client()
    try:
        probe.select_folder("INBOX")
        with pytest.raises(imaplib.IMAP4.error, match="got more than 1000000 bytes"):
            probe._imap.uid("FETCH", str(uid), "(BODYSTRUCTURE)")
    finally:
        probe.shutdown()
    [meta] = fetch.fetch_meta(client, str(uid), fetch.meta_items(client.capabilities()))
    assert meta.subject == "many parts"
    assert len(meta.attachments) == parts
    assert meta.attachments[-1].filename.startswith("attachment-number-04999")
    assert len(fetch.fetch_meta(client, "1:*")) == len(NAMES) + 1
