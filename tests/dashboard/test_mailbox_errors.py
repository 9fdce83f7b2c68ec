"""A mailbox's last error on the dashboard (issue 18, item 1): in words, with its time and the
next try, server-rendered and in the live data, and gone once the mailbox works again; and
the message list's sender names and order (item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts import state as account_state
from accounts.models import EmailAccount, Membership, User
from mailboxes.models import Message
from tests.base import account_payload
from tests.servers import seed

pytestmark = pytest.mark.django_db

WORDS = "The server refused the login: Authentication failed."


def signed_in(client, tenant, role="owner") -> User:
    user = User.objects.create_user(email=f"{role}@alice.test", password="x" * 12,
                                    email_verified_at=datetime.now(UTC))
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client.force_login(user)
    return user


def failed(account: EmailAccount) -> None:
    account_state.set_state(account, "authenticationError", error={
        "error": WORDS, "code": "AuthenticationFailed", "nextRetry": "2031-05-06T07:08:09Z"})


def test_the_error_shows_in_words_with_its_time_and_next_try(client, alice):
    signed_in(client, alice.tenant)
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    account = EmailAccount.objects.get(account_id="sales")
    failed(account)
    page = client.get("/dashboard/mailboxes/sales").content.decode()
    assert WORDS in page
    assert f'<time datetime="{account.last_error["time"]}">' in page
    assert '<time datetime="2031-05-06T07:08:09Z">2031-05-06 07:08:09 UTC</time>' in page
    listing = client.get("/dashboard/mailboxes").content.decode()
    assert WORDS in listing
    live = client.get("/dashboard/live.json").json()["mailboxes"]["sales"]
    assert live == {"state": "authenticationError", "lastError": WORDS,
                    "lastErrorAt": account_state.shown_error(
                        account.state, account.last_error)["time"].isoformat(),
                    "nextRetry": "2031-05-06T07:08:09+00:00"}


def test_the_error_is_hidden_once_connected_again(client, alice):
    signed_in(client, alice.tenant, "viewer")
    alice.client.post("/v1/account", account_payload("sales"), format="json")
    account = EmailAccount.objects.get(account_id="sales")
    failed(account)
    # A lost connection leaves its error behind while the worker connects again.
    account_state.set_state(account, "connected")
    assert EmailAccount.objects.get(pk=account.pk).last_error["error"] == WORDS
    page = client.get("/dashboard/mailboxes/sales").content.decode()
    assert WORDS not in page
    assert client.get("/dashboard/live.json").json()["mailboxes"]["sales"]["lastError"] == ""


@pytest.fixture
def inbox_messages():
    return [seed.make_message(subject="Dated, from last year", date=datetime(2025, 6, 1, tzinfo=UTC),
                              from_="Valentina Jensen <VJ@Example.test>"),
            seed.make_message(subject="Dated, newest", from_="<plain@example.test>",
                              date=datetime(2026, 1, 2, tzinfo=UTC))]


@pytest.fixture
def before_sync():
    def undated(mail_user, uids):
        message = seed.build_email(subject="Undated, arrived in 2020")
        del message["Date"]
        client = mail_user.imap_client()
        try:
            client.append("INBOX", message.as_bytes(), msg_time=datetime(2020, 1, 1, tzinfo=UTC))
        finally:
            client.logout()
    return undated


def test_messages_show_the_senders_name_and_undated_ones_sort_by_arrival(client, synced):
    signed_in(client, synced.account.tenant)
    assert Message.objects.filter(email_account=synced.account, date__isnull=True).count() == 1
    page = client.get(f"/dashboard/mailboxes/{synced.account.account_id}")
    rows = [(m.subject, page.context["recent"][i]) for i, m in enumerate(page.context["recent"])]
    assert [subject for subject, _ in rows] == [
        "Dated, newest", "Dated, from last year", "Undated, arrived in 2020"]
    html = page.content.decode()
    assert "Valentina Jensen</td>" in html
    assert "valentina jensen" not in html
    assert "plain@example.test</td>" in html
    assert "2020-01-01 00:00:00 UTC" in html
