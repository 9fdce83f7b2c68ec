"""Two owners changing each other at the same moment (real PostgreSQL, two request threads):
the organization keeps an owner. Each request checks "not the last owner" before it writes;
without a lock both checks saw two owners, both writes went through, and the organization
was left with nobody who could administer it.

The race is made certain, not likely: the test holds the two membership rows locked (its own
connection), so both requests count the owners and then wait at their write; it lets go once
both wait."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Membership, User
from tests.base import queued_behind, side_connection

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery-staple"


def row_locks(memberships):
    """Our transaction holding the row locks of ``memberships`` (``queued_behind`` lets go)."""
    lock = side_connection("test-team-lock")
    lock.execute("SELECT 1 FROM accounts_membership WHERE id = ANY(%s) FOR UPDATE",
                 [[m.pk for m in memberships]])
    return lock


def owners(alice) -> list[Membership]:
    users = [User.objects.create_user(email=f"{name}@alice.test", password=PASSWORD)
             for name in ("ann", "ben")]
    return [Membership.objects.create(tenant=alice.tenant, user=user, role="owner")
            for user in users]


def each_changes_the_other(alice, path: str, data: dict) -> list[int]:
    """Ann and Ben post ``path`` (formatted with the other's membership id) at once, while
    their rows are locked; the status of each answer."""
    ann, ben = owners(alice)
    clients = []
    for me in (ann, ben):
        client = Client()
        client.force_login(me.user)
        clients.append(client)
    lock = row_locks([ann, ben])
    return queued_behind(lock, [
        lambda: clients[0].post(path.format(ben.pk), data).status_code,
        lambda: clients[1].post(path.format(ann.pk), data).status_code])


def test_two_owners_demoting_each_other_leave_one_owner(alice):
    answers = each_changes_the_other(alice, "/dashboard/team/{}/role", {"role": "viewer"})
    assert sorted(answers) == [302, 403]  # the second finds its caller a viewer now
    assert Membership.objects.filter(tenant=alice.tenant, role="owner").count() == 1


def test_two_owners_removing_each_other_leave_one_owner(alice):
    answers = each_changes_the_other(alice, "/dashboard/team/{}/remove", {})
    assert sorted(answers) == [302, 404]  # the second finds its caller removed
    assert Membership.objects.filter(tenant=alice.tenant, role="owner").count() == 1
