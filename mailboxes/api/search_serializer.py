"""The ``search`` object of the search API (EmailEngine's criteria names), validated.

``SearchCriteriaSerializer`` checks types and formats field by field, so a 400 names the
criterion (``or.1.subject``, ``header.X Bad``); its ``validated_data`` is a plain dict that
``mailboxes.imap.search.compile_search`` accepts (dates come out as ``datetime.date``). As a
last step the top level compiles the search, so anything the protocol layer would refuse is a
400 here too, never a 500 later.

A few criteria only the index can answer (``INDEX_ONLY``: the Message-ID lookup, a flag
computed from BODYSTRUCTURE); IMAP SEARCH has no key for them. (``emailId``/``threadId`` work
on both: the IMAP search sends the server's own id keys or resolves them through the index.)
They are accepted when the serializer's context says ``{"source": "index"}`` and otherwise
refused with a 400 naming them and ``source=index``, so a server search never silently drops a
criterion.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from emailapi.api.serializers import StrictSerializer
from mailboxes.imap import search

# A value's limit in characters: 4 UTF-8 bytes each at most, so within search.MAX_VALUE_BYTES.
MAX_VALUE_CHARS = search.MAX_VALUE_BYTES // 4
INDEX_ONLY = ("messageId", "hasAttachments")
INDEX_ONLY_MESSAGE = "Only an index search (source=index) can use this criterion"


def _text(help_text: str) -> serializers.CharField:
    # DRF's CharField already refuses NUL and lone surrogates, which IMAP cannot carry.
    return serializers.CharField(required=False, trim_whitespace=False,
                                 max_length=MAX_VALUE_CHARS, help_text=help_text)


def _flag(name: str) -> serializers.BooleanField:
    return serializers.BooleanField(
        required=False, help_text=f"true: only messages with {name}; false: only without")


def _checked(check):
    def validate(value: Any) -> None:
        try:
            check(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    return validate


class SearchDateField(serializers.CharField):
    """An ISO 8601 date or date-time; the IMAP day it stands for (UTC) as a ``date``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        # Validators would run on the date this returns, so the text is checked here.
        text = super().to_internal_value(data)
        try:
            return search.to_date(text)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value.isoformat()


