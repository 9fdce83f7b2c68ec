"""A message's envelope read from its header fields (the engine's FETCH, ``fetch.BASE_META_ITEMS``)
is what Dovecot's ENVELOPE gave before (read as the engine read it then: ``dovecot_envelope``):
the same subject, date, message ids and addresses for every message of the MIME corpus, the
seed's messages and the odd addresses Dovecot mangles, and for header shapes picked for where a
server's reading and ours could part (empty Sender, groups, several From, folds, 8-bit and
encoded names, routes, comments). Where they part, the difference is listed with what the
header fields give, so a change of either reading shows. Against the real Dovecot."""

from __future__ import annotations

import re

import pytest

from mailboxes.imap import fetch, parse
from mailboxes.imap.types import Address
from tests.mailboxes import dovecot_envelope, mime_shapes
from tests.mailboxes.test_imap_fetch import open_client
from tests.servers import seed

FIELDS = ("subject", "from_", "sender", "reply_to", "to", "cc", "bcc", "date", "message_id",
          "in_reply_to", "references")

# Header shapes, each a message of its own (with a one-line body).
SHAPES = [
    b"From: a@b.test\r\nSender:\r\nReply-To: \r\nSubject: empty sender\r\n",
    b'From: A <a@b.test>\r\nTo: friends: x@y.test, "Z" <z@y.test>;, w@v.test\r\n'
    b"Subject:   spaced   subject  \r\n",
    b"From: a@b.test\r\nFrom: second@b.test\r\nSubject: two froms\r\n",
    b"Subject: no from at all\r\nTo: undisclosed-recipients:;\r\n",
    b'From: "Last, First" <lf@x.test> (comment)\r\nTo: (leading comment) x@y.test\r\n',
    b"From: =?utf-8?q?J=C3=B6rg?= <j@x.test>\r\nSubject: =?utf-8?b?5p2O5bCP6b6N?= and more\r\n",
    b"From: Caf\xc3\xa9 <c@x.test>\r\nSubject: caf\xc3\xa9 8bit\r\nTo: \xe9t\xe9 <e@x.test>\r\n",
    b"Subject: folded\r\n subject line\r\n\tand tab\r\nFrom: a@b.test\r\n",
    b"From: a@b.test\r\nMessage-ID:  <id with space@x>  \r\nIn-Reply-To: <p1@x> <p2@x>\r\n",
    b"From: a@b.test\r\nMessage-ID: noangle@x\r\nIn-Reply-To: junk text\r\nDate: garbage\r\n",
    b'From: <@route1,@route2:user@host.test>\r\nTo: "quoted@at" <q@x.test>\r\n',
    b"From: user\r\nTo: localonly, other\r\n",
    b"From: a@b.test\r\nCc: ,,, x@y.test,,\r\nBcc: \r\n",
    b'From: "Esc \\"aped\\" name" <e@x.test>\r\n',
    b"From: a@b.test\r\nTo: group:;\r\nCc: g: a@x.test, b@x.test;\r\n",
    b"From: Name With <Angle@x.test> trailing words\r\n",
    b"From: a@b.test\r\nDate: Tue, 5 Mar 2024 10:00:00 +0100 (CET)\r\n",
    b"From: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n",
    b"From: mailbox@x.test (Name (nested) comment)\r\n",
    b"From: a@b.test\r\nSubject: \r\n",
]

# Where the two readings part: (shape, field) -> what the header fields give. Each is a
# malformed or rare header read as mail clients read it (``parse.header_addresses``).
LEADING = [Address("leading comment", "x@y.test")]  # Dovecot names only a trailing comment
TRAILING = [Address("Name With trailing words", "Angle@x.test")]  # Dovecot drops the words
DIFFERENT = {
    (4, "to"): LEADING,
    (15, "from_"): TRAILING, (15, "sender"): TRAILING, (15, "reply_to"): TRAILING,
}


@pytest.fixture
def both_ways(mail_user):
    """Each message's envelope read both ways, in the order appended: the ENVELOPE's fields
    (a dict) and our ``MessageMeta``."""
    messages = (mime_shapes.corpus(120) + seed.build_messages() + [mime_shapes.odd_addresses()]
                + [shape + b"\r\nBody.\r\n" for shape in SHAPES])
    seed.seed_mailbox(mail_user, messages=messages)
    client = open_client(mail_user)
    try:
        by_uid = dovecot_envelope.fetch_enveloped(client)
        ours = fetch.fetch_meta(client, "1:*")
    finally:
        client.logout()
    assert [m.uid for m in ours] == sorted(by_uid)
    assert len(ours) == len(messages)
    return [by_uid[m.uid] for m in ours], ours, len(messages) - len(SHAPES)


def test_the_engine_reads_no_envelope_from_the_server():
    assert "ENVELOPE" not in fetch.BASE_META_ITEMS.split()
    asked = re.search(r"HEADER\.FIELDS \(([^)]*)\)", fetch.BASE_META_ITEMS).group(1).split()
    assert set(asked) == {name.upper() for name in parse.ENVELOPE_HEADERS} | {"REFERENCES"}


def test_the_header_fields_give_what_dovecots_envelope_gave(both_ways):
    enveloped, ours, first_shape = both_ways
    parted = {}
    for position, (before, now) in enumerate(zip(enveloped, ours, strict=True)):
        for field in FIELDS:
            if before[field] != getattr(now, field):
                assert position >= first_shape, (position, field, before[field],
                                                 getattr(now, field))
                parted[(position - first_shape, field)] = getattr(now, field)
    assert parted == DIFFERENT
    assert sum(bool(m.from_) for m in ours) > 140  # the addresses were there to compare


def test_what_the_header_fields_give(both_ways):
    """The model, spelt out on the shapes (Dovecot could change too)."""
    _, ours, first = both_ways
    shape = ours[first:]
    assert (shape[0].sender, shape[0].reply_to) == ([], [])  # empty, not From (as Dovecot)
    assert shape[2].sender == [Address("", "a@b.test")]  # absent: From (RFC 3501)
    assert shape[1].subject == "spaced subject"
    assert shape[7].subject == "folded subject line and tab"
    assert [a.address for a in shape[1].to] == ["x@y.test", "z@y.test", "w@v.test"]
    assert shape[2].from_ == [Address("", "a@b.test")]  # the first From
    assert (shape[3].from_, shape[3].to) == ([], [])
    assert shape[6].from_ == [Address("Café", "c@x.test")]
    assert shape[6].to == [Address("été", "e@x.test")]
    assert (shape[8].message_id, shape[8].in_reply_to) == ("<idwithspace@x>", "<p1@x>")
    assert (shape[9].date, shape[9].message_id) == (None, "noangle@x")
    assert shape[10].from_ == [Address("", "user@host.test")]
    assert shape[16].date.isoformat() == "2024-03-05T10:00:00+01:00"
    assert shape[18].from_ == [Address("Name (nested) comment", "mailbox@x.test")]
