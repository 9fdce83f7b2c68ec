"""``mailboxes.imap.search.uid_search`` against the real test Dovecot (no mocks).

Why a real server: whether a search finds the right messages depends on how the server decodes
RFC 2047 headers, matches non-ASCII case-insensitively, reads CHARSET UTF-8 literals and treats
INTERNALDATE versus the Date header; and whether an injection attempt is harmless shows only
on a real parser, by the connection still answering afterwards. No database is used.
"""

from __future__ import annotations

import imaplib
from datetime import datetime, timezone

import pytest

from mailboxes.imap import search
from mailboxes.imap.search import InvalidSearch, uid_search
from tests.servers import seed


def day(n: int, month: int = 3) -> datetime:
    return datetime(2024, month, n, 9, 30, tzinfo=timezone.utc)


ALICE = "Alice Example <alice@example.test>"
BOB = "Bob Example <bob@example.test>"
BILLING = "Buchhaltung <billing@example.test>"

# Eight messages, by index; the ninth (INVOICE) is appended with an INTERNALDATE that differs
# from its Date header. Comments list what each one is there to match.
MESSAGES = [
    # 0: non-ASCII subject, seen
    dict(subject="Rechnung für März", from_=BILLING, to=BOB, body="Anbei die Rechnung.\n",
         date=day(1)),
    # 1: cc, a body word, seen + flagged
    dict(subject="Weekly report", from_=ALICE, to=BOB, cc="Carol <carol@example.test>",
         body="The zebrafish numbers are in.\n", date=day(2)),
    # 2: reply, answered, custom header
    dict(subject="Re: Weekly report", from_=BOB, to=ALICE, body="Thanks!\n", date=day(3),
         headers={"X-Campaign": "spring-2024"}),
    # 3: draft with a Bcc
    dict(subject="Draft: plans", from_=ALICE, to="Dave <dave@example.test>", body="tbd\n",
         date=day(4), headers={"Bcc": "Eve <eve@example.test>"}),
    # 4: deleted
    dict(subject="Old newsletter", from_="News <news@example.test>", to=BOB, body="old\n",
         date=day(5)),
    # 5: large, keyword
    dict(subject="Big attachment", from_=ALICE, to=BOB, body="blob " * 6000, date=day(6)),
    # 6: non-ASCII sender and body, unflagged and unseen
    dict(subject="Grüße aus Köln", from_="Jörg Müller <joerg@example.test>", to=BOB,
         body="Schöne Grüße und viel Glück!\n", date=day(7),
         headers={"X-Campaign": "autumn"}),
]
FLAGS = {0: [b"\\Seen"], 1: [b"\\Seen", b"\\Flagged"], 2: [b"\\Answered"], 3: [b"\\Draft"],
         4: [b"\\Deleted"], 5: [b"$Important"]}
INVOICE = dict(subject="Invoice 42 (final)", from_=BILLING, to=BOB, body="Total: 42 EUR\n",
               date=day(8))
INVOICE_RECEIVED = day(1, month=4)


@pytest.fixture
def mailbox(mail_user):
    """(client with INBOX selected read-only, {index: uid}) with the messages above."""
    uids = seed.seed_mailbox(mail_user, messages=[seed.make_message(**m) for m in MESSAGES],
                             flags_for=FLAGS)
    client = mail_user.imap_client()
    response = client.append("INBOX", seed.make_message(**INVOICE), msg_time=INVOICE_RECEIVED)
    uids.append(int(seed.APPENDUID_RE.search(response).group(2)))
    client.select_folder("INBOX", readonly=True)
    yield client, dict(enumerate(uids))
    client.logout()


def found(mailbox, criteria, **kwargs) -> list[int]:
    """The message indexes *criteria* matches."""
    client, uids = mailbox
    by_uid = {uid: index for index, uid in uids.items()}
    result = uid_search(client, criteria, **kwargs)
    assert result == sorted(result)
    return sorted(by_uid[uid] for uid in result)


def assert_usable(mailbox):
    """The connection still answers, in order: NOOP, then a search with a known answer."""
    client, _ = mailbox
    client.noop()
    assert found(mailbox, {"subject": "weekly report"}) == [1, 2]


