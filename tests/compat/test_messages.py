"""EmailEngine's message routes as its documentation shows them, against real Dovecot: the
message details (headers, text.id, encodedSize, specialUse, attachments), the text route,
the message query parameters, listings' per-message fields and cursors, the source and
attachment downloads' Content-Disposition, and message lookups by emailId / Message-ID."""

from __future__ import annotations

import pytest

from tests.servers import seed

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def inbox_messages():
    return seed.build_named_messages()


def _message(synced, name: str, **params) -> dict:
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of[name]}", params)
    assert response.status_code == 200, response.content
    return response.json()


# --- GET /v1/account/{account}/message/{message} --------------------------------------------


def test_headers_are_always_sent_lowercase_names_to_lists(synced):
    headers = _message(synced, "plain")["headers"]
    assert headers["message-id"] == [seed.MESSAGE_IDS["plain"]]
    assert headers["subject"] == [seed.SUBJECTS["plain"]]
    assert all(name == name.lower() for name in headers)
    assert all(isinstance(values, list) for values in headers.values())


def test_headers_false_leaves_them_out(synced):
    assert "headers" not in _message(synced, "plain", headers="false")


def test_text_has_id_and_encoded_size_per_kind(synced):
    text = _message(synced, "alternative")["text"]
    assert isinstance(text["id"], str)
    assert isinstance(text["encodedSize"]["plain"], int)
    assert isinstance(text["encodedSize"]["html"], int)
    assert text["encodedSize"]["html"] > 0


def test_encoded_size_lists_only_the_kinds_the_message_has(synced):
    assert set(_message(synced, "plain")["text"]["encodedSize"]) == {"plain"}


def test_special_use_of_the_folder_and_of_the_message(synced):
    message = _message(synced, "plain")
    assert message["specialUse"] == "\\Inbox"
    assert message["messageSpecialUse"] == "\\Inbox"


def test_attachment_entries_in_emailengine_shape(synced):
    attachments = {a["contentType"]: a for a in _message(synced, "attachments")["attachments"]}
    image, pdf = attachments["image/png"], attachments["application/pdf"]
    assert image["contentId"] == f"<{seed.IMAGE_CID}>"
    assert image["embedded"] is True
    assert image["inline"] is True
    assert image["encodedInMessage"] is False
    assert isinstance(image["encodedSize"], int)
    assert pdf["embedded"] is False
    assert pdf["inline"] is False
    assert "contentId" in pdf


# --- GET /v1/account/{account}/text/{text} --------------------------------------------------


def test_text_route_returns_the_bodies_the_text_id_names(synced):
    text_id = _message(synced, "alternative")["text"]["id"]
    response = synced.client.get(f"/v1/account/box/text/{text_id}")
    assert response.status_code == 200
    body = response.json()
    assert "This week: text part." in body["plain"]
    assert "<h1>This week</h1>" in body["html"]
    assert body["hasMore"] is False


def test_text_route_text_type_and_max_bytes(synced):
    text_id = _message(synced, "alternative")["text"]["id"]
    body = synced.client.get(f"/v1/account/box/text/{text_id}",
                             {"textType": "plain", "maxBytes": 9}).json()
    assert body["plain"] == "This week"
    assert body["html"] is None
    assert body["hasMore"] is True


def test_text_route_text_id_from_the_listing(synced):
    listed = {m["id"]: m for m in synced.listing()}
    text_id = listed[synced.id_of["plain"]]["text"]["id"]
    body = synced.client.get(f"/v1/account/box/text/{text_id}").json()
    assert body["plain"].startswith("Hi Bob,")


def test_text_route_unknown_or_message_id_is_404(synced):
    for bad in (synced.id_of["plain"], "AAAAAQAAAAE", "x"):
        response = synced.client.get(f"/v1/account/box/text/{bad}")
        assert response.status_code == 404
        assert response.json()["statusCode"] == 404


def test_text_route_bad_text_type_is_400(synced):
    text_id = _message(synced, "plain")["text"]["id"]
    response = synced.client.get(f"/v1/account/box/text/{text_id}", {"textType": "pdf"})
    assert response.status_code == 400
