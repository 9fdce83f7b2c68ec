"""EmailEngine's message routes as its documentation shows them, against real Dovecot: the
message details (headers, text.id, encodedSize, specialUse, attachments), the text route,
the message query parameters, listings' per-message fields and cursors, the source and
attachment downloads' Content-Disposition, and message lookups by emailId / Message-ID."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest

from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


HOSTILE_HTML = ('<p onclick="steal()">Hello <b>there</b><script>alert(1)</script>'
                '<a href="javascript:alert(2)">click</a>'
                '<iframe src="https://evil.example.test/"></iframe></p>')


@pytest.fixture
def inbox_messages():
    return {**seed.build_named_messages(),
            "hostile": seed.make_message(subject="Hostile HTML", body="Hello there\n",
                                         html=HOSTILE_HTML)}


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


# --- webSafeHtml, embedAttachedImages, preProcessHtml, documentStore --------------------------


def test_web_safe_html_removes_scripts_handlers_and_frames(synced):
    text = _message(synced, "hostile", webSafeHtml="true")["text"]
    assert "Hello <b>there</b>" in text["html"]
    assert "<script" not in text["html"]
    assert "onclick" not in text["html"]
    assert "javascript:" not in text["html"]
    assert "<iframe" not in text["html"]
    assert text["webSafe"] is True


def test_web_safe_html_returns_every_text_type_whatever_text_type_says(synced):
    text = _message(synced, "hostile", webSafeHtml="true", textType="plain")["text"]
    assert text["plain"] == "Hello there\n"
    assert text["html"]


def test_web_safe_html_embeds_cid_images_as_data_uris(synced):
    html = _message(synced, "attachments", webSafeHtml="true")["text"]["html"]
    encoded = base64.b64encode(seed.tiny_png()).decode()
    assert f'src="data:image/png;base64,{encoded}"' in html
    assert "cid:" not in html


def test_embed_attached_images_alone_leaves_the_html_unsanitised(synced):
    text = _message(synced, "attachments", embedAttachedImages="true")["text"]
    assert "data:image/png;base64," in text["html"]
    assert "webSafe" not in text


def test_without_options_the_html_is_as_sent(synced):
    text = _message(synced, "hostile")["text"]
    assert "<script>alert(1)</script>" in text["html"]
    assert "webSafe" not in text


def test_pre_process_html_makes_html_from_plain_text(synced):
    text = _message(synced, "plain", preProcessHtml="true")["text"]
    assert text["html"].startswith("<p>Hi Bob,</p>")
    assert text["webSafe"] is True


def test_text_route_takes_web_safe_html(synced):
    text_id = _message(synced, "hostile")["text"]["id"]
    body = synced.client.get(f"/v1/account/box/text/{text_id}", {"webSafeHtml": "true"}).json()
    assert "<script" not in body["html"]
    assert body["webSafe"] is True


def test_document_store_is_accepted_on_message_listing_and_search(synced):
    message = f"/v1/account/box/message/{synced.id_of['plain']}?documentStore=true"
    listing = "/v1/account/box/messages?path=INBOX&documentStore=true"
    search = "/v1/account/box/search?path=INBOX&documentStore=true"
    assert synced.client.get(message).status_code == 200
    assert synced.client.get(listing).status_code == 200
    assert synced.client.post(search, {"search": {"seen": False}},
                              format="json").status_code == 200


def test_use_outlook_search_is_accepted_and_changes_nothing(synced):
    """EmailEngine's MS Graph switch: IMAP accounts search alike with it or without."""
    search = "/v1/account/box/search?path=INBOX"
    plain = synced.client.post(search, {"search": {"seen": False}}, format="json")
    switched = synced.client.post(f"{search}&useOutlookSearch=true", {"search": {"seen": False}},
                                  format="json")
    assert switched.status_code == 200, switched.json()
    assert plain.json()["messages"]  # something to compare
    assert [m["id"] for m in switched.json()["messages"]] == [m["id"] for m in plain.json()["messages"]]
    assert synced.client.get(f"{search}&useOutlookSearch=true&search[seen]=false").status_code == 200


def test_use_outlook_search_takes_a_boolean_only(synced):
    response = synced.client.post("/v1/account/box/search?path=INBOX&useOutlookSearch=maybe",
                                  {"search": {"seen": False}}, format="json")
    assert response.status_code == 400
    assert "useOutlookSearch" in response.json()["details"]


