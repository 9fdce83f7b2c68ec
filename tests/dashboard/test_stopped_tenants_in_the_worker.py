"""The IMAP worker (real Dovecot) stops serving a stopped tenant's mailboxes and takes them back
when the tenant is converted: state ``paused``, lease released, nothing deleted."""

from __future__ import annotations

import pytest

from accounts import plans
from accounts.models import EmailAccount
from mailboxes.models import Folder
from tests.dashboard.conftest import wait_for
from tests.mailboxes.helpers import register

pytestmark = pytest.mark.django_db(transaction=True)


def state_of(account) -> str:
    return EmailAccount.objects.get(pk=account.pk).state


def test_suspending_pauses_and_converting_reconnects(alice, bob, mail_user, dovecot,
                                                     imap_worker):
    account = register(alice.tenant, mail_user)
    other = register(bob.tenant, dovecot.add_user(), account_id="bobs")
    wait_for(lambda: state_of(account) == "connected" and state_of(other) == "connected")

    plans.suspend(alice.tenant, "test")
    wait_for(lambda: account.pk not in imap_worker.slots)
    wait_for(lambda: imap_worker.leases.holder(account.pk) is None)
    assert state_of(account) == "paused"
    assert state_of(other) == "connected"
    assert other.pk in imap_worker.slots
    assert Folder.objects.filter(email_account=account).exists()

    plans.convert(alice.tenant, "team")
    wait_for(lambda: state_of(account) == "connected")
    assert not EmailAccount.objects.get(pk=account.pk).paused
