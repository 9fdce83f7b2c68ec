"""EmailEngine's ``proxyUrl`` / ``proxyEnabled`` on ``/v1/settings``: kept per tenant, the
password masked in GET and sealed in the database, the mask written back keeping it only for
the same proxy, a malformed URL a 400 naming it that changes nothing. Where the proxy is used:
tests/mailboxes/test_tenant_proxy.py."""

from __future__ import annotations

import pytest

from accounts import mail_proxy
from webhooks.models import EngineSettings

pytestmark = pytest.mark.django_db
PASSWORD = "S3cret:p@ss"
URL = "socks5://me:S3cret%3Ap%40ss@proxy.example:1080"
SHOWN = "socks5://me:******@proxy.example:1080"


def _get(client) -> dict:
    return client.get("/v1/settings?proxyUrl=true&proxyEnabled=true").json()


def _set(client, **values):
    return client.post("/v1/settings", values, format="json")


def test_it_round_trips_with_the_password_masked_and_sealed(alice):
    assert _get(alice.client) == {"proxyUrl": None, "proxyEnabled": False}

    response = _set(alice.client, proxyUrl=URL, proxyEnabled=True)

    assert response.json() == {"updated": ["proxyUrl", "proxyEnabled"]}
    assert _get(alice.client) == {"proxyUrl": SHOWN, "proxyEnabled": True}
    assert PASSWORD not in alice.client.get("/v1/settings").content.decode()
    row = EngineSettings.objects.values().get(tenant=alice.tenant)
    assert "S3cret" not in str(row)
    assert "p%40ss" not in str(row)
    assert row["proxy_url"] == SHOWN
    assert row["sealed_proxy_password"]
    assert mail_proxy.tenant_proxy(alice.tenant.pk).password == PASSWORD


def test_the_mask_written_back_keeps_the_password_for_the_same_proxy_only(alice):
    _set(alice.client, proxyUrl=URL, proxyEnabled=True)

    assert _set(alice.client, proxyUrl=SHOWN).status_code == 200
    assert mail_proxy.tenant_proxy(alice.tenant.pk).password == PASSWORD

    moved = _set(alice.client, proxyUrl="socks5://me:******@elsewhere.example:1080")
    assert moved.status_code == 400, moved.json()
    assert "proxyUrl" in moved.json()["details"]
    assert _get(alice.client)["proxyUrl"] == SHOWN


def test_empty_or_null_clears_it(alice):
    for cleared in ("", None):
        _set(alice.client, proxyUrl=URL, proxyEnabled=True)
        _set(alice.client, proxyUrl=cleared)
        assert _get(alice.client)["proxyUrl"] is None
        row = EngineSettings.objects.get(tenant=alice.tenant)
        assert (row.proxy_url, row.sealed_proxy_password) == ("", "")
        assert mail_proxy.tenant_proxy(alice.tenant.pk) is None


@pytest.mark.parametrize("value", ["https://proxy.example", "socks5://", "socks5://h:99999",
                                   "not a url", "socks5://h:1080/path", 5])
def test_a_malformed_proxy_url_is_400_naming_it_and_changes_nothing(alice, value):
    _set(alice.client, proxyUrl=URL, proxyEnabled=False)

    response = _set(alice.client, proxyUrl=value, proxyEnabled=True)

    assert response.status_code == 400, response.json()
    assert "proxyUrl" in response.json()["details"], response.json()
    assert _get(alice.client) == {"proxyUrl": SHOWN, "proxyEnabled": False}


def test_another_tenant_sees_none_of_it(alice, bob):
    _set(alice.client, proxyUrl=URL, proxyEnabled=True)

    assert _get(bob.client) == {"proxyUrl": None, "proxyEnabled": False}
    assert mail_proxy.tenant_proxy(bob.tenant.pk) is None