def test_html_options_take_booleans_only(synced):
    url = f"/v1/account/box/message/{synced.id_of['plain']}"
    for name in ("webSafeHtml", "embedAttachedImages", "preProcessHtml", "documentStore"):
        response = synced.client.get(url, {name: "maybe"})
        assert response.status_code == 400
        assert response.json()["statusCode"] == 400


# --- listings: per-message text and attachments, cursors -------------------------------------


def _page(synced, **params) -> dict:
    response = synced.client.get("/v1/account/box/messages", {"path": "INBOX", **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_listed_messages_carry_text_id_and_encoded_size(synced):
    listed = {m["id"]: m for m in _page(synced, pageSize=100)["messages"]}
    text = listed[synced.id_of["alternative"]]["text"]
    assert isinstance(text["id"], str)
    assert set(text["encodedSize"]) == {"plain", "html"}


def test_listed_messages_carry_attachments(synced):
    listed = {m["id"]: m for m in _page(synced, pageSize=100)["messages"]}
    attachments = listed[synced.id_of["attachments"]]["attachments"]
    assert {a["contentType"] for a in attachments} == {"image/png", "application/pdf"}
    assert {a["embedded"] for a in attachments} == {True, False}
    assert listed[synced.id_of["plain"]]["attachments"] == []


def test_listed_attachment_ids_download(synced):
    listed = {m["id"]: m for m in _page(synced, pageSize=100)["messages"]}
    pdf = next(a for a in listed[synced.id_of["attachments"]]["attachments"]
               if a["contentType"] == "application/pdf")
    response = synced.client.get(f"/v1/account/box/attachment/{pdf['id']}")
    assert b"".join(response.streaming_content) == seed.tiny_pdf()


def test_first_page_has_no_prev_page_cursor(synced):
    first = _page(synced, pageSize=2)
    assert first["prevPageCursor"] is None
    assert isinstance(first["nextPageCursor"], str)


def test_offset_page_has_a_prev_page_cursor(synced):
    assert isinstance(_page(synced, pageSize=2, page=1)["prevPageCursor"], str)


def test_cursor_pages_count_page_as_emailengine(synced):
    first = _page(synced, pageSize=2)
    second = _page(synced, pageSize=2, cursor=first["nextPageCursor"])
    third = _page(synced, pageSize=2, cursor=second["nextPageCursor"])
    assert second["page"] == 1
    assert third["page"] == 2
    assert [m["id"] for m in third["messages"]] == \
        [m["id"] for m in _page(synced, pageSize=2, page=2)["messages"]]


def test_prev_page_cursor_leads_back_to_the_previous_page(synced):
    first = _page(synced, pageSize=2)
    second = _page(synced, pageSize=2, cursor=first["nextPageCursor"])
    third = _page(synced, pageSize=2, cursor=second["nextPageCursor"])
    back = _page(synced, pageSize=2, cursor=third["prevPageCursor"])
    assert back["page"] == 1
    assert back["messages"] == second["messages"]


def test_prev_page_cursor_of_the_second_page_is_the_first_page(synced):
    second = _page(synced, pageSize=2, page=1)
    back = _page(synced, pageSize=2, cursor=second["prevPageCursor"])
    assert back["page"] == 0
    assert back["prevPageCursor"] is None
    assert back["messages"] == _page(synced, pageSize=2)["messages"]


def test_last_page_has_no_next_page_cursor(synced):
    last = _page(synced, pageSize=2, page=3)
    assert last["nextPageCursor"] is None
    assert len(last["messages"]) == 1


def _search(synced, **params) -> dict:
    query = urlencode({"path": "INBOX", **params})
    response = synced.client.post(f"/v1/account/box/search?{query}",
                                  {"search": {"deleted": False}}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_search_results_have_cursors_and_listing_fields(synced):
    first = _search(synced, pageSize=3)
    assert first["prevPageCursor"] is None
    assert isinstance(first["nextPageCursor"], str)
    assert "id" in first["messages"][0]["text"]
    assert isinstance(first["messages"][0]["attachments"], list)


def test_search_cursor_counts_pages(synced):
    first = _search(synced, pageSize=3)
    second = _search(synced, pageSize=3, cursor=first["nextPageCursor"])
    assert second["page"] == 1
    assert [m["id"] for m in second["messages"]] == \
        [m["id"] for m in _search(synced, pageSize=3, page=1)["messages"]]
    assert _search(synced, pageSize=3, cursor=second["prevPageCursor"])["page"] == 0


def test_search_bad_cursor_is_a_400(synced):
    response = synced.client.post("/v1/account/box/search?path=INBOX&cursor=garbage",
                                  {"search": {"deleted": False}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidCursor"


# --- source and attachment downloads ---------------------------------------------------------


def test_source_is_a_download_named_message_eml(synced):
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of['plain']}/source")
    assert response.status_code == 200
    assert response["Content-Disposition"] == "attachment; filename=message.eml"
    assert b"".join(response.streaming_content).replace(b"\r\n", b"\n") == \
        synced.seeded["plain"].replace(b"\r\n", b"\n")


def _pdf_download(synced):
    attachments = _message(synced, "attachments")["attachments"]
    pdf = next(a for a in attachments if a["contentType"] == "application/pdf")
    return synced.client.get(f"/v1/account/box/attachment/{pdf['id']}")


def test_attachment_disposition_has_an_ascii_filename(synced):
    disposition = _pdf_download(synced)["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Rechnung Marz 2024.pdf";')


def test_attachment_disposition_has_the_exact_filename_star(synced):
    disposition = _pdf_download(synced)["Content-Disposition"]
    assert disposition.endswith("; filename*=utf-8''Rechnung%20M%C3%A4rz%202024.pdf")


# --- ids: emailId and Message-ID lookups for migrating EmailEngine users ----------------------


def test_message_by_email_id(synced):
    email_id = _message(synced, "plain")["emailId"]
    response = synced.client.get(f"/v1/account/box/message/{email_id}")
    assert response.status_code == 200
    assert response.json()["id"] == synced.id_of["plain"]


def test_message_by_message_id_header_in_brackets(synced):
    quoted = quote(seed.MESSAGE_IDS["alternative"], safe="")
    response = synced.client.get(f"/v1/account/box/message/{quoted}")
    assert response.status_code == 200
    assert response.json()["id"] == synced.id_of["alternative"]


def test_message_by_bare_message_id(synced):
    bare = seed.MESSAGE_IDS["alternative"].strip("<>")
    response = synced.client.get(f"/v1/account/box/message/{quote(bare, safe='@')}/source")
    assert response.status_code == 200


def test_flags_change_by_email_id(synced):
    email_id = _message(synced, "reply")["emailId"]
    response = synced.client.put(f"/v1/account/box/message/{email_id}",
                                 {"flags": {"add": ["\\Flagged"]}}, format="json")
    assert response.status_code == 200
    assert _message(synced, "reply")["flagged"] is True


def test_emailengine_message_id_is_a_404_that_says_why(synced):
    response = synced.client.get("/v1/account/box/message/AAAADAAABy4")
    assert response.status_code == 404
    assert "EmailEngine message ids do not carry over" in response.json()["message"]


def test_unknown_email_id_is_a_404(synced):
    response = synced.client.get("/v1/account/box/message/no-such-email-id")
    assert response.status_code == 404
    assert response.json()["code"] == "MessageNotFound"


def test_another_accounts_email_id_is_a_404(synced, outsider):
    own = outsider.client.get("/v1/account/box/messages?path=INBOX").json()["messages"][0]
    response = synced.client.get(f"/v1/account/box/message/{own['emailId']}")
    assert response.status_code == 404


def test_reference_message_by_email_id(synced):
    email_id = _message(synced, "plain")["emailId"]
    body = {"path": "Drafts", "reference": {"message": email_id, "action": "reply"},
            "from": {"address": "bob@example.test"}, "text": "Thanks!"}
    response = synced.client.post("/v1/account/box/message", body, format="json")
    assert response.status_code == 200, response.content
    draft = synced.client.get(f"/v1/account/box/message/{response.json()['id']}").json()
    assert draft["inReplyTo"] == seed.MESSAGE_IDS["plain"]


def test_move_takes_emailengines_source_and_moves(synced):
    """EmailEngine's move body has ``source`` (its Gmail API's label to take off): accepted,
    and the move is the same as without it."""
    answer = synced.client.put(f"/v1/account/box/message/{synced.id_of['plain']}/move",
                               {"path": "Archive", "source": "INBOX"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["path"] == "Archive"
    moved = synced.client.get("/v1/account/box/messages", {"path": "Archive"}).json()
    assert [m["messageId"] for m in moved["messages"]] == [seed.MESSAGE_IDS["plain"]]
