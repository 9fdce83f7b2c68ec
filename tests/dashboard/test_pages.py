"""Dashboard pages through Django's test client (fast): sign-up, sign-in limits, forms that keep
what was typed, roles, and one tenant never reaching another's pages."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts import credentials, services
from accounts.models import ApiToken, EmailAccount, Membership, Tenant, User
from accounts.web import login_limit
from tests.base import account_payload

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"


def signup(client, org="Acme Inc", email="owner@acme.test", password=PASSWORD):
    return client.post("/signup", {"organization": org, "email": email, "password": password})


def member(client, tenant: Tenant, email: str, role: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client.force_login(user)
    return user


def test_signup_creates_a_trial_tenant_its_owner_and_signs_in(client):
    response = signup(client)
    assert response.status_code == 302
    assert response["Location"] == "/dashboard"
    tenant = Tenant.objects.get(name="Acme Inc")
    assert tenant.status == "trial"
    days = (tenant.trial_ends_at - tenant.created_at).total_seconds() / 86400
    assert 13.99 < days < 14.01
    owner = Membership.objects.get(tenant=tenant)
    assert owner.role == "owner"
    assert owner.user.email == "owner@acme.test"
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert b"14 days left" in page.content
    assert b"Acme Inc" in page.content


def test_email_verification_link_confirms_the_address(client):
    signup(client)
    [message] = mail.outbox
    link = re.search(r"http://testserver(/verify-email/\S+)", message.body).group(1)
    assert User.objects.get().email_verified_at is None
    client.get(link)
    assert User.objects.get().email_verified_at is not None
    assert client.get("/verify-email/forged-token").status_code == 302
    assert b"confirm your email" not in client.get("/dashboard").content


def test_signup_rejects_bad_input_next_to_the_field_and_keeps_it(client):
    response = signup(client, org="Keep Me Ltd", email="not-an-email", password="123")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Keep Me Ltd"' in html
    assert 'value="not-an-email"' in html
    assert 'id="id_email_error"' in html
    assert "valid email" in html
    assert 'id="id_password_error"' in html
    assert "too short" in html
    assert not Tenant.objects.exists()
    assert not User.objects.exists()


def test_signup_with_a_taken_email_changes_nothing(client):
    signup(client)
    client.logout()
    response = signup(client, org="Second")
    assert response.status_code == 400
    assert b"already exists" in response.content
    assert Tenant.objects.count() == 1


def test_failed_logins_are_limited_with_one_message_for_everyone(client):
    signup(client)
    client.logout()
    for _ in range(login_limit.MAX_PER_EMAIL):
        response = client.post("/login", {"email": "owner@acme.test", "password": "wrong"})
        assert response.status_code == 400
        assert b"Email or password is incorrect" in response.content
    blocked = client.post("/login", {"email": "owner@acme.test", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in blocked.content
    assert "_auth_user_id" not in client.session
    # An address without an account gets the same answers: nothing to enumerate.
    for _ in range(login_limit.MAX_PER_EMAIL):
        client.post("/login", {"email": "nobody@acme.test", "password": "wrong"})
    unknown = client.post("/login", {"email": "nobody@acme.test", "password": "wrong"})
    assert b"Too many failed sign-in attempts" in unknown.content


def test_login_and_logout(client):
    signup(client)
    client.post("/logout")
    assert client.get("/dashboard").status_code == 302
    response = client.post("/login", {"email": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard"
    assert client.get("/logout").status_code == 405  # sign-out is a POST with a CSRF token


def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    signup(client)
    client.logout()
    mail.outbox.clear()
    assert client.post("/password-reset", {"email": "owner@acme.test"}).status_code == 302
    assert client.post("/password-reset", {"email": "nobody@acme.test"}).status_code == 302
    [message] = mail.outbox  # nothing is sent (or said) for an unknown address
    link = re.search(r"http://testserver(/password-reset/\S+)", message.body).group(1)
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "Another-Long-Pass-7",
                                             "new_password2": "Another-Long-Pass-7"})
    assert client.login(email="owner@acme.test", password="Another-Long-Pass-7")


def test_another_tenants_pages_are_404(client, bob):
    services.register_account(bob.tenant, account_payload("bobs-box"))
    _, bob_token = services.issue_token(bob.tenant, "bob", ["api"])
    signup(client)
    for url in ("/dashboard/mailboxes/bobs-box", ):
        assert client.get(url).status_code == 404
    token = ApiToken.objects.get(tenant=bob.tenant, name="bob")
    assert client.post(f"/dashboard/tokens/{token.pk}/revoke").status_code == 404
    assert client.post("/dashboard/mailboxes/bobs-box/delete").status_code == 404
    bob_member = Membership.objects.create(
        tenant=bob.tenant, user=User.objects.create_user("b@bob.test", PASSWORD), role="viewer")
    assert client.post(f"/dashboard/team/{bob_member.pk}/remove").status_code == 404
    assert EmailAccount.objects.filter(account_id="bobs-box").exists()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_a_viewer_sees_but_cannot_change(client, alice):
    member(client, alice.tenant, "viewer@alice.test", "viewer")
    assert client.get("/dashboard/tokens").status_code == 200
    assert client.post("/dashboard/tokens", {"name": "x", "scopes": ["api"]}).status_code == 403
    assert not ApiToken.objects.filter(name="x").exists()


def test_tokens_are_shown_once_and_revocable(client, alice):
    member(client, alice.tenant, "admin@alice.test", "admin")
    response = client.post("/dashboard/tokens", {"name": "ci", "scopes": ["read"]})
    raw = re.search(r'value="(eapi_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get(name="ci")
    assert token.scopes == ["read"]
    assert token.tenant == alice.tenant
    assert raw not in client.get("/dashboard/tokens").content.decode()
    bad = client.post("/dashboard/tokens", {"name": "", "scopes": ["root"]})
    assert bad.status_code == 400
    assert b'id="id_name_error"' in bad.content
    client.post(f"/dashboard/tokens/{token.pk}/revoke")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_add_mailbox_form_shows_a_failed_connection_test_and_keeps_the_input(client, alice,
                                                                             mail_user):
    member(client, alice.tenant, "owner@alice.test", "owner")
    form = {"email": "box@example.test", "imap_host": mail_user.host,
            "imap_port": mail_user.imap_port, "username": mail_user.username,
            "password": "wrong-password", "account": "kept-id"}
    response = client.post("/dashboard/mailboxes/new", form)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Connection test failed" in html
    assert 'value="kept-id"' in html
    assert 'value="wrong-password"' in html
    assert not EmailAccount.objects.filter(tenant=alice.tenant).exists()
    bad = client.post("/dashboard/mailboxes/new", {**form, "imap_port": "99999",
                                                   "account": ".."})
    assert bad.status_code == 400
    assert b'id="id_imap_port_error"' in bad.content
    assert b'id="id_account_error"' in bad.content


def test_add_mailbox_tests_the_connection_then_registers(client, alice, mail_user):
    member(client, alice.tenant, "owner@alice.test", "owner")
    response = client.post("/dashboard/mailboxes/new", {
        "email": "box@example.test", "imap_host": mail_user.host,
        "imap_port": mail_user.imap_port, "username": mail_user.username,
        "password": mail_user.password, "account": "box"})
    assert response.status_code == 302, response.content.decode()[:2000]
    account = EmailAccount.objects.get(tenant=alice.tenant, account_id="box")
    assert credentials.get_credential(account, "imap.pass") == mail_user.password
    detail = client.get(reverse("web:mailbox", args=["box"]))
    assert detail.status_code == 200
    assert b"Reconnect" in detail.content
    client.post("/dashboard/mailboxes/box/pause")
    assert EmailAccount.objects.get(pk=account.pk).state == "paused"
    live = client.get("/dashboard/live.json").json()
    assert live["mailboxes"]["box"]["state"] == "paused"


def test_another_tenants_webhook_pages_are_404(client, alice, bob):
    from webhooks import subscriptions

    theirs, _ = subscriptions.create(bob.tenant, {"url": "https://hooks.bob.test/x",
                                                  "events": ["*"]})
    member(client, alice.tenant, "owner@alice.test", "owner")
    assert client.get(f"/dashboard/webhooks/{theirs.pk}").status_code == 404
    assert client.post(f"/dashboard/webhooks/{theirs.pk}/delete").status_code == 404
    assert client.post(f"/dashboard/webhooks/{theirs.pk}/test").status_code == 404
    assert b"hooks.bob.test" not in client.get("/dashboard/webhooks").content
    assert subscriptions.tenant_subscriptions(bob.tenant).count() == 1


def test_webhook_form_keeps_input_and_shows_the_apis_errors(client, alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the URL is checked (resolved) like the API does
    member(client, alice.tenant, "owner@alice.test", "owner")
    response = client.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/in",
                                                   "events": "noSuchEvent", "enabled": "on"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_events_error"' in html
    assert 'value="noSuchEvent"' in html
    created = client.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/in",
                                                  "events": "messageNew, messageDeleted",
                                                  "enabled": "on"})
    assert created.status_code == 302
    from webhooks.models import WebhookSubscription

    subscription = WebhookSubscription.objects.get(tenant=alice.tenant)
    assert subscription.events == ["messageNew", "messageDeleted"]
    page = client.get(created["Location"])
    assert b"whsec_" in page.content
    assert b"whsec_" not in client.get(created["Location"]).content  # shown once


def test_roles_change_but_only_owners_touch_owners_and_the_last_owner_stays(client, alice, bob):
    owner = member(client, alice.tenant, "owner@alice.test", "owner")
    viewer = Membership.objects.create(
        tenant=alice.tenant, user=User.objects.create_user("v@alice.test", PASSWORD),
        role="viewer")
    assert b'name="role"' in client.get("/dashboard/team").content
    client.post(f"/dashboard/team/{viewer.pk}/role", {"role": "admin"})
    assert Membership.objects.get(pk=viewer.pk).role == "admin"
    client.post(f"/dashboard/team/{viewer.pk}/role", {"role": "root"})
    assert Membership.objects.get(pk=viewer.pk).role == "admin"
    mine = Membership.objects.get(tenant=alice.tenant, user=owner)
    client.post(f"/dashboard/team/{mine.pk}/role", {"role": "viewer"})  # the last owner
    assert Membership.objects.get(pk=mine.pk).role == "owner"
    client.force_login(viewer.user)  # now an admin: may not make owners
    client.post(f"/dashboard/team/{viewer.pk}/role", {"role": "owner"})
    assert Membership.objects.get(pk=viewer.pk).role == "admin"
    client.post(f"/dashboard/team/{mine.pk}/role", {"role": "viewer"})
    assert Membership.objects.get(pk=mine.pk).role == "owner"
    bobs = Membership.objects.create(
        tenant=bob.tenant, user=User.objects.create_user("b2@bob.test", PASSWORD), role="viewer")
    assert client.post(f"/dashboard/team/{bobs.pk}/role", {"role": "admin"}).status_code == 404
    assert Membership.objects.get(pk=bobs.pk).role == "viewer"


def test_webhook_mailboxes_and_headers_are_edited_and_headers_never_shown(
        client, alice, settings):
    from webhooks import subscriptions
    from webhooks.models import WebhookSubscription

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    member(client, alice.tenant, "owner@alice.test", "owner")
    created = client.post("/dashboard/webhooks", {
        "url": "http://127.0.0.1:9/in", "events": "*", "enabled": "on",
        "accounts": "sales\r\n support, eu \n", "headers": "X-Team: blue\nAuthorization: Bearer s3cret"})
    assert created.status_code == 302, created.content.decode()[:500]
    hook = WebhookSubscription.objects.get(tenant=alice.tenant)
    assert hook.accounts == ["sales", "support, eu"]  # one id a line: an id may hold a comma
    assert subscriptions.headers_of(hook) == {"X-Team": "blue", "Authorization": "Bearer s3cret"}
    page = client.get(created["Location"]).content.decode()
    assert "s3cret" not in page
    assert ">\nsales\nsupport, eu</textarea>" in page
    kept = client.post(created["Location"], {"url": "http://127.0.0.1:9/in", "events": "*",
                                             "enabled": "on", "accounts": "", "headers": ""})
    assert kept.status_code == 302
    hook.refresh_from_db()
    assert hook.accounts == []
    assert subscriptions.headers_of(hook)["X-Team"] == "blue"
    bad = client.post(created["Location"], {"url": "http://127.0.0.1:9/in", "events": "*",
                                            "headers": "no colon here"})
    assert bad.status_code == 400
    assert 'id="id_headers_error"' in bad.content.decode()
    hook.refresh_from_db()
    assert subscriptions.headers_of(hook)["X-Team"] == "blue"


def test_a_webhooks_name_and_description_are_set_shown_and_cleared(client, alice, settings):
    """The name EmailEngine's webhook routes show (``/v1/webhookRoutes``) is given here too;
    the list and the page lead with it."""
    from webhooks.models import WebhookSubscription

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    member(client, alice.tenant, "owner@alice.test", "owner")
    created = client.post("/dashboard/webhooks", {
        "name": "CRM <relay>", "description": "New mail\nto the CRM", "url": "http://127.0.0.1:9/in",
        "events": "*", "enabled": "on"})
    assert created.status_code == 302, created.content.decode()[:500]
    hook = WebhookSubscription.objects.get(tenant=alice.tenant)
    assert (hook.name, hook.description) == ("CRM <relay>", "New mail\nto the CRM")
    listing = client.get("/dashboard/webhooks").content.decode()
    assert "<strong>CRM &lt;relay&gt;</strong>" in listing
    page = client.get(created["Location"]).content.decode()
    assert "<h1>CRM &lt;relay&gt;</h1>" in page
    assert "New mail<br>to the CRM" in page
    assert 'value="CRM &lt;relay&gt;"' in page
    too_long = client.post(created["Location"], {"name": "n" * 257, "url": "http://127.0.0.1:9/in",
                                                  "events": "*"})
    assert too_long.status_code == 400
    assert 'id="id_name_error"' in too_long.content.decode()
    cleared = client.post(created["Location"], {"name": "", "description": "",
                                                "url": "http://127.0.0.1:9/in", "events": "*",
                                                "enabled": "on"})
    assert cleared.status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.description) == ("", "")
    assert "<h1>Webhook</h1>" in client.get(created["Location"]).content.decode()


def test_a_webhook_urls_password_is_never_shown_and_kept_when_saved_unchanged(
        client, alice, settings):
    from webhooks import subscriptions
    from webhooks.models import WebhookSubscription

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    member(client, alice.tenant, "owner@alice.test", "owner")
    created = client.post("/dashboard/webhooks", {
        "url": "http://hook-user:Dash-Pw-7731@127.0.0.1:9/in", "events": "*", "enabled": "on"})
    assert created.status_code == 302, created.content.decode()[:500]
    hook = WebhookSubscription.objects.get(tenant=alice.tenant)
    masked = "http://hook-user:******@127.0.0.1:9/in"
    for page in (client.get("/dashboard/webhooks"), client.get(created["Location"])):
        assert "Dash-Pw-7731" not in page.content.decode()
        assert masked in page.content.decode()
    form = {"url": masked, "events": "*", "enabled": "on", "accounts": "", "headers": ""}
    assert client.post(created["Location"], form).status_code == 302  # the form as shown
    hook.refresh_from_db()
    assert subscriptions.url_password_of(hook) == "Dash-Pw-7731"
    moved = client.post(created["Location"], {**form, "url": "http://hook-user:******@127.0.0.2:9/in"})
    assert moved.status_code == 400
    html = moved.content.decode()
    assert 'id="id_url_error"' in html
    assert "only ever sent to the server it was given for" in html
    assert "Dash-Pw-7731" not in html
    hook.refresh_from_db()
    assert hook.url == masked
    refused = client.post("/dashboard/webhooks", {**form, "url": "http://u:Bad%zz@127.0.0.1:9/"})
    assert refused.status_code == 400
    assert 'id="id_url_error"' in refused.content.decode()
    # A form shown again for another field's error does not carry the password either.
    again = client.post("/dashboard/webhooks", {**form, "events": "noSuchEvent",
                                                "url": "http://u:Dash-Pw-7731@127.0.0.1:9/"})
    assert again.status_code == 400
    assert "Dash-Pw-7731" not in again.content.decode()
    assert 'value="http://u:******@127.0.0.1:9/"' in again.content.decode()
    assert WebhookSubscription.objects.filter(tenant=alice.tenant).count() == 1


def test_a_member_of_two_organizations_switches_between_them(client, alice, bob):
    user = member(client, alice.tenant, "both@example.test", "admin")
    Membership.objects.create(tenant=bob.tenant, user=user, role="viewer")
    page = client.get("/dashboard").content.decode()
    assert 'id="org-switch"' in page
    assert "Bob Ltd" in page
    assert client.post("/dashboard/organization", {"tenant": bob.tenant.pk}).status_code == 302
    assert "Bob Ltd</option>" in client.get("/dashboard").content.decode()
    assert client.get("/dashboard/tokens").context["tenant"] == bob.tenant
    stranger = Tenant.objects.create(name="Stranger", slug="stranger")
    assert client.post("/dashboard/organization", {"tenant": stranger.pk}).status_code == 404
    assert client.get("/dashboard/tokens").context["tenant"] == bob.tenant
    for bad in ("abc", "", "1e5", "1.5", "-1", "9" * 30, "٣"):  # 404, never a 500
        assert client.post("/dashboard/organization", {"tenant": bad}).status_code == 404, bad
    assert client.get("/dashboard/tokens").context["tenant"] == bob.tenant


def test_connect_gmail_from_the_dashboard_opens_the_hosted_sign_in(client, alice, bob):
    from urllib.parse import unquote, urlsplit

    from accounts.oauth2 import links, registered_apps

    registered_apps.create_app(alice.tenant, {"app": "google", "provider": "gmail", "clientId": "cid",
                                   "clientSecret": "Client-Secret-1"})
    registered_apps.create_app(bob.tenant, {"app": "bobs", "provider": "gmail", "clientId": "cid",
                                 "clientSecret": "Client-Secret-2"})
    member(client, alice.tenant, "owner@alice.test", "owner")
    page = client.get("/dashboard/mailboxes").content.decode()
    assert "Connect Gmail" in page
    assert "Client-Secret-1" not in page
    response = client.post("/dashboard/mailboxes/connect", {"app": "google"})
    assert response.status_code == 302
    link = urlsplit(response["Location"])
    assert link.path == "/connect"
    query = dict(part.split("=", 1) for part in link.query.split("&"))
    payload = links.read(unquote(query["data"]), unquote(query["sig"]))
    assert payload["tenant"] == alice.tenant.pk
    assert payload["type"] == "google"
    assert payload["redirectUrl"].endswith("/dashboard/mailboxes")
    assert client.get(f"{link.path}?{link.query}").status_code == 200
    assert client.post("/dashboard/mailboxes/connect", {"app": "bobs"}).status_code == 404


@pytest.mark.parametrize("url", ["http://u:Dash-Pw-7731@[::1", "http:u:Dash-Pw-7731@127.0.0.1:9/",
                                 "http://u:Dash-Pw-7731\u2100@127.0.0.1:9/"])
def test_a_refused_webhook_url_is_not_echoed_with_its_password(client, alice, settings, url):
    """Red team: a URL the form refused came back on the page as typed."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    member(client, alice.tenant, "owner@alice.test", "owner")
    refused = client.post("/dashboard/webhooks", {"url": url, "events": "*", "enabled": "on"})
    assert refused.status_code == 400
    assert "Dash-Pw-7731" not in refused.content.decode()
