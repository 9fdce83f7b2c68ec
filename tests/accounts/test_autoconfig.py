"""Settings discovery: the built-in provider table, MX host patterns, and the API route with
the MX lookup replaced by a dict (no DNS query leaves the machine)."""

from __future__ import annotations

import pytest

from accounts.api.connect import AutoconfigView
from accounts.oauth2 import discovery

NO_DNS = {}.get  # any domain: no MX records


def _mx(table: dict[str, list[str]]):
    return lambda domain: table.get(domain, [])


@pytest.mark.parametrize("email,provider,imap_host,smtp", [
    ("a@gmail.com", "gmail", "imap.gmail.com", ("smtp.gmail.com", 465, True)),
    ("a@Hotmail.com", "outlook", "outlook.office365.com", ("smtp.office365.com", 587, False)),
    ("a@live.com", "outlook", "outlook.office365.com", ("smtp.office365.com", 587, False)),
    ("a@yahoo.com", "yahoo", "imap.mail.yahoo.com", ("smtp.mail.yahoo.com", 465, True)),
    ("a@icloud.com", "icloud", "imap.mail.me.com", ("smtp.mail.me.com", 587, False)),
    ("a@fastmail.com", "fastmail", "imap.fastmail.com", ("smtp.fastmail.com", 465, True)),
    ("a@zoho.com", "zoho", "imap.zoho.com", ("smtp.zoho.com", 465, True)),
    ("a@aol.com", "aol", "imap.aol.com", ("smtp.aol.com", 465, True)),
    ("a@gmx.net", "gmx", "imap.gmx.net", ("mail.gmx.net", 587, False)),
])
def test_it_knows_the_common_providers_by_domain(email, provider, imap_host, smtp):
    found = discovery.discover(email, mx_lookup=NO_DNS)
    assert found["provider"] == provider
    assert found["source"] == "builtin"
    assert found["imap"] == {"host": imap_host, "port": 993, "secure": True}
    assert (found["smtp"]["host"], found["smtp"]["port"], found["smtp"]["secure"]) == smtp


def test_oauth2_providers_are_named_for_the_connect_link():
    assert discovery.discover("a@gmail.com", NO_DNS)["oauth2"] == "gmail"
    assert discovery.discover("a@outlook.com", NO_DNS)["oauth2"] == "outlook"
    assert "oauth2" not in discovery.discover("a@icloud.com", NO_DNS)


def test_hosted_domains_are_recognised_by_their_mx_hosts():
    mx = _mx({"acme.example": ["aspmx.l.google.com", "alt1.aspmx.l.google.com"],
              "corp.example": ["corp-example.mail.protection.outlook.com"],
              "own.example": ["mx.own.example"]})
    google = discovery.discover("ann@acme.example", mx)
    assert google["provider"] == "gmail"
    assert google["source"] == "mx"
    assert discovery.discover("bo@corp.example", mx)["provider"] == "outlook"
    assert discovery.discover("cy@own.example", mx) is None
    assert discovery.discover("dee@nothing.example", mx) is None


def test_a_suffix_match_needs_a_dot_boundary():
    assert discovery.by_mx(["evilgoogle.com"]) is None
    assert discovery.by_mx(["mx.google.com."])["provider"] == "gmail"


@pytest.mark.django_db
def test_the_route_answers_from_the_table_and_from_mx(alice, monkeypatch):
    monkeypatch.setattr(AutoconfigView, "mx_lookup",
                        staticmethod(_mx({"acme.example": ["aspmx.l.google.com"]})))
    body = alice.client.get("/v1/autoconfig?email=ann@acme.example").json()
    assert body == {"email": "ann@acme.example", "provider": "gmail", "source": "mx",
                    "_source": "mx", "oauth2": "gmail",
                    "imap": {"host": "imap.gmail.com", "port": 993, "secure": True,
                             "auth": {"user": "ann@acme.example"}},
                    "smtp": {"host": "smtp.gmail.com", "port": 465, "secure": True,
                             "auth": {"user": "ann@acme.example"}},
                    "appPassword": {"required": True, "provider": "Gmail",
                                    "instructions": "https://support.google.com/accounts/answer/185833"}}
    unknown = alice.client.get("/v1/autoconfig?email=x@unknown.example").json()
    assert unknown["imap"] is None
    assert unknown["provider"] is None
    bad = alice.client.get("/v1/autoconfig?email=not-an-address")
    assert bad.status_code == 400
    assert bad.json()["code"] == "InputValidationError"
    assert alice.client.get("/v1/autoconfig").status_code == 400
