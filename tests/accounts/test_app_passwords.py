"""The app-password table of ``GET /v1/autoconfig`` (pure: no servers)."""

from __future__ import annotations

import pytest

from accounts.oauth2 import app_passwords, discovery


@pytest.mark.parametrize("domain", ["gmail.com", "icloud.com", "yahoo.com", "aol.com",
                                    "fastmail.com", "zoho.com"])
def test_every_provider_of_the_table_is_one_discovery_finds(domain):
    provider = discovery.by_domain(domain)["provider"]
    assert app_passwords.for_provider(provider) is not None


def test_every_entry_points_to_an_https_page():
    for entry in app_passwords.APP_PASSWORDS.values():
        assert entry["instructions"].startswith("https://"), entry


def test_a_copy_is_answered_so_callers_cannot_change_the_table():
    found = app_passwords.for_provider("icloud")
    found["required"] = False
    assert app_passwords.for_provider("icloud")["required"] is True


def test_no_provider_has_none():
    assert app_passwords.for_provider(None) is None
