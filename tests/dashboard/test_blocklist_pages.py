"""The blocklists page (``/dashboard/blocklists``) through Django's test client: it shows and
changes the same blocklists as ``/v1/blocklists``, under the same rules, viewers only look,
and another tenant's lists are not there."""

from __future__ import annotations

import pytest

from mailboxes import blocklists
from mailboxes.models import BlocklistEntry
from tests.base import account_payload
from tests.dashboard.test_oauth2_pages import sign_in

pytestmark = pytest.mark.django_db

FORM = {"list_id": "news", "recipient": "Ann@example.test", "account": "box", "reason": ""}


@pytest.fixture
def box(alice):
    assert alice.client.post("/v1/account", account_payload("box"),
                             format="json").status_code == 200


def test_it_blocks_an_address_the_api_lists_and_removes_it(client, alice, box):
    sign_in(client, alice.tenant, "owner")
    assert "No list holds an address." in client.get("/dashboard/blocklists").content.decode()
    added = client.post("/dashboard/blocklists", FORM)
    assert added.status_code == 302, added.content.decode()[:500]
    assert added["Location"] == "/dashboard/blocklists?list=news"
    api = alice.client.get("/v1/blocklist/news").json()
    assert [(a["recipient"], a["account"], a["source"], a["reason"])
            for a in api["addresses"]] == [("Ann@example.test", "box", "api", "block")]

    page = client.get("/dashboard/blocklists?list=news").content.decode()
    assert "Ann@example.test" in page
    assert 'action="/dashboard/blocklists/news/remove"' in page
    removed = client.post("/dashboard/blocklists/news/remove",
                          {"recipient": "ann@example.test"})
    assert removed.status_code == 302
    assert not BlocklistEntry.objects.exists()
    assert client.post("/dashboard/blocklists/news/remove",
                       {"recipient": "ann@example.test"}).status_code == 404


@pytest.mark.parametrize(("change", "words"), [
    ({"list_id": "news letter"}, "Must look like a host name"),
    ({"recipient": "not an address"}, "Enter a valid email address"),
    ({"account": "nobody"}, "Select a valid choice"),
])
def test_bad_input_is_shown_on_the_form_and_saves_nothing(client, alice, box, change, words):
    sign_in(client, alice.tenant, "owner")
    refused = client.post("/dashboard/blocklists", {**FORM, **change})
    assert refused.status_code == 400
    assert words in refused.content.decode()
    assert not BlocklistEntry.objects.exists()


def test_viewers_only_look_and_another_tenants_lists_are_not_there(client, alice, bob, box):
    blocklists.add(bob.tenant, "bobs-list", "x@example.test", "b", source="api", reason="block")
    blocklists.add(alice.tenant, "news", "ann@example.test", "box", source="api",
                   reason="block")
    sign_in(client, alice.tenant, "owner")
    page = client.get("/dashboard/blocklists?list=bobs-list").content.decode()
    assert "bobs-list" not in page.split("<h2", 1)[0]  # not among alice's lists
    assert "x@example.test" not in page
    assert client.post("/dashboard/blocklists/bobs-list/remove",
                       {"recipient": "x@example.test"}).status_code == 404
    assert BlocklistEntry.objects.filter(tenant=bob.tenant).exists()

    viewer = client.__class__()
    sign_in(viewer, alice.tenant, "viewer", email="viewer@alice.test")
    page = viewer.get("/dashboard/blocklists?list=news")
    assert page.status_code == 200
    assert "ann@example.test" in page.content.decode()
    assert "Block an address" not in page.content.decode()
    assert viewer.post("/dashboard/blocklists/news/remove",
                       {"recipient": "ann@example.test"}).status_code == 403
    assert viewer.post("/dashboard/blocklists", FORM).status_code == 403
    assert BlocklistEntry.objects.filter(tenant=alice.tenant).count() == 1
