"""EmailEngine's ``quota`` and ``syncTime`` on ``GET /v1/account/{account}``: the storage
quota asked of the mail server (a Dovecot with its quota plugin), ``false`` where it has none,
and the time the index last caught up (``mailboxes.quota``, ``listing.sync_time``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import EmailAccount
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db]

QUOTA_CONFIG = """
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = count:User quota
  quota_rule = *:storage=10M
  quota_vsizes = yes
}
"""


@pytest.fixture(scope="module")
def quota_dovecot():
    server = Dovecot(extra_config=QUOTA_CONFIG).start()
    yield server
    server.stop()


def _account(alice, user) -> dict:
    register(alice.tenant, user)
    response = alice.client.get("/v1/account/box", {"quota": "true"})
    assert response.status_code == 200, response.json()
    return response.json()


def test_the_quota_is_the_servers_in_bytes(alice, quota_dovecot):
    user = quota_dovecot.add_user()
    message = seed.make_message(subject="Weighed", body="x" * 50_000)
    seed.seed_mailbox(user, messages=[message])
    quota = _account(alice, user)["quota"]
    assert quota["limit"] == 10 * 1024 * 1024
    assert len(message) <= quota["usage"] < len(message) + 2048  # in units of 1024 octets
    assert quota["status"] == f"{round(quota['usage'] * 100 / quota['limit'])}%"


def test_a_server_without_quota_says_false(alice, mail_user):
    assert _account(alice, mail_user)["quota"] is False


def test_a_server_that_cannot_be_asked_says_false(alice, quota_dovecot):
    user = quota_dovecot.add_user()
    register(alice.tenant, user)
    EmailAccount.objects.filter(account_id="box").update(
        imap={**user.imap_settings(), "port": 1, "tls": {"rejectUnauthorized": False}})
    response = alice.client.get("/v1/account/box", {"quota": "true"})
    assert (response.status_code, response.json()["quota"]) == (200, False)


def test_quota_is_only_given_when_asked(alice, mail_user):
    register(alice.tenant, mail_user)
    assert "quota" not in alice.client.get("/v1/account/box").json()
    assert alice.client.get("/v1/account/box", {"quota": "maybe"}).status_code == 400


def test_sync_time_is_when_the_index_last_caught_up(alice, mail_user):
    account = register(alice.tenant, mail_user)
    assert alice.client.get("/v1/account/box").json()["syncTime"] is None
    before = datetime.now(UTC).replace(microsecond=0)
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()
    shown = alice.client.get("/v1/account/box").json()["syncTime"]
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")) >= before


def test_a_paused_account_is_not_asked(alice, quota_dovecot):
    """IMAP is off for it (``imap.disabled``): its server, which has a quota, is not asked."""
    user = quota_dovecot.add_user()
    register(alice.tenant, user)
    assert alice.client.put("/v1/account/box", {"imap": {"disabled": True}},
                            format="json").status_code == 200
    assert alice.client.get("/v1/account/box", {"quota": "true"}).json()["quota"] is False
