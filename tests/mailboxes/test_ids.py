"""Opaque message and attachment ids: round trips, and every kind of bad id refused (pure)."""

import hashlib
import hmac
import struct

import pytest

from mailboxes import ids

KEY = b"k" * 32


def test_message_id_round_trips_and_is_url_safe():
    value = ids.message_id(KEY, 7, 3, 4_294_967_295)
    assert ids.parse_message_id(KEY, 7, value) == ids.MessageRef(3, 4_294_967_295)
    assert value.replace("-", "").replace("_", "").isalnum()


def test_attachment_id_round_trips_with_its_part():
    value = ids.attachment_id(KEY, 7, 3, 42, "2.1.3")
    assert ids.parse_attachment_id(KEY, 7, value) == ids.AttachmentRef(3, 42, "2.1.3")


@pytest.mark.parametrize("value", ["", "!!!", "a" * 300, "AAAA", "not an id", "=="])
def test_malformed_ids_are_refused(value):
    with pytest.raises(ids.InvalidId):
        ids.parse_message_id(KEY, 7, value)
    with pytest.raises(ids.InvalidId):
        ids.parse_attachment_id(KEY, 7, value)


def test_an_id_of_another_account_or_key_is_refused():
    value = ids.message_id(KEY, 7, 3, 42)
    with pytest.raises(ids.InvalidId):
        ids.parse_message_id(KEY, 8, value)
    with pytest.raises(ids.InvalidId):
        ids.parse_message_id(b"x" * 32, 7, value)


def test_a_tampered_id_is_refused():
    value = ids.message_id(KEY, 7, 3, 42)
    flipped = ("B" if value[2] != "B" else "C").join([value[:2], value[3:]])
    with pytest.raises(ids.InvalidId):
        ids.parse_message_id(KEY, 7, flipped)


def test_a_message_id_is_not_an_attachment_id_and_back():
    message = ids.message_id(KEY, 7, 3, 42)
    attachment = ids.attachment_id(KEY, 7, 3, 42, "2")
    with pytest.raises(ids.InvalidId):
        ids.parse_attachment_id(KEY, 7, message)
    with pytest.raises(ids.InvalidId):
        ids.parse_message_id(KEY, 7, attachment)


@pytest.mark.parametrize("key", [b"k" * 32, b"", b"x" * 64, b"long key " * 20])
def test_the_tag_is_hmac_sha256_of_the_account_and_body(key):
    """Ids minted before the tag was computed from precomputed pads stay valid."""
    for account, body in ((1, b""), (2**40, b"\x00\x01body"), (7, b"y" * 200)):
        expected = hmac.new(key, struct.pack(">Q", account) + body, hashlib.sha256).digest()
        assert ids._tag(key, account, body) == expected[:ids.TAG_BYTES]
