"""Which JSON types a body's fields take (``emailapi.api.serializers``): the JSON type named
by the field, plus the strings EmailEngine's Joi converts."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from emailapi.api.serializers import StrictSerializer


class Sample(StrictSerializer):
    count = serializers.IntegerField(required=False)
    ratio = serializers.FloatField(required=False)
    flag = serializers.BooleanField(required=False)
    name = serializers.CharField(required=False)
    counts = serializers.ListField(child=serializers.IntegerField(), required=False)


def valid(data: dict) -> dict | None:
    serializer = Sample(data=data)
    return serializer.validated_data if serializer.is_valid() else None


@pytest.mark.parametrize("data, expected", [
    ({"count": 5}, {"count": 5}),
    ({"count": "5"}, {"count": 5}),
    ({"count": "-12"}, {"count": -12}),
    ({"count": "993.0"}, {"count": 993}),
    ({"ratio": "2.5"}, {"ratio": 2.5}),
    ({"ratio": "1e3"}, {"ratio": 1000.0}),
    ({"ratio": 3}, {"ratio": 3.0}),
    ({"flag": "true"}, {"flag": True}),
    ({"flag": "False"}, {"flag": False}),
    ({"counts": ["1", 2]}, {"counts": [1, 2]}),
])
def test_accepted(data, expected):
    assert valid(data) == expected


@pytest.mark.parametrize("data", [
    {"count": "5a"}, {"count": "2.5"}, {"count": "\u0669\u0669\u0663"}, {"count": "\uff19"},
    {"ratio": "\u0669"}, {"count": ""}, {"count": True}, {"count": 2.5},
    {"ratio": "x"}, {"ratio": "nan"}, {"ratio": "inf"}, {"ratio": False},
    {"flag": "yes"}, {"flag": "1"}, {"flag": 1}, {"flag": ""},
    {"name": 5}, {"name": True},
    {"counts": ["x"]},
])
def test_refused(data):
    assert valid(data) is None
