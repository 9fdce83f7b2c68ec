"""Shared fixtures: the real servers (Dovecot, SMTP, Redis, PostgreSQL) and tenants.

Servers start once per test session (per xdist worker); users are created per test, so tests
never see each other's mail.
"""

from __future__ import annotations

import imaplib
import resource
import socket
import threading

import pytest

from emailapi.lib import names
from tests.base import OutsiderFixture, TenantFixture, make_tenant
from tests.servers.dovecot import Dovecot
from tests.servers.oauth2 import OAuth2Server, dovecot_oauth2_config
from tests.servers.smtp import SmtpServer


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite: also run on SQLite, make run's default database (make test runs "
        "them with EMAILAPI_TEST_DATABASE=sqlite)")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database; at the end, the sessions that threads of finished tests
    left open on it are ended (servers and dispatchers run in threads, and a thread's
    connection is only closed when collected), so that it can be dropped instead of being
    left behind with a warning."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def dovecot():
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
def mail_user(dovecot):
    return dovecot.add_user()


@pytest.fixture(scope="session")
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


# The OAuth2 tests' servers (helpers in tests/accounts/oauth2_helpers.py).
@pytest.fixture(scope="module")
def provider():
    server = OAuth2Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth_dovecot(provider):
    """A Dovecot whose passdb also takes bearer tokens, checked by introspection at
    ``provider`` (password logins keep working, so tests can seed mail)."""
    server = Dovecot(extra_config=dovecot_oauth2_config(provider)).start()
    yield server
    server.stop()


@pytest.fixture
def allow_http(settings):
    settings.EMAILAPI_OAUTH2_ALLOW_HTTP = True
    settings.EMAILAPI_SERVICE_URL = "http://testserver"


@pytest.fixture
def oauth_user(oauth_dovecot, provider):
    user = oauth_dovecot.add_user()
    provider.sign_in_as = user.username
    provider.access_ttl = 3600
    provider.refresh_calls = 0
    return user


@pytest.fixture
def smtp_user(smtp_server, mail_user):
    """A Dovecot user whose credentials the SMTP server also accepts; its inbox of sent mail
    starts empty."""
    smtp_server.add_user(mail_user.username, mail_user.password)
    smtp_server.clear()
    return mail_user


@pytest.fixture
def redis_db():
    """A clean Redis test database (this worker's own DB number)."""
    from emailapi.lib.redis import get_redis

    client = get_redis()
    client.flushdb()
    yield client


# Fixtures whose tests reach Redis through the app (tokens, account changes, leases, streams).
_STORE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "redis_db"}


@pytest.fixture(autouse=True)
def _clean_redis(request):
    """Tests that use the database (and with it the app's Redis side) start on a clean Redis
    DB; pure tests (parsers, compilers) do not touch Redis, so they run with it stopped."""
    if request.node.get_closest_marker("django_db") or _STORE_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("redis_db")


@pytest.fixture(autouse=True)
def _forget_names():
    """Host name answers are remembered per process (``emailapi.lib.names``): a test whose
    resolver answers differently (rebinding, fenced names) must not get another test's."""
    names.forget()


@pytest.fixture
def start_worker():
    """Start ImapWorkers running their real loop (``run``) in threads: the end-to-end tests'
    workers (most worker tests drive the loop themselves: ``tests.mailboxes.helpers.
    DrivenWorker``). All are stopped gracefully at the end of the test."""
    from mailboxes.worker.imap_worker import ImapWorker

    started = []

    def start(**kwargs) -> ImapWorker:
        worker = ImapWorker(**kwargs)
        worker.gc_freeze = False  # not pytest's objects (``DrivenWorker``)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, _thread in started:
        worker.stop.set()
    for _worker, thread in started:
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


@pytest.fixture
def imap_worker(settings, start_worker):
    """One ImapWorker running its real loop in a thread (end-to-end tests: browser, webhooks),
    fast claim ticks."""
    settings.IMAP_CLAIM_INTERVAL = 1
    settings.IMAP_LEASE_TTL = 5
    settings.IMAP_POLL_INTERVAL = 60
    return start_worker()


