"""Which accounts some worker should hold, as a claim tick asks it: how many, and which of
the worker's own changed (``mailboxes.worker.eligible``). On PostgreSQL the database compares;
on SQLite Python does: both must give the same answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import EmailAccount, Tenant
from mailboxes.worker import eligible
from tests.mailboxes.helpers import register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite]


def _version(account) -> int:
    return EmailAccount.objects.get(pk=account.pk).config_version


def test_held_changes_names_what_left_and_what_has_new_settings(alice, bob, dovecot):
    kept, paused, deleted, updated, unknown, other = (
        register(alice.tenant, dovecot.add_user(), f"e{i}") for i in range(6))
    stopped = register(bob.tenant, dovecot.add_user(), "bobs")
    not_held = register(alice.tenant, dovecot.add_user(), "free")
    held = {a.pk: _version(a) for a in (kept, paused, deleted, updated, stopped, other)}
    held[unknown.pk] = 0  # its session has not read the row yet
    EmailAccount.objects.filter(pk=paused.pk).update(paused=True)
    EmailAccount.objects.filter(pk=deleted.pk).delete()
    EmailAccount.objects.filter(pk=updated.pk).update(config_version=held[updated.pk] + 1)
    EmailAccount.objects.filter(pk=unknown.pk).update(config_version=7)
    Tenant.objects.filter(pk=bob.tenant.pk).update(
        status=Tenant.Status.TRIAL, trial_ends_at=timezone.now() - timedelta(minutes=1))

    count, changes = eligible.held_changes(held)

    assert count == 5  # kept, updated, unknown, other, not_held
    assert changes == {paused.pk: None, deleted.pk: None, stopped.pk: None,
                       updated.pk: held[updated.pk] + 1}
    assert sorted(eligible.all_eligible()) == sorted(
        a.pk for a in (kept, updated, unknown, other, not_held))
    assert eligible.of_stopped_tenants([paused.pk, deleted.pk, stopped.pk]) == {stopped.pk}


def test_nothing_held_nothing_eligible(alice):
    assert eligible.held_changes({}) == (0, {})
    assert eligible.all_eligible() == []
    assert eligible.of_stopped_tenants([]) == set()