EVERYTHING = list(range(8))


@pytest.mark.parametrize("criteria, expected", [
    ({}, EVERYTHING),
    ({"subject": "März"}, [0]),
    ({"subject": "MÄRZ"}, [0]),
    ({"subject": "rechnung für"}, [0]),
    ({"subject": "weekly report"}, [1, 2]),
    ({"subject": "(final)"}, [7]),
    ({"from": "billing@example.test"}, [0, 7]),
    ({"from": "Müller"}, [6]),
    ({"from": "alice"}, [1, 3, 5]),
    ({"to": "dave@"}, [3]),
    ({"to": "alice@example.test"}, [2]),
    ({"cc": "carol"}, [1]),
    ({"bcc": "eve@example.test"}, [3]),
    ({"body": "zebrafish"}, [1]),
    ({"body": "Glück"}, [6]),
    ({"body": "März"}, []),  # only in a subject
    ({"text": "zebrafish"}, [1]),
    ({"text": "Invoice 42"}, [7]),  # TEXT covers headers too
    ({"seen": True}, [0, 1]),
    ({"seen": False}, [2, 3, 4, 5, 6, 7]),
    ({"flagged": True}, [1]),
    ({"flagged": False}, [0, 2, 3, 4, 5, 6, 7]),
    ({"answered": True}, [2]),
    ({"answered": False}, [0, 1, 3, 4, 5, 6, 7]),
    ({"draft": True}, [3]),
    ({"draft": False}, [0, 1, 2, 4, 5, 6, 7]),
    ({"deleted": True}, [4]),
    ({"deleted": False}, [0, 1, 2, 3, 5, 6, 7]),
    ({"keyword": "$Important"}, [5]),
    ({"unKeyword": "$Important"}, [0, 1, 2, 3, 4, 6, 7]),
    ({"keyword": "$NeverSet"}, []),
    ({"since": "2024-03-07"}, [6, 7]),  # 7 was received on 1 April
    ({"since": "2024-04-01"}, [7]),
    ({"before": "2024-03-03"}, [0, 1]),
    ({"before": "2024-03-03T01:00:00+02:00"}, [0]),  # 23:00 UTC on 2 March
    ({"sentSince": "2024-03-08"}, [7]),
    ({"sentSince": "2024-04-01"}, []),
    ({"sentBefore": "2024-03-02"}, [0]),
    ({"since": "2024-03-02", "before": "2024-03-04"}, [1, 2]),
    ({"larger": 20000}, [5]),
    ({"smaller": 20000}, [0, 1, 2, 3, 4, 6, 7]),
    ({"header": {"X-Campaign": ""}}, [2, 6]),
    ({"header": {"X-Campaign": "spring"}}, [2]),
    ({"header": {"X-Campaign": "", "From": "joerg"}}, [6]),
    ({"header": {"X-Missing": ""}}, []),
    ({"from": "alice@example.test", "to": "bob"}, [1, 5]),
    ({"from": "alice", "seen": False, "larger": 20000}, [5]),
])
def test_it_finds_exactly_the_matching_messages(mailbox, criteria, expected):
    assert found(mailbox, criteria) == expected


def test_it_searches_uid_sets(mailbox):
    _, uids = mailbox
    assert found(mailbox, {"uid": f"{uids[1]}:{uids[3]}"}) == [1, 2, 3]
    assert found(mailbox, {"uid": f"{uids[0]},{uids[5]}:{uids[6]}"}) == [0, 5, 6]
    assert found(mailbox, {"uid": "*"}) == [7]
    assert found(mailbox, {"uid": f"{uids[6]}:*", "seen": False}) == [6, 7]
    assert found(mailbox, {"uid": "4294967295"}) == []
    # RFC 3501: "*" is the highest UID, so a range starting above it still ends on it.
    assert found(mailbox, {"uid": f"{uids[7] + 100}:*"}) == [7]