@pytest.fixture
def alice(db) -> TenantFixture:
    """A tenant with a full-access (``api``) token."""
    return make_tenant("Alice Corp")


@pytest.fixture
def bob(db) -> TenantFixture:
    """Another tenant: must never see or touch Alice's data."""
    return make_tenant("Bob Ltd")


@pytest.fixture
def outsider(db, dovecot) -> OutsiderFixture:
    """A tenant of its own, with its own token and its own synced mailbox, registered under
    the same account id (``box``) as the mailbox tests give Alice: whatever it reaches of
    Alice's is a leak, not a name that happens to be free. It holds one message, "Outsider's
    own"."""
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import open_session, register
    from tests.servers import seed

    tenant = make_tenant("Outsider Ltd")
    user = dovecot.add_user()
    seed.seed_mailbox(user, messages=[seed.make_message(subject="Outsider's own")])
    account = register(tenant.tenant, user)
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()
    return OutsiderFixture(tenant.tenant, tenant.token, tenant.client, account, user)


@pytest.fixture
def inbox_messages():
    """What ``synced`` seeds into INBOX: a list of messages, or a dict of them by name. A
    module overrides it to seed its own."""
    from tests.servers import seed

    return seed.build_messages()


@pytest.fixture
def account_fields() -> dict:
    """Fields ``synced`` registers its account with beyond the IMAP settings (a module
    overrides it, e.g. ``{"email": ...}``)."""
    return {}


@pytest.fixture
def before_sync():
    """What ``synced`` does on the server after seeding and before the first sync:
    ``before_sync(mail_user, uids)`` (a module overrides it to set flags, fill other folders)."""
    return lambda mail_user, uids: None


@pytest.fixture
def synced(alice, mail_user, inbox_messages, account_fields, before_sync):
    """Alice's account ``box`` on a Dovecot user seeded with ``inbox_messages``, indexed by a
    first sync (``tests.mailboxes.helpers.SyncedMailbox``)."""
    from mailboxes.command_pool import pool
    from mailboxes.sync.account import sync_account
    from tests.mailboxes.helpers import SyncedMailbox, open_session, register
    from tests.servers import seed

    uids = seed.seed_mailbox(mail_user, messages=list(
        inbox_messages.values() if isinstance(inbox_messages, dict) else inbox_messages))
    before_sync(mail_user, uids)
    account = register(alice.tenant, mail_user, **account_fields)
    session = open_session(account)
    assert sync_account(session, account).complete
    yield SyncedMailbox(account, session, uids, inbox_messages, alice.client)
    try:
        session.client.logout()
    except Exception:  # noqa: BLE001 - the test may have ended the session itself
        pass
    pool.close_all()


@pytest.fixture
def imap_commands(monkeypatch):
    """The IMAP commands every client of this process sends (observed, not altered)."""
    sent: list[bytes] = []
    original = imaplib.IMAP4.send

    def send(self, data):
        sent.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", send)
    return sent


@pytest.fixture
def no_remote_names(monkeypatch):
    """Name resolution answers for loopback only: a host a fuzz test makes up never reaches a
    DNS server."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in (None, "localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        if isinstance(host, str):
            host.encode("idna")  # as the real one does first (a UnicodeError for a long label)
        raise socket.gaierror(socket.EAI_NONAME, "fenced by the test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def descriptors_above_1023():
    """Open descriptors until the next socket gets a number above 1023 (closed after):
    ``select.select`` refuses such descriptors, and a process holding thousands of
    connections has them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-files hard limit ({hard}) keeps descriptors below 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    while True:
        probe = socket.socket()
        held.append(probe)
        if probe.fileno() > 1030:
            break
    held.pop().close()  # this number (and a few below) goes to the IMAP session
    for sock in held[-4:]:
        sock.close()
    yield
    for sock in held:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
