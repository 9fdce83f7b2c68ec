"""A list message's unsubscribe page (``/unsubscribe``): looking changes nothing, the buttons
unsubscribe and subscribe again (each change one event), a mail client's one-click POST
unsubscribes, and only a link we signed does anything."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mailboxes import unsubscribe
from mailboxes.models import BlocklistEntry
from webhooks.models import Event

pytestmark = pytest.mark.django_db

MESSAGE_ID = "<m1@example.test>"


@pytest.fixture
def link(alice) -> dict:
    url = urlsplit(unsubscribe.link("http://testserver/", alice.tenant.pk, "box", "news",
                                    "Ann@example.test", MESSAGE_ID))
    assert url.path == "/unsubscribe"
    query = parse_qs(url.query)
    return {"data": query["data"][0], "sig": query["sig"][0], "query": url.query}


def _events(tenant) -> list[tuple[str, dict]]:
    return [(e.event, e.data) for e in Event.objects.filter(tenant=tenant).order_by("created_at")]


def test_the_page_shows_where_the_recipient_stands_and_changes_nothing(client, alice, link):
    page = client.get(f"/unsubscribe?{link['query']}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-state="subscribed"' in html
    assert "Ann@example.test" in html
    assert 'value="unsubscribe"' in html
    assert not BlocklistEntry.objects.exists()
    assert _events(alice.tenant) == []


def test_unsubscribing_and_subscribing_again_each_raise_one_event(client, alice, link):
    form = {"data": link["data"], "sig": link["sig"]}
    done = client.post("/unsubscribe/address", {**form, "action": "unsubscribe"},
                       HTTP_USER_AGENT="Browser/2", REMOTE_ADDR="127.0.0.7")
    assert done.status_code == 200
    assert 'data-state="unsubscribed"' in done.content.decode()
    entry = BlocklistEntry.objects.get()
    assert (entry.tenant_id, entry.list_id, entry.address, entry.recipient, entry.account_id,
            entry.source, entry.reason, entry.message_id) == (
        alice.tenant.pk, "news", "ann@example.test", "Ann@example.test", "box", "form",
        "unsubscribe", MESSAGE_ID)
    client.post("/unsubscribe/address", {**form, "action": "unsubscribe"})  # twice: no event
    assert 'data-state="unsubscribed"' in client.get(
        f"/unsubscribe?{link['query']}").content.decode()

    back = client.post("/unsubscribe/address", {**form, "action": "subscribe"},
                       HTTP_USER_AGENT="Browser/2", REMOTE_ADDR="127.0.0.7")
    assert 'data-state="subscribed"' in back.content.decode()
    assert not BlocklistEntry.objects.exists()
    data = {"recipient": "Ann@example.test", "messageId": MESSAGE_ID, "listId": "news",
            "remoteAddress": "127.0.0.7", "userAgent": "Browser/2"}
    assert _events(alice.tenant) == [("listUnsubscribe", data), ("listSubscribe", data)]


def test_one_click_needs_its_body(client, alice, link):
    refused = client.post(f"/unsubscribe?{link['query']}", {})
    assert refused.status_code == 400
    assert refused.json()["code"] == "InputValidationError"
    assert not BlocklistEntry.objects.exists()
    done = client.post(f"/unsubscribe?{link['query']}", {"List-Unsubscribe": "One-Click"})
    assert done.json() == {"unsubscribed": True}
    assert BlocklistEntry.objects.get().source == "one-click"


@pytest.mark.parametrize("change", ["data", "sig", "drop"])
def test_a_link_we_did_not_sign_does_nothing(client, alice, link, change):
    form = {"data": link["data"], "sig": link["sig"], "action": "unsubscribe"}
    if change == "drop":
        del form["sig"]
    else:
        form[change] = form[change][:-2] + ("AA" if form[change][-2:] != "AA" else "BB")
    for response in (client.post("/unsubscribe/address", form),
                     client.get("/unsubscribe", {k: v for k, v in form.items()
                                                 if k != "action"}),
                     client.post("/unsubscribe?" + "&".join(
                         f"{k}={v}" for k, v in form.items() if k != "action"),
                         {"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 400
    assert not BlocklistEntry.objects.exists()
    assert _events(alice.tenant) == []


def test_a_link_of_a_deleted_tenant_is_not_valid(client, alice, link):
    alice.tenant.delete()
    page = client.get(f"/unsubscribe?{link['query']}")
    assert page.status_code == 400
    assert "This link is not valid." in page.content.decode()


def test_an_unknown_action_changes_nothing(client, alice, link):
    response = client.post("/unsubscribe/address", {"data": link["data"], "sig": link["sig"],
                                                    "action": "delete"})
    assert response.status_code == 400
    assert not BlocklistEntry.objects.exists()
