"""Gmail's labels on a server without them (Dovecot: no X-GM-EXT-1): a clear 400 that names
the missing extension and changes nothing, except in the index, which any server's rows have
(with no labels)."""

from __future__ import annotations

import pytest

from tests.mailboxes.helpers import events_of

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

BOX = "/v1/account/box"


def test_bulk_label_updates_are_a_400(alice, synced):
    response = alice.client.put(f"{BOX}/messages?path=INBOX",
                                {"search": {"seen": False},
                                 "update": {"labels": {"add": ["Work"]}}}, format="json")

    assert (response.status_code, response.json()["emailapiCode"]) == \
        (400, "LabelsUnsupported")


def test_a_refused_label_change_changes_no_flag_either(alice, synced, mail_user):
    response = alice.client.put(f"{BOX}/message/{synced.ids[0]}",
                                {"flags": {"add": ["\\Seen"]}, "labels": {"add": ["x"]}},
                                format="json")

    assert response.status_code == 400
    assert events_of(synced.account, "messageUpdated") == []
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        flags = set(other.get_flags([synced.uids[0]])[synced.uids[0]])
    assert flags - {b"\\Recent"} == set()


def test_an_imap_search_by_labels_is_a_400_naming_x_gm_ext_1(alice, synced):
    response = alice.client.post(f"{BOX}/search?path=INBOX",
                                 {"search": {"labels": {"has": ["Work"]}}}, format="json")

    assert response.status_code == 400
    assert response.json()["details"]["extension"] == "X-GM-EXT-1"


def test_an_index_search_by_labels_finds_no_labelled_message(alice, synced):
    response = alice.client.post(f"{BOX}/search?path=INBOX&source=index",
                                 {"search": {"labels": {"has": ["Work"]}}}, format="json")

    assert (response.status_code, response.json()["total"]) == (200, 0)


def test_an_index_search_excluding_a_label_finds_every_message(alice, synced):
    response = alice.client.post(f"{BOX}/search?path=INBOX&source=index",
                                 {"search": {"labels": {"not": ["Work"]}}}, format="json")

    assert response.json()["total"] == len(synced.uids)


def test_a_label_criterion_without_labels_is_a_400(alice, synced):
    response = alice.client.post(f"{BOX}/search?path=INBOX&source=index",
                                 {"search": {"labels": {}}}, format="json")

    assert response.status_code == 400
