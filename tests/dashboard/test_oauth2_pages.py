"""The OAuth2 app pages (``/dashboard/oauth2``) through Django's test client: they manage the
same apps as ``/v1/oauth2`` under the API's rules, the client secret goes in but never comes
out of any page, viewers only look, and another tenant's app is a 404."""

from __future__ import annotations

import pytest

from accounts.models import Membership, OAuth2App, Tenant, User
from accounts.oauth2 import registered_apps

pytestmark = pytest.mark.django_db

SECRET = "GOCSPX-dashboard-Secret-7781"
NEW_SECRET = "GOCSPX-rotated-Secret-9932"
GMAIL_FORM = {"provider": "gmail", "app": "google", "name": "Our Google app",
              "client_id": "123.apps.googleusercontent.com", "client_secret": SECRET}
GENERIC_FORM = {"provider": "generic", "app": "idp", "client_id": "c1", "client_secret": SECRET,
                "authorize_url": "https://idp.example/authorize",
                "token_url": "https://idp.example/token", "imap_host": "imap.idp.example",
                "imap_port": "993", "imap_secure": "on"}


def sign_in(client, tenant: Tenant, role: str, email: str = "someone@alice.test") -> User:
    user = User.objects.create_user(email=email, password="Correct-Horse-Battery-9")
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client.force_login(user)
    return user


def edit_form(**changes) -> dict:
    """The detail page's form as a browser would send it back for the Gmail app."""
    form = {k: v for k, v in GMAIL_FORM.items() if k not in ("app", "client_secret")}
    return {**form, "client_secret": "", **changes}


def test_it_adds_an_app_that_the_api_lists_and_never_shows_the_secret(client, alice, bob):
    sign_in(client, alice.tenant, "owner")
    empty = client.get("/dashboard/oauth2")
    assert empty.status_code == 200
    assert b"No OAuth2 apps yet" in empty.content
    assert b'name="client_secret"' in empty.content
    assert b'type="password"' in empty.content

    created = client.post("/dashboard/oauth2", {**GMAIL_FORM, "scopes": ""})
    assert created.status_code == 302
    assert created["Location"] == "/dashboard/oauth2/google"

    listed = alice.client.get("/v1/oauth2").json()
    assert listed["total"] == 1
    [app] = listed["apps"]
    assert app["id"] == "google"
    assert app["provider"] == "gmail"
    assert app["name"] == "Our Google app"
    assert app["clientId"] == GMAIL_FORM["client_id"]
    assert app["scopes"] == []
    assert app["redirectUrl"] == ""
    assert bob.client.get("/v1/oauth2").json()["total"] == 0

    row = OAuth2App.objects.get(tenant=alice.tenant, app_id="google")
    assert row.client_secret_sealed
    assert row.client_secret_sealed != SECRET
    assert SECRET not in row.client_secret_sealed
    assert registered_apps.client_secret(row) == SECRET

    for url in ("/dashboard/oauth2", "/dashboard/oauth2/google", "/dashboard/mailboxes"):
        page = client.get(url).content.decode()
        assert SECRET not in page, url
        assert row.client_secret_sealed not in page, url
    detail = client.get("/dashboard/oauth2/google").content.decode()
    assert "set (stored encrypted" in detail
    assert "https://mail.google.com/" in detail
    assert 'value="123.apps.googleusercontent.com"' in detail
    table = client.get("/dashboard/oauth2").content.decode()
    assert ">google</a>" in table
    assert "http://testserver/connect/oauth2/callback" in table


def test_a_generic_app_with_its_urls_scopes_and_servers(client, alice):
    sign_in(client, alice.tenant, "admin")  # admins manage apps too
    created = client.post("/dashboard/oauth2", {
        **GENERIC_FORM, "scopes": "mail.read, mail.send  openid",
        "redirect_url": "https://app.example/connect/oauth2/callback",
        "smtp_host": "smtp.idp.example", "smtp_port": "587"})
    assert created.status_code == 302, created.content.decode()[:3000]
    app = alice.client.get("/v1/oauth2/idp").json()
    assert app["scopes"] == ["mail.read", "mail.send", "openid"]
    assert app["tokenUrl"] == "https://idp.example/token"
    assert app["redirectUrl"] == "https://app.example/connect/oauth2/callback"
    assert app["imap"] == {"host": "imap.idp.example", "port": 993, "secure": True}
    assert app["smtp"] == {"host": "smtp.idp.example", "port": 587, "secure": False}
    detail = client.get("/dashboard/oauth2/idp").content.decode()
    assert 'value="imap.idp.example"' in detail
    assert 'value="mail.read mail.send openid"' in detail


