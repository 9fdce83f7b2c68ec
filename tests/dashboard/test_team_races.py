"""Two owners changing each other at the same moment (real PostgreSQL, two request threads):
the organization keeps an owner. Each request checks "not the last owner" before it writes;
without a lock both checks saw two owners, both writes went through, and the organization
was left with nobody who could administer it.

The race is made certain, not likely: the test holds the two membership rows locked (its own
connection), so both requests count the owners and then wait at their write; it lets go once
both wait."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Membership, User
from tests.base import sessions_waiting_on_a_lock, side_connection, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery-staple"


class RowLocks:
    """Our transaction holding the row locks of ``memberships``."""

    def __init__(self, memberships):
        self.conn = side_connection("test-team-lock")
        self.conn.execute("SELECT 1 FROM accounts_membership WHERE id = ANY(%s) FOR UPDATE",
                          [[m.pk for m in memberships]])

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


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
    locks = RowLocks([ann, ben])
    answers: list[int] = []

    def post(client, other):
        try:
            answers.append(client.post(path.format(other.pk), data).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(clients[0], ben)),
               threading.Thread(target=post, args=(clients[1], ann))]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: sessions_waiting_on_a_lock() >= 2, timeout=10)
    finally:
        locks.release()
        for thread in threads:
            thread.join(timeout=60)
    return answers


def test_two_owners_demoting_each_other_leave_one_owner(alice):
    answers = each_changes_the_other(alice, "/dashboard/team/{}/role", {"role": "viewer"})
    assert sorted(answers) == [302, 403]  # the second finds its caller a viewer now
    assert Membership.objects.filter(tenant=alice.tenant, role="owner").count() == 1


def test_two_owners_removing_each_other_leave_one_owner(alice):
    answers = each_changes_the_other(alice, "/dashboard/team/{}/remove", {})
    assert sorted(answers) == [302, 404]  # the second finds its caller removed
    assert Membership.objects.filter(tenant=alice.tenant, role="owner").count() == 1
