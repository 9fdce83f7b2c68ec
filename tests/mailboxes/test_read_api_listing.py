"""The read API's index-backed routes against an account synced from real Dovecot:
``/mailboxes`` and ``/messages`` (pages, cursors, special-use paths, errors, tenancy)."""

from __future__ import annotations

import pytest

from mailboxes.models import Folder
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from tests.base import ON_SQLITE
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_mailboxes_lists_folders_with_counts(alice, synced):
    response = alice.client.get("/v1/account/box/mailboxes")
    assert response.status_code == 200
    boxes = {m["path"]: m for m in response.json()["mailboxes"]}
    assert response.json()["mailboxes"][0]["path"] == "INBOX"
    assert boxes["INBOX"]["messages"] == 6
    assert boxes["INBOX"]["specialUse"] == "\\Inbox"
    assert boxes["Sent"]["specialUse"] == "\\Sent"
    assert boxes["Sent"]["messages"] == 0
    assert boxes["INBOX"]["uidValidity"]
    assert boxes["INBOX"]["uidNext"] == max(synced.uids) + 1


def test_counters_true_asks_the_server(alice, synced, mail_user):
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="not yet indexed")])
    indexed = alice.client.get("/v1/account/box/mailboxes").json()["mailboxes"]
    live = alice.client.get("/v1/account/box/mailboxes?counters=true").json()["mailboxes"]
    assert indexed[0]["messages"] == 6
    assert live[0]["messages"] == 7


def test_messages_newest_first_with_envelope(alice, synced):
    uids = synced.uids
    body = alice.client.get("/v1/account/box/messages?path=INBOX").json()
    assert body["total"] == 6
    assert body["page"] == 0
    assert body["pages"] == 1
    assert [m["uid"] for m in body["messages"]] == sorted(uids, reverse=True)
    first = body["messages"][-1]
    assert first["from"]["address"]
    assert first["id"]
    assert first["path"] == "INBOX"
    assert isinstance(first["flags"], list)
    assert "unseen" in first
    subjects = {m["subject"] for m in body["messages"]}
    assert seed.UNICODE_SUBJECT in subjects
    with_files = next(m for m in body["messages"]
                      if m["messageId"] == seed.MESSAGE_IDS["attachments"])
    assert with_files["hasAttachments"] is True


def test_pages_and_page_size_bounds(alice, synced):
    uids = synced.uids
    newest = sorted(uids, reverse=True)
    page1 = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=4&page=1").json()
    assert [m["uid"] for m in page1["messages"]] == newest[4:]
    assert page1["pages"] == 2
    assert page1["page"] == 1
    beyond = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=4&page=9").json()
    assert beyond["messages"] == []
    assert beyond["total"] == 6
    for bad in ("pageSize=0", "pageSize=1001", "page=-1", "pageSize=x"):
        response = alice.client.get(f"/v1/account/box/messages?path=INBOX&{bad}")
        assert response.status_code == 400, bad
        assert response.json()["code"] == "InputValidationError"
    assert alice.client.get("/v1/account/box/messages").status_code == 400  # path required


def test_cursor_neither_repeats_nor_skips_while_mail_arrives_and_vanishes(
        alice, synced, mail_user):
    account, session, uids = synced.account, synced.session, synced.uids
    newest = sorted(uids, reverse=True)
    first = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=2").json()
    assert [m["uid"] for m in first["messages"]] == newest[:2]
    # Between pages: a new message arrives and one not yet listed is expunged.
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="late arrival")])
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages([newest[3]])
        other.expunge()
    sync_folder(session, Folder.objects.get(email_account=account, path="INBOX"))
    seen = [m["uid"] for m in first["messages"]]
    cursor = first["nextPageCursor"]
    while cursor:
        page = alice.client.get(
            f"/v1/account/box/messages?path=INBOX&pageSize=2&cursor={cursor}").json()
        seen += [m["uid"] for m in page["messages"]]
        cursor = page["nextPageCursor"]
    assert seen == [u for u in newest if u != newest[3]]


def test_bad_cursor_is_a_400(alice, synced):
    for cursor in ("garbage", "W10", "WzEsMiwzXQ"):
        response = alice.client.get(f"/v1/account/box/messages?path=INBOX&cursor={cursor}")
        assert response.status_code == 400
        assert response.json()["code"] == "InvalidCursor"
    inbox = alice.client.get("/v1/account/box/messages?path=INBOX&pageSize=1").json()
    other = alice.client.get(
        f"/v1/account/box/messages?path=Sent&cursor={inbox['nextPageCursor']}")
    assert other.status_code == 400


def test_special_use_path_and_empty_folder(alice, synced):
    body = alice.client.get("/v1/account/box/messages?path=%5CSent").json()
    assert body == {"total": 0, "page": 0, "pages": 1, "nextPageCursor": None,
                    "prevPageCursor": None, "messages": []}


def test_missing_folder_is_a_404_naming_it(alice, synced):
    response = alice.client.get("/v1/account/box/messages?path=Nope/Deeper")
    assert response.status_code == 404
    assert response.json()["emailapiCode"] == "MailboxNotFound"
    assert "Nope/Deeper" in response.json()["message"]


def test_another_tenants_account_is_a_404(alice, bob, outsider, synced):
    for url in ("/v1/account/box/mailboxes", "/v1/account/box/messages?path=INBOX"):
        response = bob.client.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "AccountNotFound"
    # The outsider's own account is "box" too: it lists its own mailbox only.
    listed = outsider.client.get("/v1/account/box/messages?path=INBOX").json()
    assert [m["subject"] for m in listed["messages"]] == ["Outsider's own"]
    boxes = {m["path"]: m for m in outsider.client.get("/v1/account/box/mailboxes").json()[
        "mailboxes"]}
    assert boxes["INBOX"]["messages"] == 1


