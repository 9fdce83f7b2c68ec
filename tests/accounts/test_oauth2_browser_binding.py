"""A sign-in started on the hosted connect page finishes only in the browser that started it.

Otherwise whoever holds a connect link (a customer's user, given a link for their own account)
could start the sign-in, send the provider's page on to someone else, and, once that person
clicks "Allow", have their mailbox added under the link's account (RFC 6749 section 10.12:
the state must be bound to the user agent). Driven against the loopback provider and Dovecot,
with two Django test clients as two browsers."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import EmailAccount
from tests.accounts.oauth2_helpers import create_app, local, make_link, provider_sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("allow_http")]


def _start(browser: Client, link: str) -> str:
    """Open the link and press "Sign in with ..."; the provider's sign-in page."""
    page = browser.get(local(link))
    assert page.status_code == 200, page.content
    href = re.search(r'id="sign-in"[^>]*href="([^"]+)"', page.content.decode())
    assert href, page.content
    start = browser.get(href.group(1).replace("&amp;", "&"))
    assert start.status_code == 302, start.content
    return start["Location"]


def test_a_sign_in_started_in_one_browser_cannot_finish_in_another(
        alice, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, account="attackers", type=app)
    attacker, victim = Client(), Client()

    provider_page = _start(attacker, link)
    callback = provider_sign_in(provider_page)  # the victim signs in and allows
    answer = victim.get(local(callback))

    assert answer.status_code == 400
    assert "another browser" in answer.content.decode()
    assert not EmailAccount.objects.filter(tenant=alice.tenant).exists()


def test_the_browser_that_started_it_finishes_it_and_the_link_still_works_there(
        alice, provider, oauth_dovecot, oauth_user):
    app = create_app(alice, provider, oauth_dovecot)
    link = make_link(alice, account="mine", type=app)
    other, own = Client(), Client()
    refused = other.get(local(provider_sign_in(_start(own, link))))
    assert refused.status_code == 400

    done = own.get(local(provider_sign_in(_start(own, link))))

    assert done.status_code == 302, done.content
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="mine")
    assert account.email == oauth_user.username
