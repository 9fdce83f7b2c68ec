"""A ``read`` token cannot change anything, not even through a GET: ``markAsSeen=true`` stores
``\\Seen`` on the server, so it needs a token that may write. Against real Dovecot."""

from __future__ import annotations

import re

import pytest

from tests.base import api_client
from tests.mailboxes.helpers import events_of
from tests.servers import seed
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox_messages():
    return seed.build_named_messages()


def _server_flags(mail_user) -> dict:
    """Each message's stored flags (``\\Recent`` is a session's view, not stored)."""
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        return {uid: sorted(set(flags) - {b"\\Recent"})
                for uid, flags in other.get_flags(other.search("ALL")).items()}


def test_a_read_token_cannot_mark_a_message_seen(alice, synced, mail_user):
    account, messages = synced.account, synced.listing()
    reader = alice.client_with("read")
    message = messages[0]
    url = f"/v1/account/box/message/{message['id']}"
    before = _server_flags(mail_user)
    for value in ("true", "True", "1", "yes", "on"):
        response = reader.get(url, {"markAsSeen": value})
        assert response.status_code == 403, value
        body = response.json()
        assert body["code"] == "InsufficientScope"
        assert body["statusCode"] == 403
        assert "markAsSeen" in body["message"]
        # HEAD runs the GET handler: it must be refused the same way.
        assert reader.head(url, {"markAsSeen": value}).status_code == 403, value
    assert _server_flags(mail_user) == before
    assert events_of(account, "messageUpdated") == []
    # Reading without changing stays allowed, and an api token may still mark as seen.
    assert reader.get(url).status_code == 200
    assert reader.get(url, {"markAsSeen": "false"}).status_code == 200
    assert b"\\Seen" not in _server_flags(mail_user)[message["uid"]]
    assert alice.client.get(url, {"markAsSeen": "true"}).json()["unseen"] is False


def test_no_get_route_changes_anything_for_a_read_token(alice, synced, mail_user):
    """Every GET of the OpenAPI document, with every boolean option switched on, called with a
    read token: nothing on the server or in the index changes and no event is raised."""
    messages = synced.listing()
    reader = alice.client_with("read")
    with_attachments = next(m for m in messages if m["hasAttachments"])
    detail = alice.client.get(f"/v1/account/box/message/{with_attachments['id']}").json()
    values = {"account": "box", "id": messages[0]["id"],
              "attachment": detail["attachments"][0]["id"], "thread": messages[0]["threadId"]}
    schema = api_client().get("/v1/openapi.json").json()
    flags_before, events_before = _server_flags(mail_user), Event.objects.count()
    called = 0
    for path, operations in schema["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "nothing"), path)
        query = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            if parameter["schema"].get("type") == "boolean":
                query[parameter["name"]] = "true"
            elif parameter.get("required"):
                query[parameter["name"]] = {"path": "INBOX", "email": "someone@gmail.com"}[
                    parameter["name"]]
        response = reader.get(url, query)
        assert response.status_code in (200, 400, 403, 404), (path, response.status_code)
        if response.status_code == 403:
            assert response.json()["code"] == "InsufficientScope", path
        called += 1
    assert called >= 20
    assert _server_flags(mail_user) == flags_before
    assert Event.objects.count() == events_before


def test_a_read_token_may_search_by_post_but_not_write(alice, synced, mail_user):
    """POST .../search only reads (EmailEngine's clients search with POST): a read token may;
    a write by POST stays refused."""
    messages = synced.listing()
    reader = alice.client_with("read")
    found = reader.post("/v1/account/box/search?path=INBOX",
                        {"search": {"uid": str(messages[0]["uid"])}}, format="json")
    assert found.status_code == 200, found.json()
    assert [m["id"] for m in found.json()["messages"]] == [messages[0]["id"]]
    refused = reader.post("/v1/account/box/mailbox", {"path": ["Made by a reader"]},
                          format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "InsufficientScope"
