"""Serializer base classes shared by every API app."""

from __future__ import annotations

import re

from rest_framework import serializers

# JSON type each field kind insists on. DRF would quietly coerce 993 -> "993" or "yes" -> True;
# for a JSON API a wrong type is a client bug, so it is refused with the type named.
# Two exceptions, as EmailEngine's validation (Joi's ``convert``) makes them, so that its
# clients' bodies pass unchanged: a number written as a decimal string ("993", "2.5") where a
# number belongs, and "true"/"false" (any case) where a boolean belongs. Nothing else is
# converted: not 993 where a string belongs, not "yes", "1" or "" for a boolean.
_JSON_TYPES = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.ListField, (list,), "a list"),
    (serializers.DictField, (dict,), "an object"),
]


def _type_error(field: serializers.Field, value) -> str | None:
    if value is None:
        return None  # allow_null decides
    if getattr(field, "takes_one", False) and not isinstance(value, list):
        return _type_error(field.child, value)  # one item alone, for a list of one
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        for index, item in enumerate(value):
            message = _type_error(field.child, item)
            if message:
                return f"Item {index}: {message[0].lower()}{message[1:]}"
        return None
    for kind, types, name in _JSON_TYPES:
        if isinstance(field, kind):
            if isinstance(value, bool) and bool not in types:
                return f"Must be {name}"
            if isinstance(value, str) and _converts(field, value):
                return None
            return None if isinstance(value, types) else f"Must be {name}"
    return None


# ASCII digits only (``\d`` and ``int()`` take other scripts' digits; Joi does not); an
# integer may be written with a zero fraction ("993.0"), as Joi takes it.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+(\.0*)?\s*")
_NUMBER = re.compile(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def _converts(field: serializers.Field, value: str) -> bool:
    """Whether ``value`` is a string EmailEngine's Joi would convert for this field (see
    ``_JSON_TYPES``); DRF's own parsing then turns it into the number or boolean."""
    if isinstance(field, serializers.BooleanField):
        return value.lower() in ("true", "false")
    if isinstance(field, serializers.IntegerField):
        return _INTEGER.fullmatch(value) is not None
    if isinstance(field, serializers.FloatField):
        return _NUMBER.fullmatch(value) is not None
    return False


# StrictSerializer refuses fields it does not know and values of the wrong JSON type.
# A misspelt option ("pasword") silently ignored is a bug report waiting to happen, so unknown
# keys are a 400 naming them, at every nesting level (nested serializers inherit this).
# Non-object input (a JSON list or string where an object belongs) is refused the same way.
# Query-string serializers set ``json_types = False``: there every value is a string.
# (A comment, not a docstring: drf-spectacular would publish a docstring in every schema.)
class StrictSerializer(serializers.Serializer):

    json_types = True
    ignored_fields: frozenset[str] = frozenset({"access_token"})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}"]}
            )
        unknown = sorted(set(data) - set(self.fields) - self.ignored_fields)
        errors = {key: ["Unknown field"] for key in unknown}
        if self.json_types:
            for name, field in self.fields.items():
                if name in data and not field.read_only:
                    message = _type_error(field, data[name])
                    if message:
                        errors[name] = [message]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class CaseFoldedChoiceField(serializers.ChoiceField):
    """A choice EmailEngine's Joi lower-cases before it validates (``.lowercase()``, shown as
    ``x-convert: {case: lower}`` in its schema), so that its clients may send ``"Reply"`` or
    ``"INLINE"``: matched without regard to case and kept as the choice is spelled here (our
    ``replyAll`` stays camel-cased). Anything else is refused as by ``ChoiceField``."""

    def to_internal_value(self, data):
        if isinstance(data, str) and data not in self.choices:
            folded = {str(choice).lower(): choice for choice in self.choices}
            data = folded.get(data.lower(), data)
        return super().to_internal_value(data)


# Validates ``request.query_params``: unknown names refused, values parsed from strings.
class QuerySerializer(StrictSerializer):

    json_types = False
    remember_valid = False  # True: see ``valid_query`` below


# --- remembering valid queries ---------------------------------------------------------------

# A serializer is built anew for every request: DRF deep-copies each declared field (and its
# validators), about 1 ms for a listing's five query parameters, a fifth of its CPU time
# (issue 19). A query serializer that says ``remember_valid = True`` promises that its answer
# depends on the query alone (no context, no database, no clock), so a query string seen
# before and found valid gets the same answer without a serializer. Invalid queries are never
# remembered: each is validated and refused as usual. Bounded per process.
_VALID_LIMIT = 2_000
_VALID_KEY_CHARS = 1_024  # longer query strings are not remembered
_valid: dict[tuple, dict] = {}


def valid_query(serializer_class: type[QuerySerializer], query) -> dict | None:
    """The remembered ``validated_data`` of ``query`` (a ``QueryDict``) by this serializer,
    as a copy, or None."""
    key = _query_key(serializer_class, query)
    found = _valid.get(key) if key is not None else None
    return dict(found) if found is not None else None


def remember_valid_query(serializer_class: type[QuerySerializer], query, data: dict) -> None:
    key = _query_key(serializer_class, query)
    if key is None:
        return
    if len(_valid) >= _VALID_LIMIT:
        _valid.clear()
    _valid[key] = dict(data)


def _query_key(serializer_class, query) -> tuple | None:
    if not getattr(serializer_class, "remember_valid", False) or not hasattr(query, "lists"):
        return None
    items = tuple((name, tuple(values)) for name, values in query.lists())
    if sum(len(name) + sum(len(v) for v in values) for name, values in items) > _VALID_KEY_CHARS:
        return None
    return serializer_class, items
