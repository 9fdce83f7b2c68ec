"""The organization's proxy on the dashboard's settings page: the same setting as ``proxyUrl``
and ``proxyEnabled`` of ``POST /v1/settings``, checked by that route's rules, its password never
on a page, kept when the masked URL is saved unchanged."""

from __future__ import annotations

import pytest

from accounts import mail_proxy
from accounts.models import EmailAccount
from tests.base import account_payload
from tests.dashboard.test_usage_roles_and_times import member
from webhooks import engine_settings

pytestmark = pytest.mark.django_db

URL = "socks5://proxyuser:Pr0xy-s3cret@127.0.0.1:1080"


def save(client, url: str, enabled: bool = True):
    data = {"form": "proxy", "proxy_url": url}
    if enabled:
        data["proxy_enabled"] = "on"
    return client.post("/dashboard/settings", data)


def test_an_owner_sets_the_proxy_that_mailboxes_without_their_own_use(alice):
    assert alice.client.post("/v1/account", account_payload("plain"), format="json").status_code == 200
    assert alice.client.post("/v1/account", {**account_payload("own"), "proxy": "socks5://127.0.0.1:9"},
                             format="json").status_code == 200
    versions = dict(EmailAccount.objects.values_list("account_id", "config_version"))
    owner = member(alice.tenant)

    response = save(owner, URL)

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/settings#proxy"
    stored = engine_settings.read(alice.tenant, ["proxyUrl", "proxyEnabled"])
    assert stored == {"proxyUrl": "socks5://proxyuser:******@127.0.0.1:1080", "proxyEnabled": True}
    plain = EmailAccount.objects.get(account_id="plain")
    assert mail_proxy.connection_proxy(plain).password == "Pr0xy-s3cret"
    after = dict(EmailAccount.objects.values_list("account_id", "config_version"))
    assert after["plain"] == versions["plain"] + 1  # it connects again, through the proxy
    assert after["own"] == versions["own"]
    page = owner.get("/dashboard/settings").content.decode()
    assert "socks5://proxyuser:******@127.0.0.1:1080" in page
    assert "Pr0xy-s3cret" not in page


def test_the_masked_url_saved_unchanged_keeps_the_password_and_off_keeps_the_url(alice):
    owner = member(alice.tenant)
    assert save(owner, URL).status_code == 302

    masked = "socks5://proxyuser:******@127.0.0.1:1080"

    assert save(owner, masked, enabled=False).status_code == 302
    assert mail_proxy.tenant_proxy(alice.tenant.pk) is None  # off: no account goes through it
    assert engine_settings.read(alice.tenant, ["proxyUrl"]) == {"proxyUrl": masked}
    assert save(owner, masked).status_code == 302
    assert mail_proxy.tenant_proxy(alice.tenant.pk).password == "Pr0xy-s3cret"


@pytest.mark.parametrize("url, words", [
    ("ftp://127.0.0.1:21", "socks5"),
    ("socks5://proxyuser:******@127.0.0.2:1080", "password"),
])
def test_a_refused_proxy_is_shown_on_its_field_and_changes_nothing(alice, url, words):
    owner = member(alice.tenant)
    assert save(owner, URL).status_code == 302

    response = save(owner, url)

    assert response.status_code == 400
    errors = response.context["proxy_form"].errors["proxy_url"]
    assert words in " ".join(errors).lower()
    assert engine_settings.read(alice.tenant, ["proxyUrl"]) == {
        "proxyUrl": "socks5://proxyuser:******@127.0.0.1:1080"}
    assert "Pr0xy-s3cret" not in response.content.decode()


def test_a_viewer_reads_the_proxy_masked_and_cannot_change_it(alice):
    assert save(member(alice.tenant), URL).status_code == 302
    viewer = member(alice.tenant, "viewer")

    page = viewer.get("/dashboard/settings").content.decode()

    assert 'data-testid="proxy-form"' not in page
    assert "socks5://proxyuser:******@127.0.0.1:1080" in page
    assert "Pr0xy-s3cret" not in page
    assert save(viewer, "").status_code == 403
    assert mail_proxy.tenant_proxy(alice.tenant.pk).password == "Pr0xy-s3cret"


def test_the_organization_form_still_saves_the_name_alone(alice):
    owner = member(alice.tenant)
    assert save(owner, URL).status_code == 302

    response = owner.post("/dashboard/settings", {"form": "organization", "name": "Alice Two"})

    assert response.status_code == 302
    alice.tenant.refresh_from_db()
    assert alice.tenant.name == "Alice Two"
    assert engine_settings.read(alice.tenant, ["proxyEnabled"]) == {"proxyEnabled": True}