@pytest.mark.skipif(ON_SQLITE, reason="indexing 10,000 messages takes SQLite ~40 s; the "
                    "paging SQL is the one the other listing tests run")
def test_a_10000_message_folder_pages_to_the_right_last_page(alice, dovecot):
    user = dovecot.add_user()
    with user.imap_client() as first_login:
        first_login.select_folder("INBOX")  # creates the Maildir
    for number in range(10_000):
        dovecot.deliver_to_maildir(user, seed.make_message(subject=f"bulk {number:05d}"))
    account = register(alice.tenant, user, "bulk")
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()
    last = alice.client.get("/v1/account/bulk/messages?path=INBOX&pageSize=1000&page=9").json()
    assert last["total"] == 10_000
    assert last["pages"] == 10
    assert len(last["messages"]) == 1000
    uids = [m["uid"] for m in last["messages"]]
    assert uids == sorted(uids, reverse=True)
    assert uids[-1] == 1
    odd = alice.client.get("/v1/account/bulk/messages?path=INBOX&pageSize=3&page=3333").json()
    assert [m["uid"] for m in odd["messages"]] == [1]
    assert odd["pages"] == 3334
    assert alice.client.get("/v1/account/bulk/messages?path=INBOX&pageSize=1000&page=10") \
        .json()["messages"] == []
    walked, cursor = [], None
    while True:
        url = "/v1/account/bulk/messages?path=INBOX&pageSize=1000"
        page = alice.client.get(url + (f"&cursor={cursor}" if cursor else "")).json()
        walked += [m["uid"] for m in page["messages"]]
        cursor = page["nextPageCursor"]
        if not cursor:
            break
    assert len(walked) == len(set(walked)) == 10_000


def test_the_one_query_page_equals_the_ordinary_path(alice, synced, mail_user):
    """``tenant_page`` (one raw query) must answer exactly what ``page_of`` (the ORM) does,
    for offsets, cursors, INBOX in any case and special-use paths."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailboxes import listing

    seed.seed_mailbox(mail_user, folder="Sent", messages=[seed.make_message(subject="sent")])
    sync_account(synced.session, synced.account)
    tenant = alice.tenant
    first = listing.tenant_page(tenant, "box", "INBOX", 0, 2, None)
    cases = [("INBOX", 0, 2, None), ("inbox", 1, 2, None), ("INBOX", 0, 4, None),
             ("INBOX", 0, 2, first["nextPageCursor"]), ("\\Sent", 0, 5, None), ("Sent", 0, 1, None)]
    for path, page, size, cursor in cases:
        with CaptureQueriesContext(connection) as queries:
            fast = listing.tenant_page(tenant, "box", path, page, size, cursor)
        assert len(queries) == 1, (path, [q["sql"] for q in queries])
        slow = listing.page_of(listing.tenant_folder(tenant, "box", path), page, size, cursor)
        assert fast == slow, (path, page, size, cursor)
        assert fast["messages"], (path, page, size, cursor)
    other_folder = listing.tenant_page(tenant, "box", "Sent", 0, 1, None)
    assert other_folder["messages"][0]["path"] == "Sent"
    response = alice.client.get("/v1/account/box/messages",
                                {"path": "Sent", "cursor": first["nextPageCursor"]})
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidCursor"



def test_a_listing_and_a_folders_search_read_no_account_row_of_their_own(alice, synced,
                                                                         monkeypatch):
    """The send-only check (``MailboxAPIView.checked_by_service``) is the listing's own: a listing
    stays the one query that finds the folder with its page, and a search of one folder the
    query that finds it with its account (the account lookup, ``EmailAccount.of_tenant``, is
    a prepared statement of its own, counted here)."""
    from accounts.models import EmailAccount

    looked_up = []
    lookup = EmailAccount.of_tenant.__func__
    monkeypatch.setattr(EmailAccount, "of_tenant", classmethod(
        lambda cls, tenant, account_id: looked_up.append(account_id) or lookup(cls, tenant,
                                                                                account_id)))
    listed = alice.client.get("/v1/account/box/messages", {"path": "INBOX"})
    searched = alice.client.post("/v1/account/box/search?path=INBOX&source=index",
                                 {"search": {"seen": False}}, format="json")
    assert listed.status_code == 200, listed.json()
    assert searched.status_code == 200, searched.json()
    assert listed.json()["messages"]
    assert looked_up == []
    assert alice.client.get("/v1/account/box/mailboxes").status_code == 200
    assert looked_up == ["box"]  # the routes that check first still do


def test_a_mailbox_turned_send_only_lists_and_searches_nothing_stale(alice, synced):
    """``imap: false`` leaves its index behind: the listing's one query and a folder's search
    see the account has no IMAP now, and answer the send-only 409, not the stale messages."""
    from accounts.models import EmailAccount

    assert alice.client.get("/v1/account/box/messages", {"path": "INBOX"}).json()["messages"]
    EmailAccount.objects.filter(pk=synced.account.pk).update(imap=None)
    answers = [alice.client.get("/v1/account/box/messages", {"path": "INBOX"}),
               alice.client.get("/v1/account/box/messages", {"path": "Nowhere"}),
               alice.client.post("/v1/account/box/search?path=INBOX&source=index",
                                 {"search": {"seen": False}}, format="json")]
    assert [answer.status_code for answer in answers] == [409, 409, 409]
    assert {answer.json()["emailapiCode"] for answer in answers} == {"SendOnlyAccount"}
