"""The two TLS contexts a worker's connections share (``mailboxes.imap.client.tls_context``):
the verifying one trusts the system's CA store and refuses a certificate it cannot chain to
it; the other, for mailboxes whose TLS is not verified, holds no CA at all (OpenSSL checks a
server's chain even when told to ignore the outcome, and against the system's store that
check was a fifth of an unverified handshake's CPU) and is otherwise the same context."""

from __future__ import annotations

import ssl

import pytest

from mailboxes.imap import client as imap


def _settings(mail_user, secure: bool, verify: bool) -> imap.ImapSettings:
    return imap.ImapSettings(host=mail_user.host,
                             port=mail_user.imaps_port if secure else mail_user.imap_port,
                             secure=secure, user=mail_user.username,
                             password=mail_user.password, tls_verify=verify, timeout=10.0,
                             allow_private=True)


def test_the_unverified_context_holds_no_ca_and_is_otherwise_the_verifying_one():
    verifying, unverified = imap.tls_context(True), imap.tls_context(False)
    assert unverified.cert_store_stats()["x509_ca"] == 0
    assert unverified.get_ca_certs() == []
    assert unverified.verify_mode == ssl.CERT_NONE
    assert not unverified.check_hostname
    assert verifying.verify_mode == ssl.CERT_REQUIRED
    assert verifying.check_hostname
    assert unverified.options == verifying.options
    assert unverified.minimum_version == verifying.minimum_version == ssl.TLSVersion.TLSv1_2
    assert unverified.protocol == verifying.protocol


def test_each_mode_keeps_one_shared_context():
    assert imap.tls_context(False) is imap.tls_context(False)
    assert imap.tls_context(True) is imap.tls_context(True)
    assert imap.tls_context(True) is not imap.tls_context(False)


@pytest.mark.parametrize("secure", [False, True], ids=["starttls", "implicit"])
def test_an_unverified_mailbox_logs_in_over_tls(mail_user, secure):
    client = imap.connect(_settings(mail_user, secure, verify=False))
    try:
        assert client._imap.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert client.noop()
    finally:
        client.logout()


@pytest.mark.parametrize("secure", [False, True], ids=["starttls", "implicit"])
def test_a_verified_mailbox_refuses_a_certificate_no_ca_vouches_for(mail_user, secure):
    """The test Dovecot's certificate is self-signed: verification fails, and no login is
    tried over the unverified connection."""
    with pytest.raises(imap.ImapError) as failure:
        imap.connect(_settings(mail_user, secure, verify=True))
    assert "certificate" in str(failure.value).lower()
    assert not isinstance(failure.value, imap.AuthenticationFailed)


def test_an_accounts_oldest_tls_version_has_a_context_of_its_own():
    raised = imap.tls_context(False, "TLSv1.3")
    assert raised.minimum_version == ssl.TLSVersion.TLSv1_3
    assert raised is imap.tls_context(False, "TLSv1.3")
    assert imap.tls_context(False).minimum_version == ssl.TLSVersion.TLSv1_2  # untouched
