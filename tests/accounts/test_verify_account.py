"""``POST /v1/verifyAccount`` against the real test Dovecot and SMTP server."""

from __future__ import annotations

import pytest

from accounts.models import EmailAccount
from tests.servers.net import find_free_port

pytestmark = pytest.mark.django_db

INSECURE_TLS = {"rejectUnauthorized": False}


def imap_of(user, secure=False, **changes):
    settings = user.imap_settings(secure=secure)
    settings["tls"] = dict(INSECURE_TLS)
    settings.update(changes)
    return settings


def smtp_of(server, user, password=None):
    settings = server.smtp_settings(user.username, password or user.password)
    settings["tls"] = dict(INSECURE_TLS)
    return settings


def test_it_succeeds_with_right_credentials(alice, smtp_server, smtp_user):
    response = alice.client.post("/v1/verifyAccount", {
        "imap": imap_of(smtp_user), "smtp": smtp_of(smtp_server, smtp_user),
    }, format="json")
    assert response.status_code == 200
    assert response.json() == {"imap": {"success": True}, "smtp": {"success": True}}
    assert EmailAccount.objects.count() == 0


def test_it_works_over_implicit_tls_and_lists_mailboxes(alice, mail_user):
    response = alice.client.post("/v1/verifyAccount", {
        "imap": imap_of(mail_user, secure=True), "mailboxes": True,
    }, format="json")
    result = response.json()["imap"]
    assert result["success"] is True
    by_use = {box["specialUse"]: box["path"] for box in result["mailboxes"]}
    assert {"\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"} <= set(by_use)
    assert "INBOX" in {box["path"] for box in result["mailboxes"]}


def test_it_reports_the_servers_error_for_a_wrong_password(alice, smtp_server, smtp_user):
    imap = imap_of(smtp_user)
    imap["auth"]["pass"] = "wrong"
    response = alice.client.post("/v1/verifyAccount", {
        "imap": imap, "smtp": smtp_of(smtp_server, smtp_user, password="wrong"),
    }, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["imap"]["success"] is False
    assert body["imap"]["emailapiCode"] == "AuthenticationFailed"
    assert "AUTHENTICATIONFAILED" in body["imap"]["reason"]
    assert body["smtp"]["success"] is False
    assert body["smtp"]["emailapiCode"] == "AuthenticationFailed"
    assert body["smtp"]["responseCode"] == 535
    assert "wrong" not in response.content.decode()


def test_it_refuses_an_untrusted_certificate_unless_told(alice, mail_user):
    imap = mail_user.imap_settings(secure=True)
    imap.pop("tls", None)
    body = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json").json()
    assert body["imap"]["success"] is False
    assert body["imap"]["emailapiCode"] == "TLSError"


def test_it_reports_a_refused_connection(alice, mail_user):
    imap = imap_of(mail_user, port=find_free_port())
    body = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json").json()
    assert body["imap"]["success"] is False
    assert body["imap"]["emailapiCode"] == "ConnectionError"


def test_it_times_out_on_a_silent_server(alice, mail_user, settings):
    import socket

    settings.EMAILAPI_VERIFY_TIMEOUT = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        imap = imap_of(mail_user, port=silent.getsockname()[1])
        body = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json").json()
    finally:
        silent.close()
    assert body["imap"]["success"] is False
    assert body["imap"]["emailapiCode"] in ("Timeout", "ConnectionError")


def test_it_needs_something_to_verify(alice):
    response = alice.client.post("/v1/verifyAccount", {}, format="json")
    assert response.status_code == 400


@pytest.fixture(scope="module")
def old_smtp_server():
    """An SMTP server that speaks TLS 1.0 and nothing newer (an old server's STARTTLS)."""
    import ssl

    from tests.servers.smtp import SmtpServer

    server = SmtpServer(tls_versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1)).start()
    yield server
    server.stop()


def test_tls_min_version_lets_an_old_server_in_only_when_asked(alice, old_smtp_server, mail_user):
    old_smtp_server.add_user(mail_user.username, mail_user.password)
    smtp = smtp_of(old_smtp_server, mail_user)
    refused = alice.client.post("/v1/verifyAccount", {"smtp": smtp}, format="json").json()
    assert refused["smtp"]["success"] is False  # TLS 1.2 at least by default
    assert refused["smtp"]["code"] == "ETLS", refused
    smtp["tls"] = {**smtp["tls"], "minVersion": "TLSv1"}
    allowed = alice.client.post("/v1/verifyAccount", {"smtp": smtp}, format="json").json()
    assert allowed["smtp"] == {"success": True}


def test_tls_min_version_raised_past_the_servers_refuses_it(alice, smtp_server, mail_user):
    import ssl

    from tests.servers.smtp import SmtpServer

    smtp_server.add_user(mail_user.username, mail_user.password)
    imap = imap_of(mail_user, secure=True)
    imap["tls"] = {**imap["tls"], "minVersion": "TLSv1.3"}  # Dovecot speaks 1.3
    smtp = smtp_of(smtp_server, mail_user)
    smtp["tls"] = {**smtp["tls"], "minVersion": "TLSv1.3"}
    body = alice.client.post("/v1/verifyAccount", {"imap": imap, "smtp": smtp},
                             format="json").json()
    assert body == {"imap": {"success": True}, "smtp": {"success": True}}
    with SmtpServer(tls_versions=(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)) as capped:
        capped.add_user(mail_user.username, mail_user.password)
        smtp = smtp_of(capped, mail_user)
        smtp["tls"] = {**smtp["tls"], "minVersion": "TLSv1.3"}
        refused = alice.client.post("/v1/verifyAccount", {"smtp": smtp}, format="json").json()
        assert (refused["smtp"]["success"], refused["smtp"]["code"]) == (False, "ETLS")


def test_an_unknown_tls_min_version_is_400(alice, mail_user):
    imap = imap_of(mail_user)
    imap["tls"] = {"rejectUnauthorized": False, "minVersion": "SSLv3"}
    response = alice.client.post("/v1/verifyAccount", {"imap": imap}, format="json")
    assert response.status_code == 400
    assert "imap.tls.minVersion" in response.json()["details"]
