"""A change and a delete of the same thing at once: the delete wins or waits, a deleted thing is
never brought back, and neither request answers 500.

Each change is first proven on a stale object (read, then deleted by someone else, then
changed: the moment a race opens), then raced for real through the ASGI application, many
times over, asserting what must hold whichever request goes first. Before the fixes a `save()`
re-inserted a deleted webhook or OAuth2 app, a second delete recorded `accountDeleted` again,
and the other races answered 500."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest

from accounts import services
from accounts.errors import AccountNotFound, OAuth2AppNotFound
from accounts.models import ApiToken, EmailAccount, OAuth2App
from accounts.oauth2 import registered_apps
from accounts.tokens import hash_token
from mailboxes import outbox
from tests import asgi_calls
from tests.base import account_payload
from webhooks import account_webhooks, delivery_state, events, subscriptions
from webhooks.errors import DeliveryNotFound, WebhookNotFound
from webhooks.models import Delivery, Event, WebhookSubscription

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 15


def _at_once(token: str, requests: list[tuple[str, str, dict | None]]) -> list[int]:
    """The statuses of ``(method, path, body)`` requests sent together."""
    from emailapi.asgi import application

    headers = [(b"authorization", f"Bearer {token}".encode()),
               (b"content-type", b"application/json")]

    async def main():
        return await asyncio.gather(*[
            asgi_calls.call(application, method, path, "",
                            json.dumps(body).encode() if body is not None else b"", headers)
            for method, path, body in requests])

    return [status for status, _headers, _body in asgi_calls.run(main)]


@pytest.fixture
def hooks_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def _webhook(alice) -> WebhookSubscription:
    answer = alice.client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["*"]},
                               format="json")
    return WebhookSubscription.objects.get(pk=answer.json()["id"])


# --- a stale object: the moment a race opens ------------------------------------------------


def test_a_deleted_webhook_is_not_brought_back_by_a_change(alice, hooks_allowed):
    stale = _webhook(alice)
    WebhookSubscription.objects.filter(pk=stale.pk).delete()
    for change in (lambda: subscriptions.update(stale, {"url": "http://127.0.0.1:9/other"}),
                   lambda: subscriptions.rotate_secret(stale),
                   lambda: subscriptions.set_secret(stale, "s")):
        with pytest.raises(WebhookNotFound):
            change()
    assert not WebhookSubscription.objects.filter(pk=stale.pk).exists()


def test_a_deleted_oauth2_app_is_not_brought_back_by_a_change(alice):
    alice.client.post("/v1/oauth2", {"app": "a", "provider": "gmail", "name": "x",
                                     "clientId": "id", "clientSecret": "s3cr3t-value"},
                      format="json")
    stale = OAuth2App.objects.get(app_id="a")
    OAuth2App.objects.filter(pk=stale.pk).delete()
    with pytest.raises(OAuth2AppNotFound):
        registered_apps.update_app(stale, {"name": "renamed"})
    assert not OAuth2App.objects.filter(app_id="a").exists()


def test_a_retry_of_a_delivery_deleted_with_its_webhook_is_not_found(alice, hooks_allowed):
    hook = _webhook(alice)
    read_before_the_delete = Delivery(pk=uuid.uuid4(), subscription=hook)
    WebhookSubscription.objects.filter(pk=hook.pk).delete()
    with pytest.raises(DeliveryNotFound):
        delivery_state.retry(read_before_the_delete)


def test_a_deleted_account_is_not_changed_sent_from_or_given_a_webhook(alice, hooks_allowed):
    alice.client.post("/v1/account", account_payload(), format="json")
    stale = EmailAccount.objects.get(account_id="sales")
    EmailAccount.objects.filter(pk=stale.pk).delete()
    with pytest.raises(AccountNotFound):
        services.update_account(stale, {"name": "renamed"})
    stale.webhooks = "http://127.0.0.1:9/x"
    with pytest.raises(AccountNotFound):
        account_webhooks.follow_account_webhook(stale)
    with pytest.raises(AccountNotFound):
        outbox.submit(stale, raw=b"Subject: x\r\n\r\nx\r\n", envelope={}, message_id="<x@x>",
                      subject="x")
    assert WebhookSubscription.objects.count() == 0


def test_a_second_delete_is_not_found_and_records_nothing(alice):
    alice.client.post("/v1/account", account_payload(), format="json")
    first, second = (EmailAccount.objects.get(account_id="sales") for _ in range(2))
    services.delete_account(first)
    with pytest.raises(AccountNotFound):
        services.delete_account(second)
    assert Event.objects.filter(event=events.ACCOUNT_DELETED).count() == 1


def test_a_second_revocation_of_a_token_is_not_found(alice):
    _, raw = services.issue_token(alice.tenant, "spare", ["api"])
    first, second = (ApiToken.objects.get(token_hash=hash_token(raw)) for _ in range(2))
    assert services.revoke_token(first) is True
    assert services.revoke_token(second) is False


# --- the same races for real ----------------------------------------------------------------


def test_webhook_changes_racing_its_delete(alice, hooks_allowed):
    statuses = Counter()
    for _ in range(ROUNDS):
        hook = _webhook(alice)
        path = f"/v1/webhooks/{hook.pk}"
        answers = _at_once(alice.token, [
            ("DELETE", path, None), ("PUT", path, {"url": "http://127.0.0.1:9/h2"}),
            ("POST", f"{path}/rotate-secret", None), ("DELETE", path, None)])
        statuses.update(answers)
        assert sorted([answers[0], answers[3]]) == [200, 404]  # one delete, once
        assert not WebhookSubscription.objects.filter(pk=hook.pk).exists()
    assert set(statuses) <= {200, 404}, statuses


def test_oauth2_app_changes_racing_its_delete(alice):
    statuses = Counter()
    for n in range(ROUNDS):
        alice.client.post("/v1/oauth2", {"app": f"a{n}", "provider": "gmail", "name": "x",
                                         "clientId": "id", "clientSecret": "s3cr3t-value"},
                          format="json")
        answers = _at_once(alice.token, [("DELETE", f"/v1/oauth2/a{n}", None),
                                         ("PUT", f"/v1/oauth2/a{n}", {"name": "renamed"}),
                                         ("DELETE", f"/v1/oauth2/a{n}", None)])
        statuses.update(answers)
        assert sorted([answers[0], answers[2]]) == [200, 404]  # one delete, once
        assert not OAuth2App.objects.filter(app_id=f"a{n}").exists()
    assert set(statuses) <= {200, 404}, statuses


def test_token_revocations_racing(alice):
    for n in range(ROUNDS):
        row, _raw = services.issue_token(alice.tenant, f"spare{n}", ["api"])
        path = f"/v1/token/{row.token_hash}"
        answers = _at_once(alice.token, [("DELETE", path, None), ("DELETE", path, None)])
        assert sorted(answers) == [200, 404]  # one revocation, once
        assert ApiToken.objects.get(pk=row.pk).revoked_at is not None


def test_account_changes_racing_its_delete(alice, hooks_allowed):
    statuses = Counter()
    for n in range(ROUNDS):
        alice.client.post("/v1/account", account_payload(f"r{n}"), format="json")
        answers = _at_once(alice.token, [
            ("DELETE", f"/v1/account/r{n}", None), ("DELETE", f"/v1/account/r{n}", None),
            ("PUT", f"/v1/account/r{n}", {"name": "renamed", "webhooks": "http://127.0.0.1:9/x"}),
            ("POST", "/v1/account", account_payload(f"r{n}", name="upserted"))])
        statuses.update(answers)
        assert sorted(answers[:2]) == [200, 404]  # one delete, once
    assert set(statuses) <= {200, 404}, statuses
    deleted = Counter(Event.objects.filter(event=events.ACCOUNT_DELETED)
                      .values_list("account_id", flat=True))
    assert [account for account, count in deleted.items() if count != 1] == []
    left = set(EmailAccount.objects.values_list("account_id", flat=True))
    orphans = [s.accounts for s in WebhookSubscription.objects.all()
               if not set(s.accounts) & left]
    assert orphans == []  # no subscription outlives the account it was made for
