"""Issue 17's proof: a corpus of 120 varied messages of our own making (the shapes of real-world
mail the issue lists: calendar invites, bounces, text/enriched, inline text with a filename,
``Content-Type: text``, RFC 2231 boundaries, x-uuencode, base64 and quoted-printable attachments
of many types, nested messages, odd addresses) appended to Dovecot and indexed; through the
API, every part is reachable, as body text or as an attachment, and every attachment's bytes
(through the attachment route) hash equal to Python's ``email`` decoding of the source Dovecot
serves."""

from __future__ import annotations

import hashlib
import mimetypes
from email import policy
from email.message import Message
from email.parser import BytesParser

import pytest

from tests.mailboxes import mime_shapes

pytestmark = [pytest.mark.django_db]

CORPUS_SIZE = 120
UU = {"x-uuencode", "uuencode", "uue", "x-uue"}
UU_GENERIC = {"application/octet-stream", "text/plain"}


@pytest.fixture
def inbox_messages():
    return mime_shapes.corpus(CORPUS_SIZE)


def _leaves(node: Message, number: str | None = None):
    """``(section, part)`` of every leaf, as IMAP numbers them; message/* not descended into."""
    content_type = node.get_content_type()
    if node.is_multipart() and not content_type.startswith("message/"):
        base = f"{number}." if number else ""
        for index, child in enumerate(node.get_payload(), start=1):
            yield from _leaves(child, f"{base}{index}")
        return
    yield number or "1", node


def _is_body(part: Message) -> bool:
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    return part.get_content_type() in ("text/plain", "text/html") and (
        part.get_content_disposition() != "attachment") and encoding not in UU


def _expected_type(part: Message) -> str:
    content_type = part.get_content_type()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in UU and content_type in UU_GENERIC and part.get_filename():
        return mimetypes.guess_type(part.get_filename(), strict=False)[0] or content_type
    return content_type


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _all_listed(synced) -> list[dict]:
    url = "/v1/account/box/messages?path=INBOX&pageSize=1000"
    return synced.client.get(url).json()["messages"]


def test_every_part_of_the_corpus_is_reachable_and_hashes_equal(synced):
    listed = {m["uid"]: m for m in _all_listed(synced)}
    assert len(listed) == CORPUS_SIZE
    checked = {"text": 0, "attachments": 0, "message/*": 0, "uuencoded": 0, "calendar": 0}
    for uid in synced.uids:
        summary = listed[uid]
        source = synced.client.get(f"/v1/account/box/message/{summary['id']}/source")
        raw = b"".join(source.streaming_content)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        body = synced.client.get(f"/v1/account/box/message/{summary['id']}").json()
        leaves = list(_leaves(parsed))
        expected = [(section, part) for section, part in leaves if not _is_body(part)]
        for _, part in leaves:
            if _is_body(part):
                kind = part.get_content_subtype()
                text = part.get_content().replace("\r\n", "\n")
                assert text in (body["text"][kind] or ""), (summary["subject"], kind)
                checked["text"] += 1
        got = body["attachments"]
        assert [a["contentType"] for a in got] == [_expected_type(p) for _, p in expected], \
            summary["subject"]
        assert summary["hasAttachments"] is bool(expected)
        assert [a["id"] for a in summary["attachments"]] == [a["id"] for a in got]
        for entry, (_, part) in zip(got, expected, strict=True):
            response = synced.client.get(f"/v1/account/box/attachment/{entry['id']}")
            assert response.status_code == 200
            data = b"".join(response.streaming_content)
            assert entry["size"] == len(data), (summary["subject"], entry)
            assert entry["filename"] == part.get_filename()
            if part.get_content_maintype() == "message":
                # Python's email holds an attached message as parsed objects, not bytes: the
                # download is the part's body as it stands in the source, and parses the same.
                assert data.replace(b"\r\n", b"\n") in raw.replace(b"\r\n", b"\n")
                again = BytesParser(policy=policy.default).parsebytes(data)
                inner = part.get_payload()[0]
                assert again.items() == inner.items()
                checked["message/*"] += 1
            else:
                assert _sha(data) == _sha(part.get_payload(decode=True)), (
                    summary["subject"], entry)
                checked["uuencoded"] += entry["contentType"] != part.get_content_type()
            if entry["contentType"] == "text/calendar":
                assert entry["method"] == part.get_param("method").upper()
                checked["calendar"] += 1
            checked["attachments"] += 1
    assert checked["attachments"] >= 100, checked
    assert min(checked.values()) > 0, checked
