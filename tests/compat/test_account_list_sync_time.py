"""EmailEngine's ``syncTime`` on the items of ``GET /v1/accounts``, as on
``GET /v1/account/{account}`` (``listing.sync_times``: one query for the page)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session, register

pytestmark = [pytest.mark.django_db]


def _listed(alice, account_id: str) -> dict:
    response = alice.client.get("/v1/accounts")
    assert response.status_code == 200, response.json()
    return next(item for item in response.json()["accounts"] if item["account"] == account_id)


def _sync(account) -> None:
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()


def test_an_account_never_synced_lists_sync_time_null(alice, mail_user):
    register(alice.tenant, mail_user)
    assert _listed(alice, "box")["syncTime"] is None


def test_a_synced_account_lists_when_its_index_caught_up(alice, mail_user):
    account = register(alice.tenant, mail_user)
    before = datetime.now(UTC).replace(microsecond=0)
    _sync(account)
    shown = _listed(alice, "box")["syncTime"]
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")) >= before


def test_the_list_and_the_account_show_the_same_sync_time(alice, mail_user):
    account = register(alice.tenant, mail_user)
    _sync(account)
    detail = alice.client.get("/v1/account/box").json()["syncTime"]
    assert _listed(alice, "box")["syncTime"] == detail