def test_editing_keeps_the_secret_when_blank_and_replaces_it_when_given(client, alice):
    sign_in(client, alice.tenant, "owner")
    client.post("/dashboard/oauth2", GMAIL_FORM)
    row = OAuth2App.objects.get(tenant=alice.tenant, app_id="google")
    sealed = row.client_secret_sealed

    kept = client.post("/dashboard/oauth2/google", edit_form(name="Renamed"))
    assert kept.status_code == 302
    assert kept["Location"] == "/dashboard/oauth2/google"
    row.refresh_from_db()
    assert row.name == "Renamed"
    assert row.client_secret_sealed == sealed
    assert registered_apps.client_secret(row) == SECRET

    changed = client.post("/dashboard/oauth2/google", edit_form(client_secret=NEW_SECRET))
    assert changed.status_code == 302
    row.refresh_from_db()
    assert registered_apps.client_secret(row) == NEW_SECRET
    assert NEW_SECRET not in row.client_secret_sealed
    assert row.name == "Our Google app"
    page = client.get("/dashboard/oauth2/google").content.decode()
    assert NEW_SECRET not in page
    assert SECRET not in page

    refused = client.post("/dashboard/oauth2/google", edit_form(
        client_secret="typed-but-Refused-123", redirect_url="javascript:alert(1)"))
    assert refused.status_code == 400
    html = refused.content.decode()
    assert 'id="id_redirect_url_error"' in html
    assert "typed-but-Refused-123" not in html
    row.refresh_from_db()
    assert registered_apps.client_secret(row) == NEW_SECRET
    assert row.redirect_url == ""


def test_an_edit_cannot_turn_an_app_generic_without_its_urls(client, alice):
    sign_in(client, alice.tenant, "owner")
    client.post("/dashboard/oauth2", GMAIL_FORM)
    response = client.post("/dashboard/oauth2/google", edit_form(provider="generic"))
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("authorize_url", "token_url", "imap_host"):
        assert f'id="id_{field}_error"' in html, field
    assert OAuth2App.objects.get(tenant=alice.tenant, app_id="google").provider == "gmail"


def test_the_token_url_of_an_app_in_use_stays_on_its_host(client, alice):
    from accounts import services

    sign_in(client, alice.tenant, "owner")
    client.post("/dashboard/oauth2", GENERIC_FORM)
    services.register_account(alice.tenant, {
        "account": "m", "imap": {"host": "imap.idp.example", "port": 993, "secure": True,
                                 "auth": {"user": "u@idp.example"}},
        "oauth2": {"app": "idp", "provider": "generic", "refreshToken": "rt"}})
    form = {k: v for k, v in GENERIC_FORM.items() if k != "app"}
    refused = client.post("/dashboard/oauth2/idp", {**form, "client_secret": "",
                                                     "token_url": "https://collector.example/t"})
    assert refused.status_code == 400
    assert "refresh tokens to another host" in refused.context["form"].errors["token_url"][0]
    assert OAuth2App.objects.get(app_id="idp").token_url == GENERIC_FORM["token_url"]


def test_a_token_url_on_another_host_needs_the_client_secret_again(client, alice):
    sign_in(client, alice.tenant, "owner")
    client.post("/dashboard/oauth2", GENERIC_FORM)
    form = {k: v for k, v in GENERIC_FORM.items() if k != "app"}
    moved = {**form, "token_url": "https://collector.example/t"}

    refused = client.post("/dashboard/oauth2/idp", {**moved, "client_secret": ""})

    assert refused.status_code == 400
    assert "only ever sent to the host" in refused.context["form"].errors["client_secret"][0]
    row = OAuth2App.objects.get(app_id="idp")
    assert (row.token_url, registered_apps.client_secret(row)) == (GENERIC_FORM["token_url"],
                                                                   SECRET)
    assert client.post("/dashboard/oauth2/idp",
                       {**moved, "client_secret": NEW_SECRET}).status_code == 302


def test_delete_removes_the_app(client, alice):
    sign_in(client, alice.tenant, "owner")
    client.post("/dashboard/oauth2", GMAIL_FORM)
    assert client.get("/dashboard/oauth2/google/delete").status_code == 405
    response = client.post("/dashboard/oauth2/google/delete")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/oauth2"
    assert not OAuth2App.objects.filter(tenant=alice.tenant).exists()
    assert alice.client.get("/v1/oauth2/google").status_code == 404
    assert client.get("/dashboard/oauth2/google").status_code == 404