@pytest.mark.parametrize("criteria, expected", [
    ({"or": [{"subject": "März"}, {"flagged": True}]}, [0, 1]),
    ({"or": [{"subject": "März"}, {"flagged": True}, {"keyword": "$Important"}]}, [0, 1, 5]),
    ({"or": [{"from": "alice", "seen": True}, {"deleted": True}]}, [1, 4]),
    ({"or": [{}, {"seen": True}]}, EVERYTHING),
    ({"not": {"seen": True}}, [2, 3, 4, 5, 6, 7]),
    ({"not": {"from": "alice", "seen": True}}, [0, 2, 3, 4, 5, 6, 7]),
    ({"not": {}}, []),
    ({"not": {"not": {"draft": True}}}, [3]),
    ({"or": [{"not": {"seen": True}, "from": "billing"}, {"subject": "weekly"}]}, [1, 2, 7]),
    ({"from": "billing", "or": [{"seen": True}, {"subject": "invoice"}],
      "not": {"subject": "Rechnung"}}, [7]),
    ({"or": [{"subject": "Grüße"}, {"header": {"X-Campaign": "spring"}}],
      "not": {"or": [{"answered": True}, {"body": "Glück"}]}}, []),
])
def test_it_combines_or_and_not(mailbox, criteria, expected):
    assert found(mailbox, criteria) == expected


@pytest.mark.parametrize("criteria, expected", [
    ({"subject": "März"}, [0]),
    ({"subject": "Rechnung für", "body": "Anbei", "from": "Buchhaltung"}, [0]),
    ({"or": [{"subject": "Grüße"}, {"body": 'no "such" thing'}]}, [6]),
    ({"header": {"X-Campaign": ""}, "text": "Köln"}, [6]),
])
def test_it_works_with_synchronizing_literals(mailbox, criteria, expected):
    assert found(mailbox, criteria, literal_plus=False) == expected
    assert_usable(mailbox)


def test_it_works_without_esearch(mailbox, monkeypatch):
    client, _ = mailbox
    real = client.has_capability
    monkeypatch.setattr(client, "has_capability",
                        lambda name: name.upper() != "ESEARCH" and real(name))
    assert found(mailbox, {"subject": "März"}) == [0]
    assert found(mailbox, {"seen": False, "from": "alice"}) == [3, 5]
    assert found(mailbox, {"subject": "nothing like this"}) == []
    assert found(mailbox, {}) == EVERYTHING


INJECTIONS = [
    'x" OR ALL "',
    'x") ALL ("',
    '" ALL',
    "a\r\nA999 LOGOUT\r\n",
    "\r\n* OK [ALERT] hi\r\n",
    "\r\n",
    "{5}",
    "x {5}",
    "{5+}",
    "{99999}\r\n",
    "*",
    "%",
    ")(",
    "(",
    ") OR (ALL",
    "\\",
    '"',
    "\\\" ALL \\\"",
    "NIL",
    "a" * 10000,
    "Ä" * 3000 + "\r\n",
    'ÄÖÜ\r\n"{3}',
    "\x01\x07\x1b[31m\x7f",
    "🎉 emoji",
]


SUBJECTS = [m["subject"] for m in MESSAGES] + [INVOICE["subject"]]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("literal_plus", [True, False], ids=["literal+", "sync"])
def test_it_keeps_injection_attempts_inside_the_string(mailbox, value, literal_plus):
    # As it is: exactly the subjects that contain it ("(" is in one). Dovecot ignores line
    # breaks at the end of a header search key ("\r\n" alone matches every subject).
    needle = value.rstrip("\r\n").lower()
    expected = [i for i, subject in enumerate(SUBJECTS) if needle in subject.lower()]
    assert found(mailbox, {"subject": value}, literal_plus=literal_plus) == expected
    # After a prefix no message contains, so any match would be injected syntax at work.
    value = "zq" + value
    for criteria, expected in (
        ({"subject": value}, []),
        ({"text": value, "seen": False}, []),
        ({"or": [{"from": value}, {"header": {"X-Campaign": value}}]}, []),
        ({"or": [{"to": value}, {"bcc": value}, {"cc": value}]}, []),
        ({"not": {"body": value}, "keyword": "$Important"}, [5]),
    ):
        assert found(mailbox, criteria, literal_plus=literal_plus) == expected, criteria
    assert_usable(mailbox)


