"""The dashboard's live stream (``/dashboard/stream``) through a real daphne: the signed-in
session is the credential (no API token is made, none travels in a URL), it sees only its
organization's events, it ends with the session, and open streams cost no thread each.
The "Dashboard live updates" tokens earlier versions made are revoked by a migration."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client

from accounts import services
from accounts.models import ApiToken, Membership, User
from tests.base import api_client
from tests.webhooks.stream_clients import Daphne, EventStream
from webhooks import events, feed, sequencer

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def server(settings):
    daphne = Daphne(settings, EMAILAPI_STREAM_KEEPALIVE="1")
    yield daphne
    daphne.stop()


def signed_in(tenant, email: str, role: str = "viewer") -> Client:
    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def cookie(client: Client) -> dict[str, str]:
    name = django_settings.SESSION_COOKIE_NAME
    return {"Cookie": f"{name}={client.cookies[name].value}"}


def stream(server, client: Client | None, query: str = "") -> EventStream:
    return EventStream(server.port, f"/dashboard/stream{query}",
                       cookie(client) if client else None)


def publish(tenant, name: str, account: str) -> None:
    with transaction.atomic():
        events.record(tenant, name, account, {"account": account})
    sequencer.publish_pending()


def test_a_session_streams_its_organizations_events_only(server, alice, bob):
    viewer = signed_in(alice.tenant, "viewer@alice.test")
    tokens_before = ApiToken.objects.count()
    start = feed.head()
    live = stream(server, viewer, f"?since={start}")
    assert live.status == 200, live.body()
    assert live.headers["content-type"].startswith("text/event-stream")
    publish(bob.tenant, events.MESSAGE_NEW, "bobs-box")
    publish(alice.tenant, events.MESSAGE_NEW, "alices-box")
    event = live.next_event()
    assert event["event"] == "messageNew"
    assert event["data"]["account"] == "alices-box"
    live.close()
    # Neither the stream nor the pages that point to it make a token or show one.
    page = viewer.get("/dashboard").content.decode()
    assert 'data-stream="/dashboard/stream"' in page
    assert f'data-stream-events="{" ".join(events.ALL)}"' in page  # what the script hears
    assert "eapi_" not in page
    assert "access_token" not in page
    assert ApiToken.objects.count() == tokens_before


def test_no_session_a_forged_one_or_a_signed_out_one_is_refused(server, alice):
    owner = signed_in(alice.tenant, "owner@alice.test", "owner")
    old_cookie = cookie(owner)
    for headers in (None, {"Cookie": f"{django_settings.SESSION_COOKIE_NAME}=forged"}):
        refused = EventStream(server.port, "/dashboard/stream", headers)
        assert refused.status == 403
        assert json.loads(refused.body())["statusCode"] == 403
    assert owner.post("/logout").status_code == 302
    after = EventStream(server.port, "/dashboard/stream", old_cookie)
    assert after.status == 403
    after.close()
    # An API token is no way in: the dashboard's stream takes the session only.
    token = EventStream(server.port, f"/dashboard/stream?access_token={alice.token}")
    assert token.status == 403
    token.close()


def test_an_open_stream_ends_with_its_session(server, alice):
    """Checked every 4 keep-alives (1 s here): signing out, or losing the membership, ends an
    open stream; the browser's reconnect is then refused."""
    owner = signed_in(alice.tenant, "owner@alice.test", "owner")
    viewer = signed_in(alice.tenant, "viewer@alice.test")
    by_owner, by_viewer = stream(server, owner), stream(server, viewer)
    assert by_owner.status == by_viewer.status == 200
    owner.post("/logout")
    Membership.objects.filter(user__email="viewer@alice.test").delete()
    for live in (by_owner, by_viewer):
        assert live.ends_within(20)
        live.close()
    assert stream(server, owner).status == 403


def test_a_user_with_no_organization_left_is_refused(server, alice):
    viewer = signed_in(alice.tenant, "gone@alice.test")
    Membership.objects.filter(user__email="gone@alice.test").delete()
    refused = stream(server, viewer)
    assert refused.status == 403
    refused.close()


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_open_dashboard_streams_cost_no_thread_each(server, alice):
    viewer = signed_in(alice.tenant, "many@alice.test")
    start = feed.head()
    warm = stream(server, viewer, f"?since={start}")
    before = _threads(server.process.pid)
    clients = [stream(server, viewer, f"?since={start}") for _ in range(60)]
    assert all(client.status == 200 for client in clients)
    assert _threads(server.process.pid) <= before + 8  # the shared pools, not 60 threads
    publish(alice.tenant, events.MESSAGE_NEW, "box")
    for client in [warm, *clients]:
        assert int(client.next_event()["id"]) == start + 1
        client.close()


def test_the_migration_revokes_the_old_live_update_tokens(alice, settings):
    """Earlier dashboards made a read token per user for their stream and put it in a URL;
    those must stop working and leave the token lists."""
    settings.EMAILAPI_TOKEN_CACHE_SECONDS = 0  # processes start afresh after a migration
    migration = importlib.import_module(
        "accounts.migrations.0006_revoke_dashboard_live_tokens")
    owner = User.objects.create_user(email="owner@alice.test", password=PASSWORD)
    Membership.objects.create(tenant=alice.tenant, user=owner, role="owner")
    _, live_raw = services.issue_token(alice.tenant, "Dashboard live updates", ["read"],
                                       created_by=owner)
    _, own_raw = services.issue_token(alice.tenant, "ci", ["read"], created_by=owner)
    assert api_client(live_raw).get("/v1/accounts").status_code == 200
    migration.revoke_live_update_tokens(apps, None)
    assert api_client(live_raw).get("/v1/accounts").status_code == 401
    assert api_client(own_raw).get("/v1/accounts").status_code == 200
    listed = {t["name"] for t in alice.client.get("/v1/tokens").json()["tokens"]}
    assert listed == {"test", "ci"}
    client = Client()
    client.force_login(owner)
    page = client.get("/dashboard/tokens").content.decode()
    assert "Dashboard live updates" not in page
    assert "ci" in page
