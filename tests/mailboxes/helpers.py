"""Helpers for engine tests: register a Dovecot user as an account, open a session, read the
outbox."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from django.db import connection
from rest_framework.test import APIClient

from accounts import announcements, services
from accounts.models import EmailAccount
from emailapi.lib.redis import get_redis
from mailboxes import connection_settings
from mailboxes.imap import client as imap
from mailboxes.imap.session import ImapSession
from mailboxes.models import Folder
from mailboxes.worker.connection import AccountConnection
from tests.base import TIMEOUT_FACTOR
from webhooks.models import Event


def register(tenant, user, account_id: str = "box", verify_tls: bool = False,
             **extra) -> EmailAccount:
    """``verify_tls``: the account checks Dovecot's certificate (STARTTLS), which verifies
    only with the ``trusted_certificates`` fixture."""
    imap_settings = user.imap_settings(secure=False)
    imap_settings["tls"] = {"rejectUnauthorized": verify_tls}
    return services.register_account(tenant, {"account": account_id, "imap": imap_settings,
                                               **extra})


def with_password(account: EmailAccount, password: str, **change) -> dict:
    """``change`` (an account update) with ``password`` given again for each server the
    account has: what a new proxy or weaker TLS needs (``accounts.secret_routes``)."""
    for section in ("imap", "smtp"):
        stored = getattr(account, section)
        if stored:
            change[section] = {**(change.get(section) or {}), "auth": {
                "user": stored["auth"]["user"], "pass": password}}
    return change


def synced_inbox(tenant, user) -> Folder:
    """An INBOX row of a freshly registered account that looks fully synced and empty, for
    tests that write messages through the index writer themselves."""
    account = register(tenant, user)
    return Folder.objects.create(email_account=account, path="INBOX", name="INBOX", number=1,
                                 uidvalidity=7, uidnext=1, synced_uidnext=1, backfill_below=0,
                                 messages=0)


def server_subjects(mail_user, folder: str) -> list[str]:
    """The subjects in ``folder`` as another client sees them on the server, sorted."""
    with mail_user.imap_client() as other:
        other.select_folder(folder, readonly=True)
        uids = other.search("ALL")
        fetched = other.fetch(uids, ["ENVELOPE"]) if uids else {}
    return sorted(v[b"ENVELOPE"].subject.decode() for v in fetched.values())


def open_session(account: EmailAccount) -> ImapSession:
    return ImapSession(imap.connect(connection_settings.account_imap_settings(account)))


def connect_once(account: EmailAccount) -> EmailAccount:
    """One connect of a worker's connection to the account (connect, log in, first steps),
    closed again; the account's row as that left it (its state, its lastError)."""
    conn = AccountConnection(account.pk, threading.Event())
    try:
        conn.start()
    finally:
        conn.close()
    return EmailAccount.objects.get(pk=account.pk)


def events_of(account: EmailAccount, *kinds: str) -> list[Event]:
    rows = Event.objects.filter(tenant_id=account.tenant_id, account_id=account.account_id)
    if kinds:
        rows = rows.filter(event__in=kinds)
    return list(rows.order_by("created_at"))


@dataclass
class SyncedMailbox:
    """A registered account (id ``box``) whose seeded INBOX a first sync indexed (the
    ``synced`` fixture). ``seeded`` is what was seeded: a list, or a dict by name."""

    account: EmailAccount
    session: ImapSession  # still logged in; logged out at the end of the test
    uids: list[int]  # the seeded messages' INBOX UIDs, in seeding order
    seeded: list | dict
    client: APIClient

    @property
    def uid_of(self) -> dict[str, int]:
        """UID by name (when ``seeded`` is a dict)."""
        return dict(zip(self.seeded, self.uids, strict=True))

    def listing(self) -> list[dict]:
        """``GET .../messages`` of INBOX now (every message on one page)."""
        url = f"/v1/account/{self.account.account_id}/messages?path=INBOX&pageSize=100"
        return self.client.get(url).json()["messages"]

    @cached_property
    def ids(self) -> list[str]:
        """The seeded messages' API ids, in seeding order."""
        id_by_uid = {m["uid"]: m["id"] for m in self.listing()}
        return [id_by_uid[uid] for uid in self.uids]

    @property
    def id_of(self) -> dict[str, str]:
        """API id by name (when ``seeded`` is a dict)."""
        return dict(zip(self.seeded, self.ids, strict=True))


