"""Throwaway TLS material for the test mail servers.

Why: the API must be exercised over IMAPS, IMAP+STARTTLS and SMTP+STARTTLS,
but tests must never depend on files from the host (/etc/ssl, snakeoil certs)
or on the network.  Each server instance therefore generates its own
self-signed certificate at start-up, valid for 127.0.0.1 and localhost, with
the ``cryptography`` package.  An EC P-256 key is used because generating it
takes well under a millisecond (RSA-2048 would cost ~50-100 ms per instance).

The certificate is its own CA (basicConstraints CA:TRUE), so a client can
either verify it by loading ``cert_path`` as ``cafile`` or skip verification
(``rejectUnauthorized: false`` in API terms).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_NAMES = ("127.0.0.1", "localhost")


def _subject_alt_names() -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]
    )


def _build_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(_subject_alt_names(), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def write_self_signed_cert(directory: str, stem: str = "server") -> tuple[str, str]:
    """Create ``<stem>.crt`` / ``<stem>.key`` (PEM) in *directory*.

    Returns ``(cert_path, key_path)``.  The key file is 0600, the
    certificate world-readable.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_certificate(key)
    cert_path = os.path.join(directory, f"{stem}.crt")
    key_path = os.path.join(directory, f"{stem}.key")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server-side context for Python servers (aiosmtpd)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A client context trusting *cafile*, or verifying nothing if None."""
    if cafile is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)
