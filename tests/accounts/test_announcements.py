"""A tenant-wide change (its proxy, its plan) is announced to the workers for each of its
accounts, pipelined: a round trip per ``announcements.BATCH`` accounts, one commit callback."""

import json
import time

import pytest
from redis.client import Pipeline

from accounts import announcements, mail_proxy, plans
from accounts.announcements import account_changes_channel
from accounts.models import EmailAccount, Tenant

pytestmark = pytest.mark.django_db

ACCOUNTS = 25


@pytest.fixture
def heard(redis_db):
    """Reads the announcements published from now on, waiting until ``count`` came."""
    pubsub = redis_db.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(account_changes_channel())

    def read(count: int) -> list[dict]:
        out = []
        deadline = time.monotonic() + 10
        while len(out) < count and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                out.append(json.loads(message["data"]))
        return out

    yield read
    pubsub.close()


@pytest.fixture
def round_trips(monkeypatch):
    """Counts the pipelines of PUBLISHes sent to Redis (the real Redis answers them); other
    pipelines of this process (a thread of the app's, meanwhile) are not announcements."""
    counted = []
    execute = Pipeline.execute

    def counting(self, *args, **kwargs):
        names = {str(command[0][0]).upper() for command in self.command_stack}
        if names == {"PUBLISH"}:
            counted.append(len(self.command_stack))
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counting)
    monkeypatch.setattr(announcements, "BATCH", 10)
    return counted


@pytest.fixture
def many(alice):
    EmailAccount.objects.bulk_create(
        EmailAccount(tenant=alice.tenant, account_id=f"box-{n}", email=f"box{n}@example.com")
        for n in range(ACCOUNTS))
    return alice


def test_a_tenant_proxy_change_announces_each_account_in_batches(
        many, heard, round_trips, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert mail_proxy.reroute_accounts_without_own(many.tenant.pk) == ACCOUNTS
    assert len(callbacks) == 1
    assert round_trips == [10, 10, 5]
    got = heard(ACCOUNTS)
    assert sorted(entry["account"] for entry in got) == sorted(f"box-{n}" for n in range(ACCOUNTS))
    assert {entry["action"] for entry in got} == {"updated"}
    assert {entry["tenant"] for entry in got} == {many.tenant.pk}


def test_a_suspended_tenant_announces_each_paused_account_in_batches(
        many, heard, round_trips, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        plans.suspend(many.tenant, "unpaid")
    assert Tenant.objects.get(pk=many.tenant.pk).status == Tenant.Status.SUSPENDED
    assert len(callbacks) == 1
    assert round_trips == [10, 10, 5]
    got = heard(ACCOUNTS)
    assert len({entry["id"] for entry in got}) == ACCOUNTS
    assert {entry["action"] for entry in got} == {"paused"}


def test_nothing_to_announce_sends_nothing(alice, round_trips, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert mail_proxy.reroute_accounts_without_own(alice.tenant.pk) == 0
    assert callbacks == []
    assert round_trips == []