class DrivenWorker:
    """An ``ImapWorker`` whose loop the test runs from its own thread, one step at a time,
    instead of ``run`` in a thread of its own: ``claim()`` is a claim tick, ``until(...)`` runs
    the loop's other steps (account commands, finished steps, due timers, the selector) until a
    condition holds. The API's account announcements on Redis are handed to the worker as
    ``run``'s listener hands them. Steps still run on the worker's pool and connect threads."""

    def __init__(self, gc_freeze: bool = False, **kwargs):
        from mailboxes.worker.imap_worker import ImapWorker

        self.worker = ImapWorker(**kwargs)
        # Freezing after a connect wave would freeze pytest's own objects with the worker's
        # (and collect all of them each time): only the test of it asks for it.
        self.worker.gc_freeze = gc_freeze
        self.worker.next_claim = math.inf  # claim ticks only when the test asks for them
        self.worker.next_presence_look = math.inf  # nor one for a worker found gone
        self._announcements = get_redis().pubsub(ignore_subscribe_messages=True)
        self._announcements.subscribe(announcements.account_changes_channel())
        self._announcements.get_message(timeout=5.0)  # subscribed before anything is announced

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def claim(self) -> bool:
        """One claim tick (renew, drop, rebalance, claim)."""
        return self.worker.claim_tick()

    def turn(self, wait: float = 0.02) -> None:
        """One pass of the loop without its claim tick."""
        while message := self._announcements.get_message():
            self.worker.commands.put(json.loads(message["data"]))
        self.worker.step(timeout=wait)

    def until(self, predicate, timeout: float = 20.0, claim: bool = False):
        """Turn the loop until ``predicate()`` is truthy (returned); with ``claim``, claim
        ticks run at the worker's ``IMAP_CLAIM_INTERVAL`` meanwhile."""
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        if claim:
            self.worker.next_claim = self.worker.next_presence_look = 0.0
        try:
            while True:
                self.turn()
                value = predicate()
                if value:
                    return value
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        finally:
            self.worker.finish_tick()  # one the loop began: none goes on after this
            self.worker.next_claim = self.worker.next_presence_look = math.inf

    def idle(self, pk: int) -> bool:
        """The account's session is idling: registered with the selector, no step running."""
        slot = self.worker.slots.get(pk)
        return slot is not None and not slot.busy and slot.registered is not None

    def shutdown(self) -> None:
        self.worker.shutdown()
        self._announcements.close()


def claimed_and_idle(worker: DrivenWorker, accounts) -> None:
    """One claim tick of ``worker``, then its loop until every one of ``accounts`` is recorded
    ``connected`` and its session idles."""
    worker.claim()
    worker.until(lambda: all(
        EmailAccount.objects.get(pk=a.pk).state == "connected" and worker.idle(a.pk)
        for a in accounts))


def held_back(monkeypatch, obj, name: str) -> threading.Event:
    """Make ``obj.name`` wait until the returned event is set (a minute at most), then call
    through: a call a slow server or database would keep waiting."""
    gate = threading.Event()
    original = getattr(obj, name)

    def waiting(*args, **kwargs):
        gate.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, waiting)
    return gate


def counted(obj, name: str) -> list:
    """Count the calls of ``obj.name`` that returned (a list that grows by one each)."""
    calls: list = []
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            calls.append(name)

    setattr(obj, name, wrapper)
    return calls


ROOT = Path(__file__).resolve().parents[2]
TTL = 4  # lease TTL of spawned workers, seconds


def spawn_imapworker(settings, worker_id: str, ttl: int = TTL) -> subprocess.Popen:
    """A ``manage.py imapworker`` subprocess on the test database, lease TTL ``ttl`` (the
    ``spawn_worker`` fixture kills what is left of it). On SQLite that is the suite's
    database file, shared by processes as ``make run``'s web and workers share theirs."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=(f"sqlite:///{db['NAME']}" if connection.vendor == "sqlite" else
                      f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
        REDIS_URL=settings.REDIS_URL, EMAILAPI_SECRET=settings.EMAILAPI_SECRET,
        EMAILAPI_LEASE_TTL=str(ttl), EMAILAPI_CLAIM_INTERVAL="1",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "imapworker", "--worker-id", worker_id], cwd=ROOT,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
