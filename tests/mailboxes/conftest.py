"""Fixtures of the mailbox tests."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from mailboxes.imap import client as imap_client
from tests.mailboxes.helpers import TTL, DrivenWorker, spawn_imapworker
from tests.mailboxes.sending_helpers import sending_account


@pytest.fixture
def trusted_certificates(tmp_path, monkeypatch, dovecot, smtp_server):
    """Dovecot's and the SMTP server's self-signed certificates trusted as a CA's would be
    (the verifying TLS context reads ``SSL_CERT_FILE``): their TLS then verifies, as a real
    provider's does."""
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(b"".join(open(path, "rb").read()
                                for path in (dovecot.cert_path, smtp_server.cert_path)))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    imap_client._tls_context.cache_clear()
    yield
    imap_client._tls_context.cache_clear()


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    """Alice's account ``box`` on a Dovecot user that the test SMTP server also accepts,
    synced (the sending tests' mailbox)."""
    return sending_account(alice.tenant, smtp_user, smtp_server)


@pytest.fixture
def verified_account(alice, smtp_user, smtp_server, trusted_certificates):
    """``account``, checking both servers' certificates (trusted here): what a send's own
    proxy, or the tenant's set after its password was given, needs (``accounts.secret_routes``)."""
    return sending_account(alice.tenant, smtp_user, smtp_server, verify_tls=True)


@pytest.fixture
def spawn_worker(settings):
    """Start ``manage.py imapworker`` subprocesses (lease TTL ``TTL`` unless given) on the
    test database; any still running at the end of the test is SIGKILLed."""
    spawned = []

    def spawn(worker_id: str, ttl: int = TTL) -> subprocess.Popen:
        spawned.append(spawn_imapworker(settings, worker_id, ttl))
        return spawned[-1]

    yield spawn
    for process in spawned:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def fast_worker_settings(settings):
    """Worker timings for tests: claim ticks every second, short leases, a STATUS poll a
    minute away (so only IDLE or NOTIFY can announce a change within seconds)."""
    settings.IMAP_CLAIM_INTERVAL = 1
    settings.IMAP_LEASE_TTL = 5
    settings.IMAP_POLL_INTERVAL = 60


@pytest.fixture
def driven_worker(settings):
    """``DrivenWorker``s (claim ticks only when the test asks, so leases last longer than a
    test); each is shut down gracefully at the end of the test."""
    settings.IMAP_LEASE_TTL = 60
    made = []

    def make(**kwargs) -> DrivenWorker:
        made.append(DrivenWorker(**kwargs))
        return made[-1]

    yield make
    for worker in made:
        worker.shutdown()
