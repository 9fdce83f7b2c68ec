"""EmailEngine clients' search criteria and folder listing, against real Dovecot.

Requests are sent as EmailEngine's documentation shows them (``POST /v1/account/{a}/search?path=``
with a ``{"search": {...}}`` body, ``GET /v1/account/{a}/mailboxes?counters=true``); the answers
are checked for EmailEngine's field names, types and statuses.
"""

from __future__ import annotations

import pytest

from mailboxes.imap import search as imap_search
from tests.servers import seed

pytestmark = [pytest.mark.django_db]

SEARCH = "/v1/account/box/search?path=INBOX"


@pytest.fixture
def inbox_messages():
    return seed.build_named_messages()


@pytest.fixture
def before_sync():
    def flag(mail_user, uids):
        uid = dict(zip(seed.build_named_messages(), uids, strict=True))
        with mail_user.imap_client() as other:
            other.select_folder("INBOX")
            other.add_flags([uid["plain"], uid["reply"]], [b"\\Seen"])
    return flag


def post(client, criteria, url=SEARCH):
    return client.post(url, {"search": criteria}, format="json")


def uids_of(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return sorted(m["uid"] for m in response.json()["messages"])


def listed(synced) -> list[dict]:
    return synced.client.get("/v1/account/box/messages?path=INBOX").json()["messages"]


# --- unseen ---------------------------------------------------------------------------------


def test_unseen_true_finds_the_messages_without_seen(alice, synced):
    uids = synced.uid_of
    expected = sorted(uids[name] for name in ("unicode", "alternative", "attachments",
                                              "malformed"))

    assert uids_of(post(alice.client, {"unseen": True})) == expected


def test_unseen_false_finds_the_seen_ones(alice, synced):
    uids = synced.uid_of

    assert uids_of(post(alice.client, {"unseen": False})) == sorted([uids["plain"],
                                                                     uids["reply"]])


def test_unseen_in_a_get_search_query(alice, synced):
    response = alice.client.get("/v1/account/box/search",
                                {"path": "INBOX", "search[unseen]": "true"})

    assert len(uids_of(response)) == 4


def test_unseen_from_the_index(alice, synced):
    response = post(alice.client, {"unseen": True}, SEARCH + "&source=index")

    assert len(uids_of(response)) == 4


def test_unseen_must_be_a_boolean(alice, synced):
    response = post(alice.client, {"unseen": "sometimes"})

    assert response.status_code == 400
    assert "search.unseen" in response.json()["details"]


# --- seq ------------------------------------------------------------------------------------


def test_seq_is_a_sequence_number_range(alice, synced):
    uids = synced.uid_of

    assert uids_of(post(alice.client, {"seq": "1:2"})) == sorted([uids["plain"],
                                                                  uids["unicode"]])


def test_seq_with_a_star_reaches_the_last_message(alice, synced):
    assert uids_of(post(alice.client, {"seq": "*"})) == [synced.uid_of["malformed"]]


def test_seq_that_is_not_a_range_is_400(alice, synced):
    response = post(alice.client, {"seq": "1 OR ALL"})

    assert response.status_code == 400
    assert "search.seq" in response.json()["details"]


def test_seq_from_the_index_is_400_not_indexable(alice, synced):
    response = post(alice.client, {"seq": "1:2"}, SEARCH + "&source=index")

    assert response.status_code == 400
    assert response.json()["code"] == "NotIndexable"


# --- modseq ---------------------------------------------------------------------------------


def test_modseq_finds_messages_changed_since(alice, synced, mail_user):
    uids = synced.uid_of
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        top = max(m[b"MODSEQ"][0] for m in other.fetch(list(uids.values()),
                                                        ["MODSEQ"]).values())
        other.add_flags([uids["plain"]], [b"\\Flagged"])

    assert uids_of(post(alice.client, {"modseq": top + 1})) == [uids["plain"]]


def test_modseq_zero_matches_everything(alice, synced):
    assert len(uids_of(post(alice.client, {"modseq": 0}))) == 6


def test_modseq_from_the_index(alice, synced):
    response = post(alice.client, {"modseq": 0}, SEARCH + "&source=index")

    assert len(uids_of(response)) == 6


def test_modseq_must_be_a_non_negative_integer(alice, synced):
    response = post(alice.client, {"modseq": -1})

    assert response.status_code == 400
    assert "search.modseq" in response.json()["details"]


# --- emailId / threadId ---------------------------------------------------------------------


def test_email_id_from_a_listing_finds_that_message(alice, synced):
    target = next(m for m in listed(synced) if m["uid"] == synced.uid_of["alternative"])

    assert uids_of(post(alice.client, {"emailId": target["emailId"]})) == [target["uid"]]


def test_thread_id_from_a_listing_finds_the_thread(alice, synced):
    messages = listed(synced)
    reply = next(m for m in messages if m["uid"] == synced.uid_of["reply"])
    expected = sorted(m["uid"] for m in messages if m["threadId"] == reply["threadId"])

    assert uids_of(post(alice.client, {"threadId": reply["threadId"]})) == expected


def test_thread_id_inside_or_and_not(alice, synced):
    messages = listed(synced)
    reply = next(m for m in messages if m["uid"] == synced.uid_of["reply"])
    in_thread = {m["uid"] for m in messages if m["threadId"] == reply["threadId"]}
    criteria = {"not": {"threadId": reply["threadId"]}}

    assert set(uids_of(post(alice.client, criteria))) == {m["uid"] for m in messages} - in_thread


def test_an_unknown_email_id_finds_nothing(alice, synced):
    response = post(alice.client, {"emailId": "1278455344230334865"})

    assert uids_of(response) == []


def test_email_id_longer_than_emailengine_allows_is_400(alice, synced):
    response = post(alice.client, {"emailId": "x" * 257})

    assert response.status_code == 400
    assert "search.emailId" in response.json()["details"]


# --- gmailRaw -------------------------------------------------------------------------------


def test_gmail_raw_on_a_server_without_gmail_search_is_400_missing_server_extension(
        alice, synced):
    response = post(alice.client, {"gmailRaw": "has:attachment in:unread"})

    assert (response.status_code, response.json()["code"]) == (400, "MissingServerExtension")


def test_gmail_raw_refusal_names_the_criterion_and_the_extension(alice, synced):
    response = post(alice.client, {"gmailRaw": "has:attachment in:unread"})

    assert response.json()["details"] == {"criterion": "search.gmailRaw",
                                           "extension": "X-GM-EXT-1"}


def test_gmail_raw_is_not_searchable_in_the_index(alice, synced):
    response = post(alice.client, {"gmailRaw": "in:unread"}, SEARCH + "&source=index")

    assert response.status_code == 400
    assert response.json()["code"] == "NotIndexable"


def test_gmail_raw_compiles_to_x_gm_raw_where_the_server_offers_it():
    # The key Gmail's IMAP takes; sent only when the server advertises X-GM-EXT-1.
    args = imap_search.compile_search({"gmailRaw": "has:attachment in:unread"},
                                      {"X-GM-EXT-1", "IMAP4REV1"})

    assert args == ["X-GM-RAW", imap_search.String(b"has:attachment in:unread")]


def test_ids_compile_to_gmail_keys_on_gmail():
    args = imap_search.compile_search({"emailId": "1278455344230334865"}, {"X-GM-EXT-1"})

    assert args == ["X-GM-MSGID", "1278455344230334865"]


def test_ids_compile_to_objectid_keys_with_objectid():
    args = imap_search.compile_search({"threadId": "T8a2b"}, {"OBJECTID"})

    assert args == ["THREADID", "T8a2b"]


# --- GET /mailboxes -------------------------------------------------------------------------
# These use ``mailboxes_synced``: the same account with a few ordinary folders besides
# Dovecot's special-use ones (Sent, Drafts, Trash, Junk, Archive, configured as SPECIAL-USE).

MAILBOXES = "/v1/account/box/mailboxes"


@pytest.fixture
def mailboxes_synced(alice, mail_user, before_sync):
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import open_session, register

    seed.seed_mailbox(mail_user, messages=seed.build_messages())
    with mail_user.imap_client() as other:
        for path in ("zeta", "Projects", "Projects/2024", "alpha"):
            other.create_folder(path)
        other.select_folder("INBOX")
        other.add_flags([1, 2], [b"\\Seen"])
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    assert sync_account(session, account).complete
    yield account
    session.client.logout()


def mailboxes(client, **params) -> list[dict]:
    response = client.get(MAILBOXES, params)
    assert response.status_code == 200, response.json()
    return response.json()["mailboxes"]


def by_path(items: list[dict]) -> dict[str, dict]:
    return {item["path"]: item for item in items}


def test_mailboxes_come_in_emailengines_order(alice, mailboxes_synced):
    paths = [m["path"] for m in mailboxes(alice.client)]

    assert paths == ["INBOX", "Sent", "Drafts", "Archive", "Junk", "Trash", "alpha", "Projects",
                     "Projects/2024", "zeta"]


def test_order_path_keeps_the_inbox_then_path_order(alice, mailboxes_synced):
    paths = [m["path"] for m in mailboxes(alice.client, order="path")]

    assert paths == ["INBOX", "alpha", "Archive", "Drafts", "Junk", "Projects", "Projects/2024",
                     "Sent", "Trash", "zeta"]


def test_an_unknown_order_is_400(alice, mailboxes_synced):
    response = alice.client.get(MAILBOXES, {"order": "random"})

    assert response.status_code == 400


def test_every_mailbox_is_listed(alice, mailboxes_synced):
    assert {m["listed"] for m in mailboxes(alice.client)} == {True}


def test_no_inferiors_is_a_boolean_false_where_subfolders_are_allowed(alice, mailboxes_synced):
    assert {m["noInferiors"] for m in mailboxes(alice.client)} == {False}


def test_special_use_source_is_extension_for_the_servers_special_use(alice, mailboxes_synced):
    sent = by_path(mailboxes(alice.client))["Sent"]

    assert (sent["specialUse"], sent["specialUseSource"]) == ("\\Sent", "extension")


def test_special_use_source_of_inbox_is_name(alice, mailboxes_synced):
    inbox = by_path(mailboxes(alice.client))["INBOX"]

    assert (inbox["specialUse"], inbox["specialUseSource"]) == ("\\Inbox", "name")


def test_an_ordinary_folder_has_no_special_use_source(alice, mailboxes_synced):
    alpha = by_path(mailboxes(alice.client))["alpha"]

    assert (alpha["specialUse"], alpha["specialUseSource"]) == (None, None)


def test_counters_add_the_status_object(alice, mailboxes_synced):
    inbox = by_path(mailboxes(alice.client, counters="true"))["INBOX"]

    assert inbox["status"] == {"messages": 6, "unseen": 4}


def test_counters_status_of_an_empty_folder(alice, mailboxes_synced):
    alpha = by_path(mailboxes(alice.client, counters="true"))["alpha"]

    assert alpha["status"] == {"messages": 0, "unseen": 0}


def test_without_counters_there_is_no_status(alice, mailboxes_synced):
    assert all("status" not in m for m in mailboxes(alice.client))


def test_mailbox_fields_have_emailengines_types(alice, mailboxes_synced):
    inbox = by_path(mailboxes(alice.client, counters="true"))["INBOX"]
    types = {key: type(inbox[key]).__name__ for key in (
        "path", "name", "delimiter", "listed", "subscribed", "noInferiors", "specialUse",
        "specialUseSource", "messages", "uidNext", "status")}

    assert types == {"path": "str", "name": "str", "delimiter": "str", "listed": "bool",
                     "subscribed": "bool", "noInferiors": "bool", "specialUse": "str",
                     "specialUseSource": "str", "messages": "int", "uidNext": "int",
                     "status": "dict"}


# --- Gmail (X-GM-EXT-1) against hoodiecrow ------------------------------------------------
# The IMAP search layer against a server that advertises X-GM-EXT-1 (tests/servers/hoodiecrow.py).


@pytest.fixture
def gmail():
    from tests.servers.hoodiecrow import Hoodiecrow

    server = Hoodiecrow([seed.make_message(subject="first"), seed.make_message(subject="second")],
                        flags={0: ["\\Seen"]}).start()
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    yield client
    client.logout()
    server.stop()


def test_gmail_server_advertises_x_gm_ext_1(gmail):
    assert gmail.has_capability("X-GM-EXT-1")


def test_email_id_on_gmail_searches_by_x_gm_msgid(gmail):
    ids = {uid: data[b"X-GM-MSGID"] for uid, data in gmail.fetch([1, 2], ["X-GM-MSGID"]).items()}
    second = max(ids)

    assert imap_search.uid_search(gmail, {"emailId": str(ids[second])}) == [second]


def test_email_id_on_gmail_goes_out_as_x_gm_msgid(gmail, imap_commands):
    imap_search.uid_search(gmail, {"emailId": "1278455344230334866"})

    assert b"UID SEARCH X-GM-MSGID 1278455344230334866\r\n" in imap_commands[-1]


def test_a_non_numeric_email_id_on_gmail_matches_nothing(gmail):
    assert imap_search.uid_search(gmail, {"emailId": "not-a-gmail-id"}) == []


def test_unseen_on_gmail(gmail):
    assert imap_search.uid_search(gmail, {"unseen": True}) == [2]


def test_gmail_raw_goes_to_a_gmail_server_as_x_gm_raw(gmail, imap_commands):
    import imaplib

    # Hoodiecrow does not implement X-GM-RAW (Gmail does): it refuses the key, which shows
    # the search reached the server as Gmail's command.
    with pytest.raises(imaplib.IMAP4.error):
        imap_search.uid_search(gmail, {"gmailRaw": "has:attachment in:unread"})

    assert b'X-GM-RAW "has:attachment in:unread"' in imap_commands[-1]


def test_modseq_on_a_server_without_condstore_is_refused_before_sending():
    with pytest.raises(imap_search.InvalidSearch) as caught:
        imap_search.compile_search({"modseq": 5}, {"IMAP4REV1"})

    assert caught.value.path == "modseq"


def test_ids_without_server_support_become_the_uids_the_index_holds():
    args = imap_search.compile_search({"emailId": "f1ng3rpr1nt"}, {"IMAP4REV1"},
                                      lambda name, value: [7, 1, 2, 3])

    assert args == ["UID", "1:3,7"]


def test_ids_the_index_does_not_hold_match_nothing():
    args = imap_search.compile_search({"threadId": "t"}, {"IMAP4REV1"}, lambda name, value: [])

    assert args == ["NOT", "ALL"]


def test_a_search_the_server_refuses_is_a_clear_error_not_a_500(alice, synced, monkeypatch):
    # A criterion only some servers take (gmailRaw syntax Gmail cannot parse, say): here a
    # command Dovecot refuses with BAD stands for it.
    monkeypatch.setattr(imap_search, "compile_search", lambda criteria, *rest: ["UID", "x:y"])

    response = post(alice.client, {"seen": True})

    assert (response.status_code, response.json()["code"]) == (400, "SearchRefused")


def test_the_connection_serves_the_next_search_after_a_refusal(alice, synced, monkeypatch):
    real = imap_search.compile_search
    monkeypatch.setattr(imap_search, "compile_search", lambda criteria, *rest: ["UID", "x:y"])
    post(alice.client, {"seen": True})
    monkeypatch.setattr(imap_search, "compile_search", real)

    assert len(uids_of(post(alice.client, {"seen": True}))) == 2


def test_bulk_update_by_email_id_flags_that_message(alice, synced, mail_user):
    target = next(m for m in listed(synced) if m["uid"] == synced.uid_of["alternative"])

    response = alice.client.put("/v1/account/box/messages?path=INBOX", {
        "search": {"emailId": target["emailId"]},
        "update": {"flags": {"add": ["\\Flagged"]}}}, format="json")

    assert response.status_code == 200, response.json()
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert other.search(["FLAGGED"]) == [target["uid"]]