def test_it_sends_the_largest_search_the_limits_allow(mailbox):
    """Dovecot drops the connection when a command passes 64 KiB, literals included."""
    value = "ä" * ((search.MAX_VALUE_BYTES - len("X-Campaign")) // 2)
    many = {"or": [{"sentBefore": "2000-01-01"} for _ in range(48)]}  # 198 keys in all
    criteria = {
        "or": [{"body": value}, {"header": {"X-Campaign": value}}],
        "not": {"or": [{"text": value}, many, many]},
        "seen": False,
    }
    args = search.compile_search(criteria)
    assert sum(len(chunk) for chunk in search.wire_chunks(args, None)) > 3 * 16384
    assert found(mailbox, criteria) == []
    assert_usable(mailbox)
    with pytest.raises(InvalidSearch, match="add up to"):
        uid_search(mailbox[0], {**criteria, "subject": "x" * 100})


@pytest.mark.parametrize("criteria, path", [
    ({"subject": "a\x00b"}, "subject"),
    ({"or": [{"seen": True}, {"body": "\x00"}]}, "or.1.body"),
    ({"header": {"X-Campaign": "\x00 ALL"}}, "header.X-Campaign"),
    ({"header": {"X-Foo: bar\r\nA1 LOGOUT": ""}}, "header.X-Foo: bar\r\nA1 LOGOUT"),
    ({"keyword": "foo ALL"}, "keyword"),
    ({"keyword": "$Important) OR (ALL"}, "keyword"),
    ({"unKeyword": "x\r\nA1 LOGOUT"}, "unKeyword"),
    ({"uid": "1:* ALL"}, "uid"),
    ({"uid": "1:5)"}, "uid"),
    ({"since": "2024-03-01 ALL"}, "since"),
    ({"larger": "0 ALL"}, "larger"),
    ({"subject": "a\ud800"}, "subject"),
    ({"subjekt": "x"}, "subjekt"),
])
def test_it_refuses_what_cannot_be_sent_before_sending_anything(mailbox, criteria, path):
    client, _ = mailbox
    tag_before = client._imap.tagnum
    with pytest.raises(InvalidSearch) as caught:
        uid_search(client, criteria)
    assert caught.value.path == path
    assert client._imap.tagnum == tag_before
    assert_usable(mailbox)


def test_it_reports_a_server_refusal_and_stays_usable(mailbox, monkeypatch):
    """A NO/BAD is an imaplib error and the command is over; the next one works."""
    client, _ = mailbox
    monkeypatch.setattr(search, "compile_search", lambda criteria, *rest: ["UID", "x:y"])
    with pytest.raises(imaplib.IMAP4.error, match="UID SEARCH failed: BAD"):
        uid_search(client, {})
    monkeypatch.undo()
    assert not client._imap.tagged_commands
    assert_usable(mailbox)


def test_it_stops_when_the_server_refuses_before_the_literal(mailbox):
    """With synchronizing literals the server may answer the announcement with a tagged
    NO/BAD instead of "+": the literal is not sent and the connection goes on."""
    client, _ = mailbox
    imap = client._imap
    tag = imap._new_tag()
    imap.send(tag + b" XBOGUS {3}\r\n")  # Dovecot refuses an unknown command at once
    with pytest.raises(imaplib.IMAP4.error, match="failed: BAD"):
        search._await_continuation(imap, tag)
    imap.tagged_commands.pop(tag, None)
    assert_usable(mailbox)


def test_it_raises_abort_when_the_server_hangs_up_instead_of_continuing(mailbox):
    client, _ = mailbox
    imap = client._imap
    tag = imap._new_tag()
    imap.send(tag + b" UID SEARCH SUBJECT {99999999}\r\n")  # over Dovecot's 64 KiB
    with pytest.raises(imaplib.IMAP4.abort, match="Literal size too large"):
        search._await_continuation(imap, tag)
    imap.tagged_commands.pop(tag, None)


def test_it_sees_the_folder_as_it_is_now(mailbox, mail_user):
    """Messages appended by another session are found by the next search (EXISTS stashed)."""
    client, _ = mailbox
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Late arrival Ünïcödé")])
    client.noop()
    assert len(uid_search(client, {"subject": "ünïcödé"})) == 1
    assert len(uid_search(client, {})) == 9
