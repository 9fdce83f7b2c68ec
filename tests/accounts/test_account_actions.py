"""``PUT /v1/account/{account}/reconnect|pause|resume``: what the API records and announces."""

import json
import time

import pytest

from accounts.announcements import account_changes_channel
from accounts.models import EmailAccount
from tests.base import account_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def announcements(redis_db):
    pubsub = redis_db.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(account_changes_channel())

    def read():
        out = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                out.append(json.loads(message["data"])["action"])
        return out

    yield read
    pubsub.close()


def test_pause_and_resume(alice, announcements, django_capture_on_commit_callbacks):
    alice.client.post("/v1/account", account_payload(), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.put("/v1/account/sales/pause", format="json")
    assert response.status_code == 200
    assert response.json() == {"account": "sales", "state": "paused"}
    row = EmailAccount.objects.get(account_id="sales")
    assert row.paused
    assert row.state == "paused"
    assert alice.client.get("/v1/account/sales").json()["state"] == "paused"
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.put("/v1/account/sales/resume", {}, format="json")
    assert response.json()["state"] == "init"
    assert not EmailAccount.objects.get(account_id="sales").paused
    assert announcements()[-2:] == ["paused", "resumed"]


def test_reconnect_is_announced(alice, announcements, django_capture_on_commit_callbacks):
    alice.client.post("/v1/account", account_payload(), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.put("/v1/account/sales/reconnect", {"reconnect": True},
                                    format="json")
    assert response.json() == {"reconnect": True}
    assert announcements()[-1] == "reconnect"


def test_reconnect_false_asks_for_nothing_as_in_emailengine(
        alice, announcements, django_capture_on_commit_callbacks):
    """EmailEngine reconnects only for ``{"reconnect": true}`` and echoes the value; an empty
    body keeps reconnecting here (our own clients send none)."""
    alice.client.post("/v1/account", account_payload(), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.put("/v1/account/sales/reconnect", {"reconnect": False},
                                    format="json")
    assert response.json() == {"reconnect": False}
    assert "reconnect" not in announcements()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.put("/v1/account/sales/reconnect", format="json")
    assert response.json() == {"reconnect": True}
    assert announcements()[-1] == "reconnect"


def test_actions_are_tenant_scoped_and_validated(alice, bob):
    alice.client.post("/v1/account", account_payload(), format="json")
    for action in ("reconnect", "pause", "resume"):
        assert bob.client.put(f"/v1/account/sales/{action}", format="json").status_code == 404
        bad = alice.client.put(f"/v1/account/sales/{action}", {"nope": 1}, format="json")
        assert bad.status_code == 400
        assert alice.client_with("read").put(f"/v1/account/sales/{action}").status_code == 403
    assert not EmailAccount.objects.get(account_id="sales").paused


def test_watch_folders_are_stored_shown_and_validated(alice):
    api = alice.client
    assert api.post("/v1/account", account_payload(watchFolders=["Archive"]),
                    format="json").status_code == 200
    assert api.get("/v1/account/sales").json()["watchFolders"] == ["Archive"]
    version = EmailAccount.objects.get(account_id="sales").config_version
    assert api.put("/v1/account/sales", {"watchFolders": ["INBOX"]},
                   format="json").status_code == 200
    row = EmailAccount.objects.get(account_id="sales")
    assert row.watch_folders == ["INBOX"]
    assert row.config_version == version + 1
    for bad in ([], ["a", "b"], [1], "INBOX", ["x" * 1025]):
        response = api.put("/v1/account/sales", {"watchFolders": bad}, format="json")
        assert response.status_code == 400, bad
        assert response.json()["code"] == "InputValidationError"
    assert EmailAccount.objects.get(account_id="sales").watch_folders == ["INBOX"]
