"""Search (IMAP and index) and threads through the API, against an account synced from
real Dovecot: criteria, paging, injection attempts, errors and tenancy."""

from __future__ import annotations

import pytest

from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

INJECTIONS = ['x"\r\nA1 DELETE INBOX\r\n', "a) (ALL", "{5}\r\nhello", "*", "\\\"", "%",
              'BODY "x" OR ALL', "a\nb"]


@pytest.fixture
def inbox_messages():
    return seed.build_named_messages()


@pytest.fixture
def before_sync():
    def flag_and_file(mail_user, uids):
        uid = dict(zip(seed.build_named_messages(), uids, strict=True))
        with mail_user.imap_client() as other:
            other.select_folder("INBOX")
            other.add_flags([uid["plain"], uid["reply"]], [b"\\Seen"])
            other.add_flags([uid["alternative"]], [b"\\Flagged"])
        seed.seed_mailbox(mail_user, folder="Archive",
                          messages=[seed.make_message(subject="Archived invoice")])
    return flag_and_file


def uids_of(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [m["uid"] for m in response.json()["messages"]]


def test_post_search_on_the_server(alice, synced):
    uids = synced.uid_of
    search = lambda criteria: alice.client.post(  # noqa: E731
        "/v1/account/box/search?path=INBOX", {"search": criteria}, format="json")
    assert uids_of(search({"subject": "Grüße"})) == [uids["unicode"]]
    assert uids_of(search({"body": "Rechnung"})) == [uids["attachments"]]
    assert uids_of(search({"from": "billing@example.test"})) == [uids["attachments"]]
    assert uids_of(search({"seen": True})) == sorted([uids["plain"], uids["reply"]], reverse=True)
    assert uids_of(search({"or": [{"flagged": True}, {"from": "bob@example.test"}]})) == \
        sorted([uids["alternative"], uids["reply"]], reverse=True)
    assert len(uids_of(search({"not": {"seen": True}}))) == 4
    assert len(uids_of(search({}))) == 6
    page = search({}).json()
    assert page["total"] == 6
    assert page["pages"] == 1


def test_get_search_with_bracket_parameters(alice, synced):
    uids = synced.uid_of
    response = alice.client.get("/v1/account/box/search", {
        "path": "INBOX", "search[seen]": "false", "search[flagged]": "true", "pageSize": "5"})
    assert uids_of(response) == [uids["alternative"]]
    response = alice.client.get("/v1/account/box/search", {
        "path": "INBOX", "search[or][0][subject]": "plain", "search[or][1][subject]": "HTML"})
    assert uids_of(response) == sorted([uids["plain"], uids["reply"], uids["alternative"]],
                                       reverse=True)


def test_injection_attempts_match_nothing_or_are_refused(alice, synced):
    for value in INJECTIONS:
        for key in ("subject", "body", "from"):
            response = alice.client.post("/v1/account/box/search?path=INBOX",
                                         {"search": {key: value}}, format="json")
            assert response.status_code in (200, 400), (key, value)
            if response.status_code == 200:
                assert response.json()["messages"] == [], (key, value)
    nul = alice.client.post("/v1/account/box/search?path=INBOX",
                            {"search": {"subject": "a\x00b"}}, format="json")
    assert nul.status_code == 400
    # Nothing was deleted or changed by any of it.
    assert alice.client.get("/v1/account/box/messages?path=INBOX").json()["total"] == 6
    assert len(uids_of(alice.client.post("/v1/account/box/search?path=INBOX",
                                         {"search": {}}, format="json"))) == 6


def test_bad_criteria_are_400_with_the_field(alice, synced):
    for criteria, field in (({"seen": "yes"}, "search.seen"), ({"nope": 1}, "search.nope"),
                            ({"since": "yesterday"}, "search.since"),
                            ({"uid": "1:x"}, "search.uid"),
                            ({"or": [{"seen": True}]}, "search.or")):
        response = alice.client.post("/v1/account/box/search?path=INBOX", {"search": criteria},
                                     format="json")
        assert response.status_code == 400, criteria
        body = response.json()
        assert body["code"] == "InputValidationError", body
        assert field in body["details"], body
    assert alice.client.post("/v1/account/box/search", {"search": {}},
                             format="json").status_code == 400  # IMAP needs a path
    missing = alice.client.post("/v1/account/box/search?path=Nope", {"search": {}},
                                format="json")
    assert missing.status_code == 404
    assert missing.json()["emailapiCode"] == "MailboxNotFound"


def test_index_search_in_one_folder_or_all(alice, synced):
    uids = synced.uid_of
    url = "/v1/account/box/search?source=index"
    inbox = alice.client.post(url + "&path=INBOX", {"search": {"subject": "RECHNUNG"}},
                              format="json")
    assert uids_of(inbox) == [uids["attachments"]]
    everywhere = alice.client.post(url, {"search": {"subject": "invoice"}}, format="json")
    assert [m["path"] for m in everywhere.json()["messages"]] == ["Archive"]
    partial = alice.client.post(url, {"search": {"from": "BILLING@"}}, format="json")
    assert uids_of(partial) == [uids["attachments"]]
    flags = alice.client.post(url + "&path=INBOX", {"search": {"seen": False, "flagged": True}},
                              format="json")
    assert uids_of(flags) == [uids["alternative"]]
    body = alice.client.post(url, {"search": {"body": "x"}}, format="json")
    assert body.status_code == 400
    assert body.json()["code"] == "NotIndexable"


def test_threads_list_and_one_thread(alice, synced):
    uids = synced.uid_of
    listed = alice.client.get("/v1/account/box/threads").json()
    threads = {t["subject"]: t for t in listed["threads"]}
    plain = threads[seed.SUBJECTS["plain"]]
    assert plain["messages"] == 2
    addresses = {p["address"] for p in plain["participants"]}
    assert {"bob@example.test", "alice@example.test"} <= addresses
    one = alice.client.get(f"/v1/account/box/thread/{plain['threadId']}").json()
    assert [m["uid"] for m in one["messages"]] == [uids["plain"], uids["reply"]]
    assert alice.client.get("/v1/account/box/thread/nope").status_code == 404


def test_another_tenant_cannot_search_or_list_threads(bob, outsider, synced):
    assert bob.client.post("/v1/account/box/search?path=INBOX", {"search": {}},
                           format="json").status_code == 404
    assert bob.client.get("/v1/account/box/threads").status_code == 404
    # The outsider's own account is "box" too: it finds its own message, none of Alice's.
    found = outsider.client.post("/v1/account/box/search?path=INBOX", {"search": {}},
                                 format="json")
    assert found.status_code == 200
    assert [m["subject"] for m in found.json()["messages"]] == ["Outsider's own"]
    threads = outsider.client.get("/v1/account/box/threads")
    assert threads.status_code == 200
    assert threads.json()["total"] == 1


def test_a_search_right_after_another_sees_mail_that_arrived_between(alice, synced, mail_user):
    """The pooled connection is reused without a NOOP; the server's EXISTS at the end of the
    search shows the view changed, and the search runs again on the new view."""
    url = "/v1/account/box/search?path=INBOX"
    body = {"search": {"subject": "Freshly arrived"}}
    assert alice.client.post(url, body, format="json").json()["total"] == 0
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Freshly arrived")])
    assert alice.client.post(url, body, format="json").json()["total"] == 1


def test_index_search_takes_every_indexed_field(alice, synced):
    """``emailId``, ``threadId``, ``messageId`` and ``hasAttachments`` (the README's list),
    alone, inside ``or``/``not`` and in the GET form; each names the messages the listing
    shows with that value."""
    uids = synced.uid_of
    listed = {m["uid"]: m for m in alice.client.get(
        "/v1/account/box/messages?path=INBOX").json()["messages"]}
    target = listed[uids["attachments"]]
    url = "/v1/account/box/search?source=index"

    def search(criteria, query=""):
        return alice.client.post(url + query, {"search": criteria}, format="json")

    assert uids_of(search({"emailId": target["emailId"]})) == [target["uid"]]
    assert uids_of(search({"messageId": target["messageId"]})) == [target["uid"]]
    same_thread = sorted((m["uid"] for m in listed.values()
                          if m["threadId"] == listed[uids["reply"]]["threadId"]), reverse=True)
    assert len(same_thread) == 2
    assert uids_of(search({"threadId": listed[uids["reply"]]["threadId"]},
                          "&path=INBOX")) == same_thread
    assert uids_of(search({"hasAttachments": True}, "&path=INBOX")) == [target["uid"]]
    assert len(uids_of(search({"hasAttachments": False}, "&path=INBOX"))) == 5
    either = search({"or": [{"emailId": target["emailId"]},
                            {"messageId": listed[uids["plain"]]["messageId"]}]})
    assert uids_of(either) == sorted([target["uid"], uids["plain"]], reverse=True)
    assert len(uids_of(search({"not": {"emailId": target["emailId"]}}, "&path=INBOX"))) == 5
    got = alice.client.get("/v1/account/box/search", {
        "source": "index", "path": "INBOX", "search[hasAttachments]": "true",
        "search[threadId]": target["threadId"]})
    assert uids_of(got) == [target["uid"]]


@pytest.mark.parametrize("criteria,field", [
    ({"emailId": ""}, "search.emailId"),
    ({"threadId": 5}, "search.threadId"),
    ({"threadId": "t" * 257}, "search.threadId"),
    ({"messageId": "x" * 1000}, "search.messageId"),
    ({"hasAttachments": "maybe"}, "search.hasAttachments"),
])
def test_bad_index_field_values_are_400_with_the_field(alice, synced, criteria, field):
    response = alice.client.post("/v1/account/box/search?source=index", {"search": criteria},
                                 format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "InputValidationError", body
    assert field in body["details"], body
    assert body["details"][field] != ["Unknown field"]


@pytest.mark.parametrize("criteria,field", [
    ({"messageId": "<abc@example.test>"}, "search.messageId"),
    ({"hasAttachments": True}, "search.hasAttachments"),
    ({"or": [{"seen": True}, {"hasAttachments": False}]}, "search.or.1.hasAttachments"),
])
def test_index_only_fields_on_a_server_search_are_400_naming_source_index(
        alice, synced, criteria, field):
    """IMAP SEARCH has no such keys: refused before any IMAP command, never dropped."""
    response = alice.client.post("/v1/account/box/search?path=INBOX", {"search": criteria},
                                 format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "InputValidationError", body
    assert field in body["details"], body
    assert "source=index" in body["details"][field][0]


@pytest.mark.parametrize("key", [
    "search[[[", "search[from", "search[]]", "search[]", "search[from]x", "search[from][",
    "search[or][0]]", "search[[from]]", "search[from]]", "search[or][0]x[seen]",
    "search", "search]", "search][from",
])
def test_a_malformed_bracket_criterion_is_a_400(alice, synced, key):
    response = alice.client.get("/v1/account/box/search",
                                {"path": "INBOX", "source": "index", key: "1"})

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "InputValidationError", body
    assert body["statusCode"] == 400, body
    assert any(name.startswith("search") for name in body["details"]), body


def test_index_search_by_from_finds_the_sender_too_and_stores_each_address_once(
        alice, synced, mail_user):
    from mailboxes.models import Folder, Message
    from mailboxes.sync.folder import sync_folder

    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(
        subject="On behalf", from_="Boss <boss@example.test>",
        headers={"Sender": "Assistant <assistant@example.test>"})])
    inbox = Folder.objects.get(email_account=synced.account, path="INBOX")
    assert sync_folder(synced.session, inbox).new == 1
    url = "/v1/account/box/search?source=index&path=INBOX"
    for needle in ("boss@example", "ASSISTANT@"):
        found = alice.client.post(url, {"search": {"from": needle}}, format="json")
        assert uids_of(found) == [uid], needle
    # Without a Sender header the sender is a copy of From (as in a server's ENVELOPE): the
    # search text holds it once.
    plain = Message.objects.get(folder=inbox, uid=synced.uid_of["plain"])
    address = plain.from_address["address"].lower()
    assert plain.from_text.count(address) == 1, plain.from_text
