"""The structured message fields that uploads and sends accept (EmailEngine's names)."""

from __future__ import annotations

from rest_framework import serializers

from emailapi.api.serializers import StrictSerializer


class AddressInSerializer(StrictSerializer):
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    address = serializers.EmailField(max_length=320)


class AttachmentInSerializer(StrictSerializer):
    filename = serializers.CharField(max_length=256, required=False)
    contentType = serializers.CharField(max_length=128, required=False)
    content = serializers.CharField(help_text="base64")
    cid = serializers.CharField(max_length=256, required=False,
                                help_text="Content-ID, for an inline image the HTML shows")
    contentDisposition = serializers.ChoiceField(choices=["attachment", "inline"],
                                                 required=False)


class ReferenceInSerializer(StrictSerializer):
    message = serializers.CharField(max_length=256, help_text="Id of the referenced message")
    action = serializers.ChoiceField(choices=["reply", "replyAll", "forward"], default="reply")
    inline = serializers.BooleanField(default=False,
                                      help_text="Quote the original in the new text")


class MessageFieldsSerializer(StrictSerializer):
    """Structured fields; ``from`` is declared in ``get_fields`` (a Python keyword)."""

    to = AddressInSerializer(many=True, required=False)
    cc = AddressInSerializer(many=True, required=False)
    bcc = AddressInSerializer(many=True, required=False)
    replyTo = AddressInSerializer(many=True, required=False)
    subject = serializers.CharField(max_length=998, required=False, allow_blank=True,
                                    trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    attachments = AttachmentInSerializer(many=True, required=False)
    headers = serializers.DictField(child=serializers.CharField(max_length=998),
                                    required=False)
    messageId = serializers.CharField(max_length=998, required=False)
    reference = ReferenceInSerializer(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = AddressInSerializer(required=False)
        return fields


STRUCTURED = ("from", "to", "cc", "bcc", "replyTo", "subject", "text", "html", "attachments",
              "headers", "messageId", "reference")
