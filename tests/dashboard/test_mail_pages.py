"""The dashboard's mail pages, mailbox editing and connect links through Django's test client,
on a mailbox synced from Dovecot: a folder page by page, search, a message with its HTML in a
sandboxed frame, attachments over the session, edits through the account service, and the
hosted page's autoconfig. Browser checks are in test_browser_mail.py."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from accounts import mail_proxy, services
from accounts.credentials import get_credential
from accounts.models import EmailAccount, Membership, User
from accounts.oauth2 import links, pages
from mailboxes import listing
from tests.mailboxes.helpers import with_password
from tests.servers import seed
from tests.servers.proxies import Socks5Proxy

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"
PDF = seed.tiny_pdf()
HOSTILE_HTML = ("<html><body><p id='hello'>Hello from <b>HTML</b></p>"
                "<script>document.title='pwned'; fetch('/pwned-script')</script>"
                "<img src='x' onerror=\"fetch('/pwned-onerror')\">"
                "<a href='javascript:alert(1)'>click</a></body></html>")


@pytest.fixture
def inbox_messages():
    messages = {f"note{i:02d}": seed.make_message(
        subject=f"Weekly note {i:02d}", from_=f"Valentina Jensen <vj{i}@example.test>",
        date=seed._date(1 + i % 27)) for i in range(30)}
    messages["hostile"] = seed.make_message(
        subject="Invoice with script", from_="Mallory Sender <mallory@example.test>",
        body="Plain text of the invoice.\n", html=HOSTILE_HTML,
        attachments=[("invoice.pdf", PDF, "application/pdf")])
    return messages


def sign_in(client, tenant, role="owner", email="owner@alice.test") -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client.force_login(user)
    return user


def message_id(synced, name: str) -> str:
    return next(m["id"] for m in synced.listing() if m["uid"] == synced.uid_of[name])


def test_a_folder_is_paged_with_sender_names_and_searched(client, synced):
    sign_in(client, synced.account.tenant)
    page = client.get("/dashboard/mailboxes/box/mail?path=INBOX")
    assert page.status_code == 200
    text = page.content.decode()
    assert "31 messages" in text
    assert "All 31 messages indexed." in text
    assert text.count("Valentina Jensen") == 24  # the newest page of 25 rows: 24 notes
    assert "vj1@example.test" not in text  # the name, not the lowercased search column
    older = re.search(r'href="\?path=INBOX&amp;cursor=([^"]+)" *>Older', text) or \
        re.search(r'rel="next" href="\?path=INBOX&amp;cursor=([^"]+)"', text)
    second = client.get(f"/dashboard/mailboxes/box/mail?path=INBOX&cursor="
                        f"{unquote(unescape(older.group(1)))}").content.decode()
    assert "Weekly note 00" in second
    assert "Weekly note 29" not in second
    found = client.get("/dashboard/mailboxes/box/mail?path=INBOX&q=mallory").content.decode()
    assert "1 match for" in found
    assert "Invoice with script" in found
    everywhere = client.get("/dashboard/mailboxes/box/mail?q=weekly+note+0&in=all").content
    assert b"10 matches" in everywhere
    assert client.get("/dashboard/mailboxes/box/mail?path=Nope").status_code == 404


def test_a_message_shows_its_html_sanitized_in_a_sandboxed_frame(client, synced):
    sign_in(client, synced.account.tenant)
    response = client.get(f"/dashboard/mailboxes/box/messages/{message_id(synced, 'hostile')}")
    assert response.status_code == 200
    text = response.content.decode()
    frame = re.search(r"<iframe[^>]*>", text).group(0)
    sandbox = re.search(r'sandbox="([^"]*)"', frame).group(1)
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox
    document = unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert "Hello from <b>HTML</b>" in document
    assert "<script" not in document
    assert "onerror" not in document
    assert "javascript:" not in document
    assert "script-src 'none'" in document  # the frame's own policy, a second lock
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "Mallory Sender &lt;mallory@example.test&gt;" in text
    assert "invoice.pdf" in text


def test_attachments_download_over_the_session_and_only_for_the_tenant(client, synced,
                                                                        outsider):
    sign_in(client, synced.account.tenant)
    detail = synced.client.get(
        f"/v1/account/box/message/{message_id(synced, 'hostile')}").json()
    [attachment] = [a for a in detail["attachments"] if a["filename"] == "invoice.pdf"]
    url = f"/dashboard/mailboxes/box/attachments/{attachment['id']}"
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert "invoice.pdf" in response["Content-Disposition"]
    # The outsider's own mailbox is also "box": the id does not decode for it.
    outsider_client = client_of(outsider.tenant, "someone@outsider.test")
    assert outsider_client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the sign-in page


def client_of(tenant, email):
    from django.test import Client

    other = Client()
    sign_in(other, tenant, email=email)
    return other


def test_first_sync_progress_counts_the_index_against_the_folders(synced):
    folder = synced.account.folders.get(path="INBOX")
    folder.messages = 62
    folder.backfill_below = 5
    folder.save()
    progress = listing.sync_progress(synced.account)
    assert (progress.indexed, progress.total, progress.complete) == (31, 62, False)
    assert progress.percent == 50


def test_editing_renames_without_reconnecting_and_keeps_bad_input(client, synced, mail_user):
    sign_in(client, synced.account.tenant)
    before = EmailAccount.objects.get(pk=synced.account.pk)
    form = edit_form(client)
    response = client.post("/dashboard/mailboxes/box/edit", {**form, "name": "Support desk"})
    assert response.status_code == 302
    after = EmailAccount.objects.get(pk=synced.account.pk)
    assert after.name == "Support desk"
    assert after.config_version == before.config_version  # nothing to reconnect for
    bad = client.post("/dashboard/mailboxes/box/edit",
                      {**form, "name": "Typed name", "imap_port": "0"})
    assert bad.status_code == 400
    assert b"Typed name" in bad.content
    assert b"greater than or equal to 1" in bad.content
    wrong = client.post("/dashboard/mailboxes/box/edit", {**form, "password": "wrong-one"})
    assert wrong.status_code == 400
    assert b"Connection test failed" in wrong.content
    assert b"wrong-one" not in wrong.content  # never rendered back
    assert get_credential(synced.account, "imap.pass") == mail_user.password
    assert EmailAccount.objects.get(pk=synced.account.pk).name == "Support desk"


def test_editing_servers_tests_them_with_the_stored_password(client, synced, mail_user,
                                                             dovecot):
    sign_in(client, synced.account.tenant)
    form = edit_form(client)
    response = client.post("/dashboard/mailboxes/box/edit",
                           {**form, "imap_port": str(mail_user.imaps_port), "imap_secure": "on",
                            "tls_verify": ""})
    assert response.status_code == 302, response.content.decode()
    account = EmailAccount.objects.get(pk=synced.account.pk)
    assert account.imap["port"] == mail_user.imaps_port
    assert account.imap["secure"] is True
    assert get_credential(account, "imap.pass") == mail_user.password


def test_editing_servers_tests_them_through_the_accounts_proxy(client, synced, mail_user):
    with Socks5Proxy("proxyuser", "Pr0xy-pw") as proxy:
        services.update_account(synced.account, with_password(
            synced.account, mail_user.password, proxy=proxy.url("proxyuser", "Pr0xy-pw")))
        sign_in(client, synced.account.tenant)
        form = edit_form(client)
        response = client.post("/dashboard/mailboxes/box/edit",
                               {**form, "imap_port": str(mail_user.imaps_port),
                                "imap_secure": "on", "tls_verify": ""})
        assert response.status_code == 302, response.content.decode()
        assert (mail_user.imaps_port in [r.port for r in proxy.requests]), proxy.requests


def test_a_proxy_set_on_the_edit_page_is_tested_through_shown_masked_and_kept(
        client, synced, mail_user):
    """The account's proxy (EmailEngine's ``proxy``) on the edit page: the connection is
    tested through it before it is saved, the page never carries its password, the masked URL
    saved unchanged keeps it, and a proxy that fails the test, or is no proxy URL, saves
    nothing."""
    sign_in(client, synced.account.tenant)

    def stored() -> str:
        return (EmailAccount.objects.get(pk=synced.account.pk).ee_options or {}).get("proxy")

    with Socks5Proxy("proxyuser", "Pr0xy-pw") as proxy:
        form = edit_form(client)
        assert form["proxy"] == ""
        url = proxy.url("proxyuser", "Pr0xy-pw")
        untyped = client.post("/dashboard/mailboxes/box/edit", {**form, "proxy": url})
        assert untyped.status_code == 400  # a new route for the stored password: type it again
        assert "proxy is set or changed" in untyped.context["form"].errors["password"][0]
        assert proxy.requests == []  # not even tested through it
        response = client.post("/dashboard/mailboxes/box/edit",
                               {**form, "proxy": url, "password": mail_user.password})
        assert response.status_code == 302, response.content.decode()
        assert mail_user.imap_port in [r.port for r in proxy.requests], proxy.requests
        assert stored() == url.replace("Pr0xy-pw", "******")
        page = client.get("/dashboard/mailboxes/box/edit").content.decode()
        assert "Pr0xy-pw" not in page
        assert "proxyuser:******@" in page
        tested = len(proxy.requests)
        renamed = client.post("/dashboard/mailboxes/box/edit", {**edit_form(client),
                                                                "name": "Via proxy"})
        assert renamed.status_code == 302
        assert len(proxy.requests) == tested  # the proxy did not change: nothing to test
        account = EmailAccount.objects.get(pk=synced.account.pk)
        assert mail_proxy.account_proxy(account).password == "Pr0xy-pw"

        with Socks5Proxy("proxyuser", "another") as refusing:
            refused = client.post("/dashboard/mailboxes/box/edit",
                                  {**form, "proxy": refusing.url("proxyuser", "wrong"),
                                   "password": mail_user.password})
        assert refused.status_code == 400
        assert "The proxy refused the login" in refused.content.decode()
        assert "proxyuser:wrong@" not in refused.content.decode()  # the echo is masked
        malformed = client.post("/dashboard/mailboxes/box/edit", {**form, "proxy": "ftp://x",
                                                                  "password": mail_user.password})
        assert malformed.status_code == 400
        assert malformed.context["form"].errors["proxy"]
        assert stored() == url.replace("Pr0xy-pw", "******")

    cleared = client.post("/dashboard/mailboxes/box/edit", {**edit_form(client), "proxy": ""})
    assert cleared.status_code == 302, cleared.content.decode()  # tested directly
    assert not stored()


def test_a_new_server_host_needs_its_own_password_and_is_never_tried_with_the_stored_one(
        client, synced, mail_user):
    """The edit page logs in before saving: with the stored password, only on the host it
    was given for. A new host with the password left empty is refused on the form, nothing is
    tried and nothing saved; a new SMTP server takes the IMAP password only as typed here."""
    sign_in(client, synced.account.tenant)
    form = edit_form(client)
    response = client.post("/dashboard/mailboxes/box/edit",
                           {**form, "imap_host": "localhost", "password": ""})
    assert response.status_code == 400
    assert "only ever sent to the server it was given for" in \
        response.context["form"].errors["password"][0]
    account = EmailAccount.objects.get(pk=synced.account.pk)
    assert account.imap["host"] == synced.account.imap["host"]
    added = client.post("/dashboard/mailboxes/box/edit",
                        {**form, "smtp_host": "localhost", "smtp_port": "2525"})
    assert added.status_code == 400
    assert added.context["form"].errors["smtp_password"][0].startswith("Required for a new SMTP")
    assert EmailAccount.objects.get(pk=synced.account.pk).smtp == synced.account.smtp


def test_a_viewer_reads_mail_but_gets_no_edit_or_link_forms(client, synced):
    sign_in(client, synced.account.tenant, role="viewer")
    assert client.get("/dashboard/mailboxes/box/mail").status_code == 200
    detail = client.get("/dashboard/mailboxes/box").content
    assert b"Read mail" in detail
    assert b"Edit settings" not in detail
    for url in ("/dashboard/mailboxes/box/edit", "/dashboard/connect-links"):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert client.post("/dashboard/mailboxes/box/reauth-link").status_code == 403


def test_a_stopped_organization_changes_nothing(client, synced):
    tenant = synced.account.tenant
    tenant.status = "suspended"
    tenant.save()
    sign_in(client, tenant)
    form = edit_form(client)
    response = client.post("/dashboard/mailboxes/box/edit", {**form, "name": "Renamed"})
    assert response.status_code == 400
    assert b"stopped" in response.content
    assert EmailAccount.objects.get(pk=synced.account.pk).name == ""


def edit_form(client) -> dict:
    """The edit form's current values, as the browser would send them back."""
    text = client.get("/dashboard/mailboxes/box/edit").content.decode()
    values = {}
    for tag in re.findall(r"<input[^>]*>", text):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrfmiddlewaretoken":
            continue
        kind = re.search(r'type="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag)
        if kind == "checkbox":
            if "checked" in tag:
                values[name.group(1)] = "on"
        else:
            values[name.group(1)] = unescape(value.group(1)) if value else ""
    values["watch_folder"] = "INBOX"
    return values


def test_a_reauthentication_link_reconnects_that_mailbox_only(client, synced):
    EmailAccount.objects.filter(pk=synced.account.pk).update(email="box@example.test",
                                                             state="authenticationError")
    sign_in(client, synced.account.tenant)
    detail = client.get("/dashboard/mailboxes/box").content.decode()
    assert "Send a re-authentication link" in detail
    response = client.post("/dashboard/mailboxes/box/reauth-link")
    assert response.status_code == 200
    link = unescape(re.search(r'id="connect-link"[^>]*|value="([^"]+)"[^>]*id="connect-link"',
                              response.content.decode()).group(0))
    url = re.search(r"http://testserver/connect\?[^\"' ]+", link).group(0)
    query = parse_qs(urlsplit(url).query)
    payload = links.read(query["data"][0], query["sig"][0])
    assert payload["account"] == "box"
    assert payload["expectedEmail"] == "box@example.test"
    assert payload["type"] == "imap"
    assert payload["redirectUrl"] == "http://testserver/connect/done"
    assert payload["tenant"] == synced.account.tenant_id


def test_a_connect_link_is_made_and_bad_input_kept(client, alice):
    sign_in(client, alice.tenant)
    bad = client.post("/dashboard/connect-links", {"type": "imap", "account": "new box!",
                                                   "redirect_url": "ftp://x"})
    assert bad.status_code == 400
    assert b"new box!" in bad.content
    assert b"Must be an http(s) URL" in bad.content
    made = client.post("/dashboard/connect-links", {"type": "imap", "account": "newbox",
                                                    "email": "end@fastmail.com"})
    assert made.status_code == 200
    assert b'data-copy="#connect-link"' in made.content
    assert client.post("/dashboard/connect-links", {"type": "gmail"}).status_code == 400


def test_the_hosted_page_has_no_sign_in_navigation_and_prefills_from_autoconfig(
        client, alice, monkeypatch):
    data, sig = links.make({"tenant": alice.tenant.pk, "type": "imap", "nonce": "n1",
                            "redirectUrl": "https://app.example/back"})
    page = client.get(f"/connect?data={data}&sig={sig}").content.decode()
    assert "Sign in" not in page
    assert "Start free trial" not in page
    assert 'class="form"' in page
    lookups = []
    monkeypatch.setattr(pages, "autoconfig_mx_lookup",
                        lambda domain: lookups.append(domain) or ["aspmx.l.google.com"])
    known = client.get(f"/connect/autoconfig?data={data}&sig={sig}&email=me@fastmail.com")
    assert known.json()["imap"] == {"host": "imap.fastmail.com", "port": 993, "secure": True,
                                    "auth": {"user": "me@fastmail.com"}}
    hosted = client.get(f"/connect/autoconfig?data={data}&sig={sig}&email=me@corp.example")
    assert hosted.json()["imap"]["host"] == "imap.gmail.com"
    assert lookups == ["corp.example"]
    forged = client.get(f"/connect/autoconfig?data={data}&sig=x{sig}&email=me@fastmail.com")
    assert forged.status_code == 400
    assert forged.json()["code"] == "InvalidSignature"
    assert client.get(f"/connect/autoconfig?data={data}&sig={sig}&email=nope").status_code == 400


def test_the_hosted_form_keeps_input_and_puts_a_failed_login_next_to_the_server(
        client, alice, mail_user):
    data, sig = links.make({"tenant": alice.tenant.pk, "type": "imap", "nonce": "n2",
                            "redirectUrl": "https://app.example/back"})
    response = client.post(f"/connect?data={data}&sig={sig}", {
        "email": "end@fastmail.com", "user": mail_user.username, "password": "wrong-pass",
        "imap_host": mail_user.host, "imap_port": mail_user.imap_port})
    assert response.status_code == 400
    text = response.content.decode()
    assert 'id="id_imap_host_error"' in text
    assert "end@fastmail.com" in text
    assert f'value="{mail_user.imap_port}"' in text
    assert not EmailAccount.objects.filter(tenant=alice.tenant).exists()
