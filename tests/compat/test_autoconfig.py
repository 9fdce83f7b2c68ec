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
