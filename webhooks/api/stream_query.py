"""Query parameters of the stream (SSE and WebSocket alike) and of the change feed.

``accounts`` and ``events`` may be comma lists, repeated, or both (``?events=messageNew&events=
messageDeleted,messageUpdated``). An account id may itself hold a comma: ``account`` (singular,
repeatable) names one id per value, taken whole, never split (``?account=a,b&account=c``: the
two accounts ``a,b`` and ``c``), alone or beside ``accounts``. ``since`` is a seq (a stream
event's ``id``) or a change-feed cursor. Both transports validate with the same serializers, so
a bad value is refused the same way: 400 in the API error shape over HTTP, close code 4400
with that body over a WebSocket. The validated data becomes a
``webhooks.stream.params.StreamRequest``.
"""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import validate_account_id
from emailapi.api.serializers import QuerySerializer
from webhooks import events as event_names

LIST_PARAMS = ("accounts", "events")
MAX_LIST = 1000
MAX_FEED_PAGE = 1000


WHOLE_ID_PARAM = "account"


def flatten_lists(query) -> dict:
    """A QueryDict as a plain dict, repeated list parameters joined into one comma list, and
    the ``account`` values as a list (each one id, commas and all)."""
    data = {key: query.get(key) for key in query}
    for key in LIST_PARAMS:
        if key in query:
            data[key] = ",".join(query.getlist(key))
    if WHOLE_ID_PARAM in query:
        data[WHOLE_ID_PARAM] = query.getlist(WHOLE_ID_PARAM)
    return data


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class FilterQuerySerializer(QuerySerializer):
    accounts = serializers.CharField(
        required=False, max_length=300_000,
        help_text="Only these accounts: a comma list, or the parameter repeated (an id that "
                  "holds a comma: use account)")
    account = serializers.ListField(
        child=serializers.CharField(max_length=256), required=False, max_length=MAX_LIST,
        help_text="Only this account: one id, taken whole (it may hold a comma); repeat the "
                  "parameter for more. Adds to accounts")
    events = serializers.CharField(
        required=False, max_length=10_000,
        help_text="Only these event names (messageNew, messageDeleted, ...): a comma list, or "
                  "the parameter repeated; * or omitted means all")

    def validate_accounts(self, value: str) -> list[str]:
        items = _split(value)
        if not items or len(items) > MAX_LIST:
            raise serializers.ValidationError(f"Give 1-{MAX_LIST} account ids")
        return [validate_account_id(item) for item in items]

    def validate_account(self, value: list[str]) -> list[str]:
        return [validate_account_id(item) for item in value]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        whole = attrs.pop(WHOLE_ID_PARAM, None)
        if whole:
            named = list(dict.fromkeys([*attrs.get("accounts", ()), *whole]))
            if len(named) > MAX_LIST:
                raise serializers.ValidationError(
                    {"accounts": [f"Give 1-{MAX_LIST} account ids"]})
            attrs["accounts"] = named
        return attrs

    def validate_events(self, value: str) -> list[str] | None:
        items = _split(value)
        if "*" in items:
            return None
        unknown = sorted(set(items) - set(event_names.ALL))
        if not items or unknown:
            raise serializers.ValidationError(
                f"Unknown event name(s): {', '.join(unknown) or '(none)'}")
        return items


class StreamQuerySerializer(FilterQuerySerializer):
    since = serializers.CharField(
        required=False, max_length=128,
        help_text="Replay events after this seq (an event's id) or change-feed cursor, then "
                  "go live; overrides the Last-Event-ID header. Omitted: from now")
    once = serializers.BooleanField(
        default=False,
        help_text="Send the events after since that exist now, then end the response "
                  "(no live part): for scripts and tests")


class ChangesQuerySerializer(FilterQuerySerializer):
    since = serializers.CharField(
        required=False, max_length=128,
        help_text="nextCursor of the previous page (or a stream event's seq); 'now' gives an "
                  "empty page whose nextCursor is the present. Omitted: the oldest retained")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_FEED_PAGE, required=False,
                                     help_text="Changes per page, 1-1000 (default 100)")
    pageSize = serializers.IntegerField(min_value=1, max_value=MAX_FEED_PAGE, required=False,
                                        help_text="Same as limit")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "limit" in attrs and "pageSize" in attrs and attrs["limit"] != attrs["pageSize"]:
            raise serializers.ValidationError({"limit": ["Give limit or pageSize, not both"]})
        return attrs
