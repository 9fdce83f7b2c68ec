"""The API's JSON renderer (orjson) writes the bytes DRF's own JSONRenderer writes."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict

from emailapi.api.renderers import FastJSONRenderer

UTC = datetime.UTC
SAMPLES = [
    {"messages": [{"id": "AAAA", "uid": 7, "unseen": True, "flags": ["\\Seen"], "from": None,
                   "subject": "Grüße – 日本語 ✓", "size": 2**40, "ratio": 0.1}]},
    {"when": datetime.datetime(2026, 12, 3, 15, 4, 5, 123456, tzinfo=UTC),
     "naive": datetime.datetime(2026, 12, 3, 15, 4, 5),
     "offset": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
     "day": datetime.date(2026, 12, 3), "time": datetime.time(1, 2, 3),
     "span": datetime.timedelta(seconds=90)},
    {"amount": Decimal("1.50"), "id": uuid.UUID(int=5), "lazy": gettext_lazy("Not found"),
     "tuple": (1, 2), "set_free": [], "empty": {}},
    {"controls": "a\x00b\x1fc\n\t\"\\/", "separators": "line\u2028para\u2029end"},
    ReturnDict({"a": 1, "b": [ReturnDict({"c": None}, serializer=None)]}, serializer=None),
    {"huge": 2**70},  # beyond orjson's integers: DRF renders it
    {1: "a key that is not a string"},
    [1, "two", None, False, 3.5],
]


@pytest.mark.parametrize("data", SAMPLES)
def test_the_bytes_are_drf_s(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_indented_answers_and_empty_bodies_are_drf_s():
    data = {"a": [1, {"b": "c"}]}
    media = "application/json; indent=4"
    assert FastJSONRenderer().render(data, media) == JSONRenderer().render(data, media)
    assert FastJSONRenderer().render(None) == b""


def test_a_lone_surrogate_is_written_as_a_replacement_character():
    """A sender's ``=?utf-7?q?+2AA-?=`` decodes to half a surrogate pair, which UTF-8 cannot
    encode: orjson refuses it and DRF's bytes failed (a 500 for the message's detail)."""
    data = ReturnDict({"subject": "a\ud800b", "to": [{"name": "\udfff"}], "ok": "ü"}, serializer=None)
    body = FastJSONRenderer().render(data)
    assert body.decode() == '{"subject":"a\ufffdb","to":[{"name":"\ufffd"}],"ok":"ü"}'
