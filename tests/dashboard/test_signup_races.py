"""A sign-up sent twice at once (a double click on a slow link), against real PostgreSQL: the
first makes the organization and its owner, the second says the address is taken, as the
form says once the first has committed; never a 500. Each checked "email free" and "slug
free" before the other had committed, and the second's insert then hit a unique index.

The race is made certain: the test holds the membership table locked (its own connection),
so the first sign-up waits at its last insert with its tenant and user written but not
committed, and the second, having seen both names free, waits on the first's slug; the test
lets go once both wait."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Membership, Tenant, User
from tests.base import queued_behind, side_connection

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {"organization": "Acme Inc", "email": "owner@acme.test",
        "password": "correct-horse-battery-staple"}


def test_a_sign_up_sent_twice_at_once_makes_one_organization_and_no_500():
    lock = side_connection("test-signup-lock")
    lock.execute("LOCK TABLE accounts_membership IN EXCLUSIVE MODE")

    def sign_up() -> int:
        return Client(raise_request_exception=False).post("/signup", FORM).status_code

    answers = queued_behind(lock, [sign_up, sign_up])
    assert sorted(answers) == [302, 400]  # the second: "An account with this email..."
    assert Tenant.objects.count() == 1
    assert User.objects.filter(email=FORM["email"]).count() == 1
    assert Membership.objects.filter(role="owner").count() == 1
