"""The documented message shapes (EmailEngine's names): a message in listings, search results,
threads and events, a whole message, and the query parameters of reading them."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer


class MessagesQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False,
                                 help_text="Folder path, or a special use such as \\Sent")
    cursor = serializers.CharField(max_length=512, required=False,
                                   help_text="nextPageCursor of the previous page")


class MessageQuerySerializer(QuerySerializer):
    textType = serializers.ChoiceField(choices=["plain", "html", "*"], default="*")
    maxBytes = serializers.IntegerField(min_value=1, max_value=50 * 1024 * 1024,
                                        default=5 * 1024 * 1024,
                                        help_text="Truncate each text part (hasMore: true)")
    markAsSeen = serializers.BooleanField(
        default=False, help_text="Add \\Seen (reading never does otherwise); a change, so a "
                                 "read-only token gets 403 InsufficientScope")
    headers = serializers.BooleanField(default=False, help_text="Include all headers")


class AddressSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    address = serializers.CharField(allow_blank=True)


class MessageSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    uid = serializers.IntegerField()
    path = serializers.CharField()
    emailId = serializers.CharField(allow_null=True)
    threadId = serializers.CharField(allow_null=True)
    date = serializers.DateTimeField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    labels = serializers.ListField(child=serializers.CharField())
    unseen = serializers.BooleanField()
    flagged = serializers.BooleanField()
    answered = serializers.BooleanField()
    draft = serializers.BooleanField()
    size = serializers.IntegerField()
    subject = serializers.CharField(allow_blank=True)
    # "from" is a Python keyword: declared below.
    sender = AddressSerializer(allow_null=True)
    replyTo = AddressSerializer(many=True)
    to = AddressSerializer(many=True)
    cc = AddressSerializer(many=True)
    bcc = AddressSerializer(many=True)
    messageId = serializers.CharField(allow_null=True)
    inReplyTo = serializers.CharField(allow_null=True)
    hasAttachments = serializers.BooleanField()


MessageSummarySerializer._declared_fields["from"] = AddressSerializer(allow_null=True)


class MessageListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    nextPageCursor = serializers.CharField(allow_null=True)
    messages = MessageSummarySerializer(many=True)


class TextSerializer(serializers.Serializer):
    plain = serializers.CharField(allow_null=True, allow_blank=True)
    html = serializers.CharField(allow_null=True, allow_blank=True)
    hasMore = serializers.BooleanField()


class AttachmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    filename = serializers.CharField(allow_null=True)
    contentType = serializers.CharField(allow_null=True)
    size = serializers.IntegerField()
    encodedSize = serializers.IntegerField()
    contentId = serializers.CharField(allow_null=True)
    inline = serializers.BooleanField()


class MessageDetailSerializer(MessageSummarySerializer):
    references = serializers.ListField(child=serializers.CharField())
    text = TextSerializer()
    attachments = AttachmentSerializer(many=True)
    headers = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    required=False)
