"""Sends through a proxy (EmailEngine's ``proxy``): a submit's own, kept with the outbox entry
with its password sealed, or the account's. Real loopback proxies (tests/servers/proxies.py)
record the target each connection asked for; the recording SMTP server gets the message; the
events say which proxy was used, its password masked."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts import services
from mailboxes import sending
from mailboxes.models import OutboxEntry
from tests.mailboxes.helpers import events_of, with_password
from tests.mailboxes.sending_helpers import b64, raw_message, work_send_queue
from tests.servers.proxies import PROXIES, Request, Socks5Proxy

db = pytest.mark.django_db(transaction=True)
PASSWORD = "Pr0xy:p@ss"


def _submit(client, **fields):
    return client.post("/v1/account/box/submit", {"raw": b64(raw_message()), **fields},
                       format="json")


def _masked(proxy) -> str:
    """The proxy's URL with its login as shown: the password masked."""
    return f"{proxy.scheme}://proxyuser:******@127.0.0.1:{proxy.port}"


def _to(smtp_server, proxy) -> list[tuple]:
    """What ``proxy`` was asked for the SMTP server (the account's proxy carries its IMAP too)."""
    return [(r.host, r.port, r.user) for r in proxy.requests if r.port == smtp_server.port]


def _login(kind: str) -> tuple[str | None, str | None]:
    return ("proxyuser", PASSWORD) if kind != "socks4" else ("proxyuser", None)


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
@pytest.mark.parametrize("kind", sorted(PROXIES))
def test_a_submit_goes_through_its_proxy(alice, verified_account, smtp_server, kind):
    account = verified_account  # a send's own proxy: the password over verified TLS only
    user, password = _login(kind)
    with PROXIES[kind](user, password) as proxy:
        response = _submit(alice.client, proxy=proxy.url(user, password))
        assert response.status_code == 200, response.json()
        work_send_queue()

        [received] = smtp_server.wait_for_messages(1)
        assert b"Hello from the outbox" in received.data
        assert proxy.requests == [Request(smtp_server.host, smtp_server.port, user)]
    [sent] = events_of(account, "messageSent")
    shown = _masked(proxy) if password else proxy.url(user)
    assert sent.data["networkRouting"]["proxy"] == shown
    assert PASSWORD not in str(sent.data)


@db
def test_the_submits_password_is_kept_sealed_and_a_retry_uses_it(alice, verified_account,
                                                                  smtp_server):
    account = verified_account
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        smtp_server.refuse_next(1, "451 4.3.0 Try again later")
        with override_settings(SEND_RETRY_SCHEDULE=[0]):
            queue_id = _submit(alice.client, proxy=proxy.url("proxyuser", PASSWORD)).json()[
                "queueId"]
            entry = OutboxEntry.objects.get(queue_id=queue_id)
            assert entry.proxy == _masked(proxy)
            assert entry.sealed_proxy_password
            assert "p@ss" not in entry.sealed_proxy_password
            assert "Pr0xy" not in entry.sealed_proxy_password

            assert sending.send_entry(entry.pk) == "retry"
            assert sending.send_entry(entry.pk) == "sent"  # the entry read again from the database
        assert smtp_server.wait_for_messages(1)
        assert [request.user for request in proxy.requests] == ["proxyuser", "proxyuser"]
    [error] = events_of(account, "messageDeliveryError")
    assert error.data["networkRouting"]["proxy"] == _masked(proxy)
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@db
def test_a_proxy_that_refuses_the_login_fails_the_send_in_words(alice, account, smtp_server):
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        with override_settings(SEND_RETRY_SCHEDULE=[]):
            _submit(alice.client, proxy=proxy.url("proxyuser", "wrong"))
            work_send_queue()
        assert proxy.logins_refused == 1
    [failed] = events_of(account, "messageFailed")
    assert "The proxy refused the login" in failed.data["error"], failed.data
    assert smtp_server.messages == []


@db
@pytest.mark.parametrize("value", ["https://proxy.example.com", "socks5://", "socks5://h:99999",
                                   "not a url", "socks5://h:1080/path"])
def test_a_malformed_proxy_is_400_naming_it_and_queues_nothing(alice, account, value):
    response = _submit(alice.client, proxy=value)

    assert response.status_code == 400, response.json()
    assert "proxy" in response.json()["details"], response.json()
    assert not OutboxEntry.objects.exists()


@db
@override_settings(EMAILAPI_SMTP_LOCAL_ADDRESSES=[])
def test_the_accounts_proxy_carries_its_sends(alice, account, smtp_server, smtp_user):
    with Socks5Proxy("proxyuser", PASSWORD) as proxy:
        services.update_account(account, with_password(
            account, smtp_user.password, proxy=proxy.url("proxyuser", PASSWORD)))
        _submit(alice.client)
        work_send_queue()

        assert smtp_server.wait_for_messages(1)
        # (its IMAP connections too: the copy to Sent went through it, tests/mailboxes/test_imap_proxy.py)
        assert _to(smtp_server, proxy) == [(smtp_server.host, smtp_server.port, "proxyuser")]
    [sent] = events_of(account, "messageSent")
    assert sent.data["networkRouting"] == {"proxy": _masked(proxy)}


@db
def test_a_submits_proxy_overrides_the_accounts(alice, verified_account, smtp_server, smtp_user):
    account = verified_account
    with Socks5Proxy() as accounts, PROXIES["http"]() as asked:
        services.update_account(account, with_password(account, smtp_user.password,
                                                       proxy=accounts.url()))
        _submit(alice.client, proxy=asked.url())
        work_send_queue()

        assert smtp_server.wait_for_messages(1)
        assert (len(_to(smtp_server, asked)), _to(smtp_server, accounts)) == (1, [])
