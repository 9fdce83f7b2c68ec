"""Request and response shapes of the message-changing routes (EmailEngine's names)."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.serializers import QuerySerializer, StrictSerializer
from mailboxes.api.search_serializer import SearchCriteriaSerializer


def _flags(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=128, trim_whitespace=False), required=False,
        max_length=100, help_text=help_text)


class FlagEditSerializer(StrictSerializer):
    add = _flags("Flags to add, e.g. \\Seen or a keyword")
    delete = _flags("Flags to remove")
    set = _flags("Replace all flags with these")

    def validate(self, attrs):
        if "set" in attrs and ("add" in attrs or "delete" in attrs):
            raise serializers.ValidationError({"set": ["Use set alone, or add/delete"]})
        return attrs


class MessageUpdateSerializer(StrictSerializer):
    flags = FlagEditSerializer(required=False)
    labels = FlagEditSerializer(required=False,
                                help_text="Gmail labels (servers with X-GM-EXT-1 only)")

    def validate(self, attrs):
        if not attrs.get("flags") and not attrs.get("labels"):
            raise serializers.ValidationError({"flags": ["Nothing to change"]})
        return attrs


class FlagsAnswerSerializer(serializers.Serializer):
    add = serializers.BooleanField(required=False)
    delete = serializers.BooleanField(required=False)
    set = serializers.BooleanField(required=False)


class MessageUpdateResultSerializer(serializers.Serializer):
    flags = FlagsAnswerSerializer(required=False)


class MoveSerializer(StrictSerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Destination folder (or a special use: \\Archive)")


class MoveResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    id = serializers.CharField(allow_null=True, help_text="The message's id in its new folder")
    uid = serializers.IntegerField(allow_null=True)


class DeleteQuerySerializer(QuerySerializer):
    force = serializers.BooleanField(default=False,
                                     help_text="Expunge at once instead of moving to Trash")


class MovedToSerializer(serializers.Serializer):
    destination = serializers.CharField()
    message = serializers.CharField(allow_null=True)
    uid = serializers.IntegerField(allow_null=True)


class DeleteResultSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    moved = MovedToSerializer(required=False)


# --- bulk ---------------------------------------------------------------------------------


class BulkQuerySerializer(QuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="The folder whose messages are changed")


class _Selection(StrictSerializer):
    search = SearchCriteriaSerializer(required=False,
                                      help_text="Messages matching this (IMAP SEARCH)")
    ids = serializers.ListField(child=serializers.CharField(max_length=256), required=False,
                                max_length=100_000, help_text="Or these message ids")

    def validate(self, attrs):
        if ("search" in attrs) == ("ids" in attrs):
            raise serializers.ValidationError({"search": ["Give search or ids (one of them)"]})
        return attrs


class BulkUpdateChangeSerializer(StrictSerializer):
    flags = FlagEditSerializer()


class BulkUpdateSerializer(_Selection):
    update = BulkUpdateChangeSerializer()


class BulkMoveSerializer(_Selection):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Destination folder")


class BulkDeleteSerializer(_Selection):
    force = serializers.BooleanField(required=False, default=False,
                                     help_text="Expunge instead of moving to Trash")


class BulkUpdateResultSerializer(serializers.Serializer):
    flags = FlagsAnswerSerializer()
    matched = serializers.IntegerField(help_text="Messages selected")
    updated = serializers.IntegerField(help_text="Of those, still on the server and stored")
    changed = serializers.IntegerField(help_text="Of those, whose flags really changed")


class BulkMoveResultSerializer(serializers.Serializer):
    path = serializers.CharField()
    matched = serializers.IntegerField()
    moved = serializers.IntegerField()
    idMap = serializers.ListField(child=serializers.ListField(child=serializers.CharField()),
                                  help_text="[old id, new id] pairs")


class BulkDeleteResultSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()
    matched = serializers.IntegerField()
    expunged = serializers.IntegerField(required=False)
    moved = BulkMoveResultSerializer(required=False)
