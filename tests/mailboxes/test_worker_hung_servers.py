"""Hung IMAP servers cannot starve the others: with 20 accounts on servers that accept and
never greet, or greet and never answer the login, 30 accounts on Dovecot are all connected
within seconds of a worker's start, on its first start and after a restart.

The old worker gave every connect the whole command timeout and ran connects on its sync
pool: six hung connects at a time held all of its timer threads for 15 s each."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import EmailAccount
from tests.base import wait_for
from tests.mailboxes.helpers import register
from tests.servers.hung_imap import HungImapServer

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]
HEALTHY, HUNG = 30, 20
BOUND = 30.0  # seconds from a worker's start to every healthy account connected (the old worker: > 90)


@pytest.fixture
def hung_servers():
    with HungImapServer("silent") as silent, HungImapServer("greet") as greet:
        yield silent, greet


def _register_hung(tenant, server, prefix: str, count: int) -> list[EmailAccount]:
    return [services.register_account(tenant, {
        "account": f"{prefix}{i}",
        "imap": {"host": "127.0.0.1", "port": server.port, "secure": False,
                 "auth": {"user": f"{prefix}{i}", "pass": "secret"}},
    }) for i in range(count)]


def _connected_since(accounts, since) -> int:
    return EmailAccount.objects.filter(pk__in=[a.pk for a in accounts], state_changed_at__gte=since,
                                       state=EmailAccount.State.CONNECTED).count()


def _time_to_connect(start_worker, healthy) -> tuple[float, object]:
    started, since = time.monotonic(), timezone.now()
    worker = start_worker()
    wait_for(lambda: _connected_since(healthy, since) == len(healthy), timeout=90)
    return time.monotonic() - started, worker


def test_hung_servers_cannot_hold_up_healthy_accounts(
        alice, dovecot, hung_servers, start_worker, settings):
    for name in ("CONNECT", "GREETING", "TLS", "LOGIN"):
        setattr(settings, f"IMAP_{name}_TIMEOUT", 3)
    settings.IMAP_CONNECT_THREADS = 4
    silent, greet = hung_servers
    healthy = [register(alice.tenant, dovecot.add_user(), f"ok{i}") for i in range(HEALTHY)]
    hung = (_register_hung(alice.tenant, silent, "silent", HUNG // 2)
            + _register_hung(alice.tenant, greet, "greet", HUNG // 2))

    first, worker = _time_to_connect(start_worker, healthy)
    assert first < BOUND, f"healthy accounts took {first:.1f} s on a first start"

    def errors():
        return {a.last_error["error"] for a in EmailAccount.objects.filter(
            pk__in=[a.pk for a in hung], state=EmailAccount.State.CONNECT_ERROR)}

    # Each hung phase is named (and the rest of the hung accounts wait in the suspect lane).
    wait_for(lambda: any("greeting" in e for e in errors())
             and any("LOGIN" in e for e in errors()), timeout=30)

    worker.stop.set()  # a restart: the hung accounts are known to fail, and wait their turn
    wait_for(lambda: worker.leases.holder(healthy[0].pk) is None, timeout=30)
    again, _ = _time_to_connect(start_worker, healthy)
    assert again < BOUND, f"healthy accounts took {again:.1f} s after a restart"
    print(f"healthy accounts connected {first:.1f} s after a first start, {again:.1f} s after "
          "a restart")