class HeaderCriteriaField(serializers.DictField):
    """``{"X-Campaign": "spring"}``: header name to a substring; ``""`` means "has the header"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be an object")
        if not data:
            raise serializers.ValidationError("Must name at least one header")
        if len(data) > search.MAX_HEADERS:
            raise serializers.ValidationError(f"At most {search.MAX_HEADERS} headers")
        errors: dict[str, list[str]] = {}
        for name, value in data.items():
            try:
                search.check_header_name(name)
            except ValueError as exc:
                errors[name] = [str(exc)]
                continue
            if not isinstance(value, str):
                errors[name] = ["Must be a string"]
            elif len(value) > MAX_VALUE_CHARS:
                errors[name] = [f"Ensure this field has no more than {MAX_VALUE_CHARS} characters."]
            elif "\x00" in value:
                errors[name] = ["Null characters are not allowed."]
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)


class LabelCriteriaSerializer(StrictSerializer):
    has = serializers.ListField(
        child=serializers.CharField(max_length=search.MAX_LABEL, trim_whitespace=False),
        required=False, max_length=search.MAX_LABELS, help_text="Has every one of these labels")
    not_ = serializers.ListField(
        child=serializers.CharField(max_length=search.MAX_LABEL, trim_whitespace=False),
        required=False, max_length=search.MAX_LABELS, help_text="Has none of these labels")

    def get_fields(self):
        fields = super().get_fields()
        fields["not"] = fields.pop("not_")  # a Python keyword
        return fields

    def validate(self, attrs):
        if not attrs.get("has") and not attrs.get("not"):
            raise serializers.ValidationError({"has": ["Name at least one label"]})
        return attrs


# Search criteria; several at one level must all match, {} matches every message.
# (A comment, not a docstring: drf-spectacular would publish a docstring in the schema.)
class SearchCriteriaSerializer(StrictSerializer):

    to = _text("Substring of the To header")
    cc = _text("Substring of the Cc header")
    bcc = _text("Substring of the Bcc header")
    subject = _text("Substring of the subject")
    body = _text("Substring of the message body")
    text = _text("Substring of the headers or body")
    seen = _flag("\\Seen")
    unseen = serializers.BooleanField(
        required=False, help_text="true: only messages without \\Seen; false: only with "
                                  "(EmailEngine's name; the opposite of seen)")
    flagged = _flag("\\Flagged")
    answered = _flag("\\Answered")
    draft = _flag("\\Draft")
    deleted = _flag("\\Deleted")
    since = SearchDateField(help_text="Received on or after this day (INTERNALDATE)")
    before = SearchDateField(help_text="Received before this day (INTERNALDATE)")
    sentSince = SearchDateField(help_text="Date header on or after this day")
    sentBefore = SearchDateField(help_text="Date header before this day")
    larger = serializers.IntegerField(required=False, min_value=0, max_value=search.MAX_NUMBER,
                                      help_text="Larger than this many bytes")
    smaller = serializers.IntegerField(required=False, min_value=0, max_value=search.MAX_NUMBER,
                                       help_text="Smaller than this many bytes")
    uid = serializers.CharField(required=False, max_length=search.MAX_UID_SET,
                                trim_whitespace=False,
                                validators=[_checked(search.check_uid_set)],
                                help_text="UID set, e.g. 1:5,7,10:*")
    seq = serializers.CharField(required=False, max_length=search.MAX_UID_SET,
                                trim_whitespace=False,
                                validators=[_checked(search.check_seq_set)],
                                help_text="Message sequence numbers at the time of the search, "
                                          "e.g. 1:10 or 1,3,5:* (IMAP only)")
    modseq = serializers.IntegerField(
        required=False, min_value=0, max_value=search.MAX_MODSEQ,
        help_text="Changed at or after this mod-sequence (RFC 7162 MODSEQ; a server with "
                  "CONDSTORE, or the index)")
    gmailRaw = serializers.CharField(
        required=False, trim_whitespace=False, max_length=search.MAX_GMAIL_RAW,
        help_text="Gmail search syntax, e.g. 'has:attachment in:unread' (X-GM-RAW: only on "
                  "servers with X-GM-EXT-1; a 400 elsewhere and with source=index)")
    labels = LabelCriteriaSerializer(
        required=False, help_text="Gmail labels, e.g. {\"has\": [\"Work\"], \"not\": "
                                  "[\"\\\\Important\"]} (X-GM-LABELS on servers with "
                                  "X-GM-EXT-1, a 400 elsewhere; any server with source=index)")
    header = HeaderCriteriaField(help_text='Header name to substring; "" means the header exists')
    keyword = serializers.CharField(required=False, trim_whitespace=False,
                                    validators=[_checked(search.check_keyword)],
                                    help_text="Has this keyword flag, e.g. $Important")
    unKeyword = serializers.CharField(required=False, trim_whitespace=False,
                                      validators=[_checked(search.check_keyword)],
                                      help_text="Has not this keyword flag")
    emailId = serializers.CharField(required=False, trim_whitespace=False,
                                    max_length=search.MAX_ID,
                                    help_text="This emailId (as listings show it)")
    threadId = serializers.CharField(required=False, trim_whitespace=False,
                                     max_length=search.MAX_ID,
                                     help_text="This threadId (as listings show it)")
    # Index only (source=index); lengths are the index's columns.
    messageId = serializers.CharField(required=False, trim_whitespace=False, max_length=998,
                                      help_text="This Message-ID header, with or without its "
                                                "angle brackets (source=index only)")
    hasAttachments = serializers.BooleanField(
        required=False, help_text="true: only messages with attachments; false: only without "
                                  "(source=index only)")

    def __init__(self, *args, depth: int = 0, **kwargs):
        # depth = levels of or/not above this object (0 for the request's own search)
        self.depth = depth
        super().__init__(*args, **kwargs)

    def get_fields(self):
        fields = super().get_fields()
        # "from", "or" and "not" are Python keywords, so they cannot be class attributes.
        fields["from"] = _text("Substring of the From header")
        fields["or"] = SearchCriteriaSerializer(
            many=True, required=False, depth=self.depth + 1, min_length=2,
            max_length=search.MAX_OR_ITEMS, help_text="At least one of these must match")
        fields["not"] = SearchCriteriaSerializer(
            required=False, depth=self.depth + 1, help_text="Must not match")
        return fields

    def to_internal_value(self, data):
        # Refuse too deep a nesting before descending into it, so a hostile body cannot
        # exhaust the stack.
        if isinstance(data, dict) and self.depth >= search.MAX_DEPTH:
            deep = [key for key in ("or", "not") if key in data]
            if deep:
                message = f"Nested deeper than {search.MAX_DEPTH} levels of or/not"
                raise serializers.ValidationError({key: [message] for key in deep})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if self.depth == 0:
            if self.context.get("source") != "index":
                found = index_only_paths(attrs)
                if found:
                    raise serializers.ValidationError(
                        {path: [INDEX_ONLY_MESSAGE] for path in found})
            try:
                search.compile_search(without_index_only(attrs))
            except search.InvalidSearch as exc:
                raise serializers.ValidationError(
                    {exc.path or "non_field_errors": [exc.message]}) from None
        return attrs


def index_only_paths(criteria: dict, path: str = "") -> list[str]:
    """Where validated *criteria* use an index-only criterion (``or.1.threadId``)."""
    found = [f"{path}{name}" for name in INDEX_ONLY if name in criteria]
    for number, branch in enumerate(criteria.get("or") or []):
        found += index_only_paths(branch, f"{path}or.{number}.")
    if criteria.get("not"):
        found += index_only_paths(criteria["not"], f"{path}not.")
    return found


def without_index_only(criteria: dict) -> dict:
    """*criteria* minus the index-only criteria at every level: what the IMAP compiler checks
    (its limits on terms, bytes and nesting hold for an index search too)."""
    out = {name: value for name, value in criteria.items() if name not in INDEX_ONLY}
    if "or" in out:
        out["or"] = [without_index_only(branch) for branch in out["or"]]
    if "not" in out:
        out["not"] = without_index_only(out["not"])
    return out
