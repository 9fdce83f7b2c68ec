"""The dashboard's "Connection log" of a mailbox (issue 18 item 13): owners and admins turn
the account's protocol log on and off; everyone of the tenant reads the redacted lines; another
tenant reaches nothing."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from mailboxes import connection_settings
from mailboxes.imap import client as imap
from tests.dashboard.test_pages import member
from tests.mailboxes.helpers import register

pytestmark = pytest.mark.django_db


def test_an_admin_turns_it_on_and_reads_redacted_lines(client, alice, mail_user):
    account = register(alice.tenant, mail_user)
    member(client, alice.tenant, "admin@alice.test", "admin")
    page = client.get(f"/dashboard/mailboxes/{account.account_id}")
    assert b'data-testid="connection-log-link"' in page.content
    page = client.get(f"/dashboard/mailboxes/{account.account_id}/log")
    assert page.status_code == 200
    assert b"Logging is off." in page.content
    version = account.config_version

    response = client.post(f"/dashboard/mailboxes/{account.account_id}/log", {"logs": "on"})
    assert response.status_code == 302
    account = EmailAccount.objects.get(pk=account.pk)
    assert account.logs is True
    assert account.config_version == version + 1  # the worker reconnects with the tap

    session = imap.connect(connection_settings.account_imap_settings(account))
    session.select_folder("INBOX")
    session.logout()
    html = client.get(f"/dashboard/mailboxes/{account.account_id}/log").content.decode()
    assert 'class="table-wrap"' in html
    assert " LOGIN ***" in html
    assert "SELECT" in html
    assert mail_user.password not in html

    client.post(f"/dashboard/mailboxes/{account.account_id}/log", {"logs": "off"})
    assert EmailAccount.objects.get(pk=account.pk).logs is False


def test_a_viewer_reads_but_cannot_switch_it(client, alice, mail_user):
    account = register(alice.tenant, mail_user)
    member(client, alice.tenant, "viewer@alice.test", "viewer")
    page = client.get(f"/dashboard/mailboxes/{account.account_id}/log")
    assert page.status_code == 200
    assert b"Turn logging on" not in page.content
    response = client.post(f"/dashboard/mailboxes/{account.account_id}/log", {"logs": "on"})
    assert response.status_code == 403
    assert EmailAccount.objects.get(pk=account.pk).logs is False


def test_another_tenants_mailbox_log_is_not_found(client, alice, bob, mail_user):
    account = register(alice.tenant, mail_user)
    member(client, bob.tenant, "admin@bob.test", "admin")
    assert client.get(f"/dashboard/mailboxes/{account.account_id}/log").status_code == 404
    response = client.post(f"/dashboard/mailboxes/{account.account_id}/log", {"logs": "on"})
    assert response.status_code == 404
    assert EmailAccount.objects.get(pk=account.pk).logs is False
