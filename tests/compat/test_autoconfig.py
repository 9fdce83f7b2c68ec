"""EmailEngine's ``GET /v1/autoconfig`` answer: ``imap``/``smtp`` carry ``auth.user`` and the
source is also ``_source``, so a client that fills a new account from it finds the user name
where EmailEngine puts it (the MX lookup replaced by a table: no DNS query leaves the machine)."""

from __future__ import annotations

import pytest

from accounts.api.connect import AutoconfigView

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def no_dns(monkeypatch):
    monkeypatch.setattr(AutoconfigView, "mx_lookup", staticmethod(lambda domain: []))


def test_the_servers_carry_the_user_name(alice, no_dns):
    body = alice.client.get("/v1/autoconfig?email=ann@fastmail.com").json()
    assert (body["imap"]["auth"], body["smtp"]["auth"]) == (
        {"user": "ann@fastmail.com"}, {"user": "ann@fastmail.com"})


def test_the_source_is_also_emailengines_underscore_source(alice, no_dns):
    body = alice.client.get("/v1/autoconfig?email=ann@fastmail.com").json()
    assert (body["_source"], body["source"]) == ("builtin", "builtin")


def test_nothing_known_leaves_the_servers_null(alice, no_dns):
    body = alice.client.get("/v1/autoconfig?email=x@unknown.example").json()
    assert (body["imap"], body["smtp"], body["_source"]) == (None, None, None)


def test_an_account_filled_from_the_answer_registers(alice, no_dns):
    found = alice.client.get("/v1/autoconfig?email=ann@fastmail.com").json()
    imap = {**found["imap"], "auth": {**found["imap"]["auth"], "pass": "secret"}}
    response = alice.client.post("/v1/account", {"account": "ann", "imap": imap},
                                 format="json")
    assert response.status_code == 200, response.json()


def test_a_provider_that_wants_an_app_password_says_so_and_where(alice, no_dns):
    body = alice.client.get("/v1/autoconfig?email=ann@icloud.com").json()
    assert body["appPassword"]["required"] is True
    assert body["appPassword"]["provider"] == "iCloud"
    assert body["appPassword"]["instructions"].startswith("https://support.apple.com/")


def test_a_hosted_domain_gets_its_providers_app_password_rule(alice, monkeypatch):
    """A Google Workspace domain, found by its MX hosts, is Gmail's: the same rule."""
    monkeypatch.setattr(AutoconfigView, "mx_lookup",
                        staticmethod(lambda domain: ["aspmx.l.google.com"]))
    body = alice.client.get("/v1/autoconfig?email=ann@company.example").json()
    assert (body["_source"], body["appPassword"]["provider"]) == ("mx", "Gmail")


def test_zoho_wants_one_only_with_two_factor_sign_in(alice, no_dns):
    assert alice.client.get("/v1/autoconfig?email=ann@zoho.com").json()["appPassword"][
        "required"] is False


@pytest.mark.parametrize("email", ["ann@gmx.net", "ann@outlook.com", "x@unknown.example"])
def test_other_providers_and_unknown_domains_have_no_app_password(alice, no_dns, email):
    assert alice.client.get(f"/v1/autoconfig?email={email}").json()["appPassword"] is None
