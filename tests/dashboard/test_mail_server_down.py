"""The dashboard's own mail (confirmation links, invitations, plan requests) with its mail
server down (a loopback port where nothing listens): each page answers in words, saying what
was saved and what was not sent, never a 500 after the rows are written."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import plans
from accounts.models import Invitation, Membership, User
from tests.servers.net import find_free_port

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def mail_down(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", find_free_port()
    settings.EMAIL_TIMEOUT = 3
    settings.EMAILAPI_SALES_EMAIL = "sales@example.test"


@pytest.fixture
def owner(alice):
    user = User.objects.create_user(email="owner@alice.test", password=PASSWORD)
    Membership.objects.create(user=user, tenant=alice.tenant, role="owner")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_invitation_is_saved_and_says_its_mail_was_not_sent(owner, mail_down):
    answer = owner.post("/dashboard/team", {"email": "new@alice.test", "role": "viewer"})
    assert answer.status_code == 302
    assert Invitation.objects.filter(email="new@alice.test").exists()
    [said] = _said(answer)
    assert "could not be sent" in said
    assert "Traceback" not in said


def test_a_plan_request_that_cannot_be_mailed_says_so(owner, mail_down):
    answer = owner.post("/dashboard/settings/plan-request", {"plan": next(iter(plans.PLANS))})
    assert answer.status_code == 302
    [said] = _said(answer)
    assert said.startswith("The request could not be sent")


def test_a_signup_goes_through_and_says_its_confirmation_was_not_sent(mail_down):
    client = Client(raise_request_exception=False)
    answer = client.post("/signup", {"organization": "Newco", "email": "new@newco.test",
                                     "password": PASSWORD})
    assert answer.status_code == 302
    assert User.objects.filter(email="new@newco.test").exists()
    [said] = _said(answer)
    assert "could not send the confirmation link" in said
    again = client.post("/verify-email")
    assert again.status_code == 302
    assert _said(again)[-1].startswith("The confirmation link could not be sent")


def test_a_password_reset_with_the_mail_server_down_is_no_500(owner, mail_down):
    answer = Client(raise_request_exception=False).post("/password-reset",
                                                        {"email": "owner@alice.test"})
    assert answer.status_code < 500
