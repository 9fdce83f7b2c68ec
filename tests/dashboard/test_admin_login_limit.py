"""``/admin/login/`` is limited like ``/login``: the same counters (per address and per client,
in Redis), so neither page gives a guesser more tries than the other."""

from __future__ import annotations

import pytest

from accounts.models import User
from accounts.web import login_limit

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"
TOO_MANY = b"Too many failed sign-in attempts"


def admin_login(client, email, password, address="127.0.0.1"):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password},
                       REMOTE_ADDR=address)


@pytest.fixture
def operator(db):
    return User.objects.create_superuser(email="ops@example.test", password=PASSWORD)


def test_failed_admin_sign_ins_are_limited_per_address(client, operator):
    for _ in range(login_limit.MAX_PER_EMAIL):
        response = admin_login(client, operator.email, "wrong")
        assert response.status_code == 200
        assert TOO_MANY not in response.content
    blocked = admin_login(client, operator.email, PASSWORD)
    assert blocked.status_code == 200
    assert TOO_MANY in blocked.content
    assert "_auth_user_id" not in client.session
    # The dashboard's sign-in shares the count: no fresh tries there either.
    dashboard = client.post("/login", {"email": operator.email, "password": PASSWORD})
    assert TOO_MANY in dashboard.content
    assert "_auth_user_id" not in client.session


def test_failures_on_the_dashboard_sign_in_count_on_the_admins(client, operator):
    for _ in range(login_limit.MAX_PER_EMAIL):
        client.post("/login", {"email": operator.email, "password": "wrong"})
    response = admin_login(client, operator.email, PASSWORD)
    assert TOO_MANY in response.content
    assert "_auth_user_id" not in client.session


def test_failed_admin_sign_ins_are_limited_per_client(client, operator):
    for number in range(login_limit.MAX_PER_IP):
        admin_login(client, f"guess{number}@example.test", "wrong", address="198.51.100.7")
    blocked = admin_login(client, operator.email, PASSWORD, address="198.51.100.7")
    assert TOO_MANY in blocked.content
    assert "_auth_user_id" not in client.session
    # Another client is not held back by this one's failures.
    response = admin_login(client, operator.email, PASSWORD, address="198.51.100.8")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_successful_admin_sign_in_forgives_the_address(client, operator):
    for _ in range(login_limit.MAX_PER_EMAIL - 1):
        admin_login(client, operator.email, "wrong")
    assert admin_login(client, operator.email, PASSWORD).status_code == 302
    client.logout()
    admin_login(client, operator.email, "wrong")
    assert admin_login(client, operator.email, PASSWORD).status_code == 302