@pytest.mark.parametrize("changes,field", [
    ({**GENERIC_FORM, "token_url": ""}, "token_url"),
    ({**GENERIC_FORM, "authorize_url": ""}, "authorize_url"),
    ({**GENERIC_FORM, "imap_host": ""}, "imap_host"),
    ({**GENERIC_FORM, "token_url": "http://idp.example/token"}, "token_url"),
    ({**GENERIC_FORM, "authorize_url": "not a url"}, "authorize_url"),
    ({**GMAIL_FORM, "redirect_url": "javascript:alert(1)"}, "redirect_url"),
    ({**GMAIL_FORM, "provider": "myspace"}, "provider"),
    ({**GMAIL_FORM, "app": ".."}, "app"),
    ({**GMAIL_FORM, "client_id": ""}, "client_id"),
    ({**GMAIL_FORM, "client_secret": ""}, "client_secret"),
    ({**GENERIC_FORM, "imap_port": "99999"}, "imap_port"),
])
def test_bad_input_shows_the_error_next_to_the_field_and_creates_nothing(
        client, alice, changes, field):
    sign_in(client, alice.tenant, "owner")
    response = client.post("/dashboard/oauth2", changes)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert SECRET not in html
    assert f'value="{changes["client_id"]}"' in html or not changes["client_id"]  # input kept
    assert not OAuth2App.objects.exists()
    assert alice.client.get("/v1/oauth2").json()["total"] == 0


def test_a_taken_app_id_is_an_error_on_the_id(client, alice):
    sign_in(client, alice.tenant, "owner")
    assert client.post("/dashboard/oauth2", GMAIL_FORM).status_code == 302
    again = client.post("/dashboard/oauth2", {**GMAIL_FORM, "client_id": "other"})
    assert again.status_code == 400
    assert 'id="id_app_error"' in again.content.decode()
    assert "already exists" in again.content.decode()
    assert OAuth2App.objects.get().client_id == GMAIL_FORM["client_id"]


def test_a_viewer_sees_the_apps_but_cannot_change_them(client, alice):
    registered_apps.create_app(alice.tenant, {"app": "google", "provider": "gmail", "clientId": "cid",
                                   "clientSecret": SECRET})
    sign_in(client, alice.tenant, "viewer")
    page = client.get("/dashboard/oauth2")
    assert page.status_code == 200
    assert b">google</a>" in page.content
    assert b'name="client_secret"' not in page.content
    assert SECRET.encode() not in page.content
    detail = client.get("/dashboard/oauth2/google")
    assert detail.status_code == 200
    assert b"/delete" not in detail.content
    assert client.post("/dashboard/oauth2", {**GMAIL_FORM, "app": "mine"}).status_code == 403
    assert client.post("/dashboard/oauth2/google", edit_form(name="x")).status_code == 403
    assert client.post("/dashboard/oauth2/google/delete").status_code == 403
    row = OAuth2App.objects.get()
    assert row.app_id == "google"
    assert row.name == ""
    assert registered_apps.client_secret(row) == SECRET


def test_another_tenants_app_is_404_and_untouched(client, alice, bob):
    registered_apps.create_app(bob.tenant, {"app": "bobs", "provider": "gmail", "clientId": "bob-cid",
                                 "name": "Bob's app", "clientSecret": SECRET})
    sign_in(client, alice.tenant, "owner")
    assert client.get("/dashboard/oauth2/bobs").status_code == 404
    assert client.post("/dashboard/oauth2/bobs", edit_form(name="x")).status_code == 404
    assert client.post("/dashboard/oauth2/bobs/delete").status_code == 404
    assert b"bob-cid" not in client.get("/dashboard/oauth2").content
    # The same id in Alice's tenant is her own app, not Bob's.
    assert client.post("/dashboard/oauth2", {**GMAIL_FORM, "app": "bobs"}).status_code == 302
    bobs = OAuth2App.objects.get(tenant=bob.tenant)
    assert bobs.name == "Bob's app"
    assert bobs.client_id == "bob-cid"
    assert OAuth2App.objects.filter(tenant=alice.tenant, app_id="bobs").exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/dashboard/oauth2")
    assert response.status_code == 302
    assert "/login" in response["Location"]
