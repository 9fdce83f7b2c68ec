"""Sending: ``POST /v1/account/{account}/submit`` and the outbox routes (EmailEngine's names).

Thin views over ``mailboxes.outbox`` (the queue in PostgreSQL) and ``mailboxes.sending`` (the
rq job). Submitting composes the message, stores it as an outbox entry and answers at once,
200 with EmailEngine's body (``response: "Queued for delivery"``), or 202 when the request
says ``Prefer: respond-async`` (our answer before EmailEngine's shape); nothing here opens
an SMTP connection.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.errors import status_of
from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from emailapi.lib import tunnels
from emailapi.lib.errors import DomainError
from emailapi.lib.timestamps import utc_iso
from mailboxes import (
    attachment_references,
    blocklists,
    compose,
    gateways,
    idempotency,
    list_sends,
    listing,
    local_address,
    outbox,
    sending,
    smtp_status,
    templates,
    tracking,
)
from mailboxes.api.compose_serializer import (
    STRUCTURED,
    AddressSerializer,
    MessageFieldsSerializer,
    OneOrListField,
    SubmittedReferenceSerializer,
    reference_answer,
)
from mailboxes.errors import InvalidInput, UnknownGateway
from mailboxes.models import OutboxEntry
from webhooks import engine_settings

PREFER_PARAM = OpenApiParameter(
    "Prefer", str, OpenApiParameter.HEADER, required=False,
    description="`respond-async`: answer 202 (emailapi's status before it took "
                "EmailEngine's 200); the body is the same")
IDEMPOTENCY_PARAM = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Send at most once per key (24 hours, per account): a repeat gets the first "
                "answer with `idempotency.status: HIT`; 409 `IdempotencyKeyInUse` while the "
                "first is still being processed")
IN_USE = OpenApiResponse(OpenApiTypes.OBJECT, description="The first request with this "
                         "Idempotency-Key is still being processed (`IdempotencyKeyInUse`)")
QUEUED = "Queued for delivery"
SKIPPED = "Skipped: the recipient is on the list's blocklist"
DRY_RUN = "Dry run"
DRAFT_PARAM = OpenApiParameter("id", str, OpenApiParameter.PATH,
                               description="Id of the stored draft")
QUEUE_PARAM = OpenApiParameter("queueId", str, OpenApiParameter.PATH,
                               description="Queue id returned by submit")
PROGRESS = {"queued": "queued", "sending": "processing", "sent": "submitted",
            "failed": "error", "cancelled": "cancelled"}
MAX_ATTEMPTS = 100


# --- request and response shapes ---------------------------------------------------------


class AttemptsField(serializers.IntegerField):
    """``deliveryAttempts``: EmailEngine takes 0 to 100, and 0 means a single try."""

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)  # the bounds are checked on the value given
        return value if value is None else max(1, value)


class EnvelopeSerializer(StrictSerializer):
    # ``from`` is a Python keyword: declared under its JSON name in get_fields.
    to = OneOrListField(child=serializers.EmailField(max_length=320), min_length=1,
                        max_length=500, required=False,
                        help_text="RCPT TO addresses (one alone is taken too)")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.EmailField(max_length=320, required=False,
                                                allow_blank=True, help_text="MAIL FROM address")
        return fields


@extend_schema_serializer(examples=[
    OpenApiExample("Raw message, sent in an hour", request_only=True, value={
        "raw": base64.b64encode(b"From: me@example.com\r\nTo: you@example.com\r\n"
                                b"Subject: Hello\r\n\r\nHi!\r\n").decode(),
        "sendAt": "2030-01-01T12:00:00Z", "copy": True, "deliveryAttempts": 5,
    }),
])
class DsnSerializer(StrictSerializer):
    """EmailEngine's ``dsn``: delivery status notifications asked of the SMTP server (RFC
    3461), sent only where it offers DSN."""

    id = serializers.CharField(max_length=100, required=False,
                               help_text="The envelope id the notifications carry (ENVID)")
    # ``return``: a Python keyword; named in ``get_fields``.
    returns = serializers.ChoiceField(choices=["headers", "full"],
                                      help_text="What of the message a notification returns")
    notify = OneOrListField(
        child=serializers.ChoiceField(choices=["never", "success", "failure", "delay"]),
        required=False, max_length=4, help_text="When to notify (default: the server's)")
    recipient = serializers.EmailField(
        max_length=320, required=False,
        help_text="The original recipient the notifications name (ORCPT)")

    def get_fields(self):
        fields = super().get_fields()
        fields["return"] = fields.pop("returns")
        return fields

    def validate_notify(self, value: list[str]) -> list[str]:
        if "never" in value and len(value) > 1:
            raise serializers.ValidationError("never goes alone")
        return list(dict.fromkeys(value))

    def validate_id(self, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise serializers.ValidationError("Printable ASCII only")
        return value


class SendOptionsSerializer(StrictSerializer):
    """How a message is sent, whichever way it was given (``submit``, a stored draft)."""

    sendAt = serializers.DateTimeField(required=False,
                                       help_text="Send no earlier than this (ISO 8601)")
    copy = serializers.BooleanField(required=False, allow_null=True,
                                    help_text="Store a copy in the Sent folder; default "
                                              "(or null, as EmailEngine's example sends): "
                                              "the account's `copy` setting")
    deliveryAttempts = AttemptsField(
        min_value=0, max_value=MAX_ATTEMPTS, required=False,
        help_text="Tries before giving up (default: the retry schedule's length + 1); 0 is "
                  "one try, as in EmailEngine")
    dsn = DsnSerializer(required=False)
    sentMailPath = serializers.CharField(
        max_length=1024, required=False,
        help_text="The folder the copy goes to (a path, or a special use such as \\Sent) "
                  "instead of the Sent folder; 404 MailboxNotFound if the account has none")
    gateway = serializers.CharField(
        max_length=256, required=False,
        help_text="Send through this SMTP gateway of yours (`POST /v1/gateway`) instead of the "
                  "account's SMTP server; 400 `GatewayNotFound` if you have none of that id")
    localAddress = serializers.CharField(
        max_length=64, required=False, allow_blank=True,
        help_text="The local IP address to connect to the SMTP server from (EmailEngine's): "
                  "a hint, used when it is one of this service's sending addresses, else "
                  "the usual choice; `networkRouting` in messageSent says which was used")

    def validate_localAddress(self, value: str) -> str:  # noqa: N802 - EmailEngine's field name
        """An IPv4 or IPv6 address, written as ``ipaddress`` writes it ("" for none, as
        EmailEngine takes an empty one)."""
        if not value.strip():
            return ""
        address = local_address.normalized(value)
        if address is None:
            raise serializers.ValidationError("Must be an IP address, such as 192.0.2.10 or "
                                              "2001:db8::10")
        return address

    proxy = serializers.CharField(
        max_length=2048, required=False, allow_blank=True,
        help_text="The proxy this send goes through instead of the account's (EmailEngine's): "
                  "socks5://, socks4://, socks:// (SOCKS5) or http:// (HTTP CONNECT), with "
                  "user:password@ when the proxy wants a login; its password is kept sealed "
                  "and never shown")

    def validate_proxy(self, value: str) -> str:
        """A proxy URL ``tunnels.parse`` reads ("" for none: the account's proxy applies)."""
        if not value.strip():
            return ""
        try:
            tunnels.parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class RenderSerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=templates.FORMATS, required=False,
                                     help_text="The language of `html`: markdown makes it HTML "
                                               "after rendering")
    params = serializers.DictField(required=False,
                                   help_text="What {{params.*}} reads in the Handlebars of "
                                             "the subject, text, html and previewText")


@extend_schema_field({"oneOf": [
    {"type": "boolean", "enum": [False]},
    {"type": "object", "additionalProperties": False, "properties": {
        "format": {"type": "string", "enum": list(templates.FORMATS)},
        "params": {"type": "object", "additionalProperties": True}}}]})
class RenderField(serializers.Field):
    """EmailEngine's ``render``: ``{format, params}`` renders the send's fields (Handlebars),
    ``false`` leaves a template's content as it is stored."""

    def to_internal_value(self, data):
        if data is False:
            return False
        serializer = RenderSerializer(data=data)
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        return dict(serializer.validated_data)

    def to_representation(self, value):
        return value


MAX_MAIL_MERGE = 1000
# What a mail merge sets for each recipient, so not taken at the message's root (EmailEngine's
# rule); dryRun's preview is one message, a merge is many.
NOT_WITH_MAIL_MERGE = ("to", "cc", "bcc", "envelope", "raw", "render", "messageId", "dryRun")


class MailMergeEntrySerializer(StrictSerializer):
    to = AddressSerializer(help_text="This message's one recipient")
    params = serializers.DictField(required=False,
                                   help_text="What {{params.*}} reads in this message")
    messageId = serializers.CharField(max_length=998, required=False,
                                      help_text="Default: <uuid@domain of from>")
    sendAt = serializers.DateTimeField(required=False,
                                       help_text="Send no earlier than this, instead of the "
                                                 "message's sendAt")


class SubmitSerializer(MessageFieldsSerializer, SendOptionsSerializer):
    raw = serializers.CharField(required=False, help_text="The whole RFC 822 message, base64")
    envelope = EnvelopeSerializer(required=False,
                                  help_text="SMTP envelope; default: From and To/Cc/Bcc")
    dryRun = serializers.BooleanField(
        default=False, help_text="Compose only: the answer's `preview` is the message "
                                 "(base64 RFC 822) as it would be sent; nothing is queued")
    previewText = serializers.CharField(
        max_length=1024, required=False,
        help_text="The line inboxes show after the subject: put first in the HTML body, "
                  "hidden when the message is opened (needs `html`)")
    template = serializers.CharField(
        max_length=64, required=False,
        help_text="A stored template's id (/v1/templates): its subject, text, html and "
                  "previewText take the place of these fields, rendered with `render`")
    render = RenderField(required=False)
    listId = serializers.CharField(
        max_length=blocklists.MAX_LIST_ID, required=False,
        help_text="EmailEngine's mailing-list send (one `to` a message, as a mail merge "
                  "makes them): skipped when the recipient is on this list's blocklist, "
                  "else sent with List-ID, List-Unsubscribe (a link to this service's "
                  "unsubscribe page) and List-Unsubscribe-Post (one-click), rendered with "
                  "{{rcpt.unsubscribeUrl}}. A host-name-like id: newsletter, news.example")
    trackOpens = serializers.BooleanField(
        required=False, help_text="Put a 1x1 image in the HTML that raises `trackOpen` when it "
                                  "is fetched (default: the `trackOpens` setting, else "
                                  "`trackingEnabled`); a raw message's HTML parts too")
    trackClicks = serializers.BooleanField(
        required=False, help_text="Point the HTML's http(s) links at this service's "
                                  "/redirect, which raises `trackClick` and redirects (default: "
                                  "the `trackClicks` setting, else `trackingEnabled`); a raw "
                                  "message's HTML parts too")
    trackingEnabled = serializers.BooleanField(
        required=False, help_text="EmailEngine's older name: the default of both trackOpens "
                                  "and trackClicks")
    baseUrl = serializers.CharField(
        max_length=2048, required=False, allow_blank=True,
        help_text="This service's URL as the message's readers reach it: the tracking and "
                  "unsubscribe links start with it and {{service.url}} shows it (default: the "
                  "`serviceUrl` setting, else the host the request came to)")
    mailMerge = serializers.ListField(
        child=MailMergeEntrySerializer(), required=False, min_length=1,
        max_length=MAX_MAIL_MERGE,
        help_text="EmailEngine's mail merge: one message for each entry, to its `to`, "
                  "rendered with its `params`; the answer's `mailMerge` says how each went. "
                  "Not with to, cc, bcc, envelope, raw, render, messageId or dryRun")

    def validate_raw(self, value: str) -> bytes:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("Not valid base64") from None
        if not raw.strip():
            raise serializers.ValidationError("The message is empty")
        return raw

    def validate_baseUrl(self, value: str) -> str:  # noqa: N802 - EmailEngine's field name
        value = value.strip()
        if not value:
            return ""
        if not tracking.is_web_url(value):
            raise serializers.ValidationError("Must be an http(s) URL, such as "
                                              "https://mail.example.com")
        parts = urlsplit(value)
        if parts.query or parts.fragment or parts.username is not None:
            raise serializers.ValidationError("Give the URL alone: no user, query or fragment")
        return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"

    def validate_listId(self, value: str) -> str:  # noqa: N802 - EmailEngine's field name
        problem = blocklists.list_id_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs):
        structured = [name for name in STRUCTURED if name in attrs and name != "reference"]
        if "raw" in attrs and structured:
            raise serializers.ValidationError(
                {"raw": [f"Give raw or structured fields, not both ({structured[0]})"]})
        if attrs.get("listId") and not attrs.get("mailMerge"):
            _one_list_recipient(attrs)
        if attrs.get("mailMerge"):
            given = [name for name in NOT_WITH_MAIL_MERGE if attrs.get(name) not in (None, False)]
            if given:
                raise serializers.ValidationError({name: [
                    "Not taken with mailMerge: each entry gives its own"] for name in given})
            return attrs
        for name in ("template", "render"):
            if "raw" in attrs and attrs.get(name):
                raise serializers.ValidationError(
                    {name: ["Not taken with raw: the message is sent as it is"]})
        if "template" in attrs:  # the template gives the content
            return attrs
        if "previewText" in attrs and "html" not in attrs:
            raise serializers.ValidationError(
                {"previewText": ["Needs html: it is put in the HTML body"]})
        if "raw" not in attrs and not structured:
            raise serializers.ValidationError(
                {"raw": ["Give raw, or structured fields (to, subject, text...)"]})
        return attrs


def _one_list_recipient(attrs: dict) -> None:
    """A list message names its one recipient in ``to``: the unsubscribe link is theirs."""
    if "raw" in attrs:
        raise serializers.ValidationError(
            {"listId": ["Not taken with raw: give to, subject, text..."]})
    if len(attrs.get("to") or []) != 1 or attrs.get("cc") or attrs.get("bcc"):
        raise serializers.ValidationError({"listId": [
            "A list message goes to one recipient: exactly one to, no cc or bcc (a mail "
            "merge makes one message per recipient)"]})


class DraftSubmitSerializer(SendOptionsSerializer):
    """What ``message/{id}/submit`` may change of the stored draft: how it is sent."""

    envelope = EnvelopeSerializer(required=False,
                                  help_text="SMTP envelope; default: the draft's From and "
                                            "To/Cc/Bcc")


class MillisecondsDateTimeField(serializers.DateTimeField):
    """``2026-01-01T12:00:00.000Z``: UTC with milliseconds, as EmailEngine writes dates."""

    def to_representation(self, value):
        return utc_iso(value)


class IdempotencySerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The request's Idempotency-Key")
    status = serializers.ChoiceField(
        choices=["MISS", "HIT"], help_text="MISS: processed now; HIT: the kept answer of an "
                                           "earlier request with the key (nothing sent again)")


class MergedAddressSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    address = serializers.CharField()


class SkippedSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="The blocklist entry's reason (unsubscribe, "
                                             "or the one given to POST /v1/blocklist)")
    listId = serializers.CharField()


class MailMergeResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    to = MergedAddressSerializer(help_text="The entry's `to`, as given")
    messageId = serializers.CharField(required=False)
    queueId = serializers.CharField(required=False)
    sendAt = MillisecondsDateTimeField(required=False)
    error = serializers.CharField(required=False, help_text="Why this one was not queued")
    code = serializers.CharField(required=False)
    statusCode = serializers.IntegerField(required=False)
    skipped = SkippedSerializer(required=False, help_text="Set when the message was not "
                                "queued: its recipient is on the listId's blocklist")


class SubmittedSerializer(serializers.Serializer):
    response = serializers.CharField(help_text='"Queued for delivery" ("Dry run" with '
                                               '`dryRun`, "Skipped: ..." with `skipped`)')
    messageId = serializers.CharField(required=False, help_text="The Message-ID header, with "
                                      "angle brackets (not with `mailMerge`)")
    sendAt = MillisecondsDateTimeField(required=False,
                                       help_text="When it is sent, at the earliest")
    queueId = serializers.CharField(required=False,
                                    help_text="Follow it with `GET /v1/outbox/{queueId}`")
    preview = serializers.CharField(required=False, help_text="`dryRun` only: the message "
                                    "as it would be sent, base64 RFC 822 (no queueId, sendAt)")
    reference = SubmittedReferenceSerializer(required=False,
                                             help_text="Only when a reference was given")
    idempotency = IdempotencySerializer(required=False,
                                        help_text="Only with an Idempotency-Key header")
    mailMerge = MailMergeResultSerializer(many=True, required=False,
                                          help_text="`mailMerge` only: each entry's message")
    skipped = SkippedSerializer(required=False, help_text="`listId` only: nothing was "
                                "queued, the recipient is on the list's blocklist")


class OutboxEnvelopeSerializer(serializers.Serializer):
    to = serializers.ListField(child=serializers.CharField())

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(allow_blank=True)
        return fields


class OutboxErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    responseCode = serializers.IntegerField(allow_null=True)


class ProgressErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What failed: the server's reply, else our words")
    code = serializers.CharField(allow_null=True)
    statusCode = serializers.IntegerField(allow_null=True, help_text="The SMTP reply code")
    networkRouting = serializers.JSONField(required=False,
                                           help_text="The local address it went out from")


class ProgressSerializer(serializers.Serializer):
    """EmailEngine's ``progress``: the status in its words (plus our ``cancelled``), the
    server's answer once sent, the last failed attempt's error while one is kept."""

    status = serializers.ChoiceField(choices=sorted(set(PROGRESS.values())))
    response = serializers.CharField(required=False,
                                     help_text="Once submitted: the server's answer to DATA")
    messageId = serializers.CharField(required=False, help_text="Once submitted")
    originalMessageId = serializers.CharField(
        required=False, help_text="Once submitted: the Message-ID asked for (the same here: "
                                  "an SMTP server does not rewrite it)")
    error = ProgressErrorSerializer(
        required=False, help_text="The last failed attempt (also while queued for a retry); "
                                  "`lastError` is the same in our names")


class SentCopySerializer(serializers.Serializer):
    path = serializers.CharField(required=False)
    uid = serializers.IntegerField(required=False, allow_null=True)
    id = serializers.CharField(required=False, allow_null=True)
    error = serializers.CharField(required=False)


class OutboxEntrySerializer(serializers.Serializer):
    queueId = serializers.CharField(source="queue_id")
    account = serializers.CharField(source="email_account.account_id")
    source = serializers.CharField()
    messageId = serializers.CharField(source="message_id")
    subject = serializers.CharField()
    envelope = OutboxEnvelopeSerializer()
    state = serializers.ChoiceField(choices=OutboxEntry.State.choices)
    progress = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at")
    scheduled = serializers.DateTimeField(source="send_at")
    nextAttempt = serializers.SerializerMethodField()
    attemptsMade = serializers.IntegerField(source="attempts")
    deliveryAttempts = serializers.IntegerField(source="max_attempts")
    attempts = serializers.IntegerField(source="max_attempts",
                                        help_text="EmailEngine's name of `deliveryAttempts`")
    lastError = OutboxErrorSerializer(source="last_error", allow_null=True)
    response = serializers.CharField(allow_blank=True,
                                     help_text="The server's answer to DATA once sent")
    sent = serializers.DateTimeField(source="sent_at", allow_null=True)
    sentCopy = SentCopySerializer(source="sent_copy", allow_null=True)
    gateway = serializers.SerializerMethodField(help_text="The gateway it goes through, or null")
    localAddress = serializers.SerializerMethodField(help_text="The local address asked, or null")
    proxy = serializers.SerializerMethodField(
        help_text="The proxy asked for this send (its password shown as ******), or null")

    def get_gateway(self, obj) -> str | None:
        return obj.gateway or None

    def get_localAddress(self, obj) -> str | None:
        return obj.local_address or None

    def get_proxy(self, obj) -> str | None:
        return obj.proxy or None  # stored masked

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, obj) -> dict:
        progress = {"status": PROGRESS[obj.state]}
        if obj.state == OutboxEntry.State.SENT:
            progress.update(response=obj.response, messageId=obj.message_id,
                            originalMessageId=obj.message_id)
        else:
            error = smtp_status.progress_error(obj.last_error)
            if error is not None:
                progress["error"] = error
        return progress

    @extend_schema_field({"oneOf": [{"type": "string", "format": "date-time"},
                                    {"type": "boolean", "enum": [False]}], "nullable": True})
    def get_nextAttempt(self, obj):
        """When a queued entry is tried next; false once no attempt is left (failed or
        cancelled), as EmailEngine's; null while one is being made or once sent."""
        if obj.state == OutboxEntry.State.QUEUED:
            return serializers.DateTimeField().to_representation(obj.next_attempt_at)
        if obj.state in (OutboxEntry.State.FAILED, OutboxEntry.State.CANCELLED):
            return False
        return None


class OutboxListSerializer(serializers.Serializer):
    messages = OutboxEntrySerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()


class OutboxQuerySerializer(PageQuerySerializer):
    state = serializers.ChoiceField(choices=OutboxEntry.State.values, required=False,
                                    help_text="Only entries in this state (default: queued "
                                              "and sending)")
    account = serializers.CharField(max_length=256, required=False,
                                    help_text="Only this account's entries")


class CancelledSerializer(serializers.Serializer):
    deleted = serializers.BooleanField()


def service_url(request, tenant, row=None) -> str:
    """This service's public URL, as a template's ``{{service.url}}`` shows it and a list
    message's unsubscribe link starts: the tenant's ``serviceUrl`` setting (as EmailEngine's),
    else this deployment's ``EMAILAPI_SERVICE_URL``, else the host the request came to.
    ``row``: the tenant's settings (``engine_settings.of``), when the caller has them."""
    row = engine_settings.of(tenant) if row is None else row
    return (row.service_url or settings.EMAILAPI_SERVICE_URL
            or request.build_absolute_uri("/").rstrip("/"))


def _composed(account, data: dict, html_filter=None) -> dict:
    """What the outbox stores, from ``raw`` or the structured fields (``mailboxes.compose``
    derives the envelope, adds a missing Message-ID and keeps Bcc out of the headers);
    ``html_filter``: the send's tracking (``mailboxes.tracking.trackers``)."""
    composed = compose.compose(account, data, data.get("envelope"), for_sending=True,
                               html_filter=html_filter)
    return {"raw": composed.raw, "message_id": composed.message_id, "subject": composed.subject,
            "envelope": {"from": composed.envelope_from, "to": composed.envelope_to},
            "reference_found": composed.reference is not None}


# --- views -------------------------------------------------------------------------------


def respond_async(request) -> bool:
    """``Prefer: respond-async`` (RFC 7240): the caller wants 202 Accepted."""
    prefer = request.headers.get("Prefer", "")
    return any(token.split("=")[0].strip().lower() == "respond-async"
               for token in prefer.replace(";", ",").split(","))


def _answer(body: dict, reference: dict | None, found: bool) -> dict:
    """With a reference, EmailEngine's ``reference: {message, success}`` (plus ``error``
    when it was not found)."""
    if reference:
        body["reference"] = reference_answer(reference, found)
    return SubmittedSerializer(body).data


def queued_body(entry, reference: dict | None = None, found: bool = True) -> dict:
    """EmailEngine's answer to a submit: ``{response, messageId, sendAt, queueId}``."""
    return _answer({"response": QUEUED, "messageId": entry.message_id,
                    "sendAt": entry.send_at, "queueId": entry.queue_id}, reference, found)


def dry_run_body(composed: dict, reference: dict | None, found: bool) -> dict:
    """EmailEngine's ``dryRun`` answer: ``{response: "Dry run", messageId, preview}``."""
    return _answer({"response": DRY_RUN, "messageId": composed["message_id"],
                    "preview": base64.b64encode(composed["raw"]).decode()}, reference, found)


class SubmitBase(TenantScopedAPIView):
    def _sent_path(self, data: dict) -> str:
        """The send's ``sentMailPath``, checked to be one of the account's folders ("" for
        none): its path as the index has it."""
        path = data.get("sentMailPath") or ""
        return listing.folder_for_path(self.email_account, path).path if path else ""

    def _gateway(self, data: dict) -> str:
        """The send's ``gateway``, checked to be one of the tenant's ("" for none)."""
        gateway_id = data.get("gateway") or ""
        if gateway_id and gateways.find(self.tenant, gateway_id) is None:
            raise UnknownGateway(gateway_id)
        return gateway_id

    def answer_once(self, request, produce) -> Response:
        """``produce()`` (which queues and returns the answer's body) run once per
        ``Idempotency-Key``: a repeat gets the kept answer with ``idempotency.status: HIT``.
        200, or 202 with ``Prefer: respond-async``."""
        status = 202 if respond_async(request) else 200
        key = idempotency.clean_key(request.headers.get("Idempotency-Key"))
        if key is None:
            return Response(produce(), status=status)
        if len(key) > idempotency.MAX_KEY:
            raise InvalidInput("Invalid input: Idempotency-Key: at most 1024 characters",
                               {"Idempotency-Key": ["At most 1024 characters"]})
        scope = (self.tenant.pk, self.email_account.account_id, key)
        kept = idempotency.begin(*scope)
        if kept is not None:
            return Response({**kept, "idempotency": {"key": key, "status": "HIT"}},
                            status=status)
        try:
            body = dict(produce())
        except BaseException:
            with contextlib.suppress(Exception):
                idempotency.abandon(*scope)
            raise
        idempotency.finish(*scope, body)
        return Response({**body, "idempotency": {"key": key, "status": "MISS"}}, status=status)


class SubmitView(SubmitBase):
    @cached_property
    def tenant_settings(self):
        """The tenant's settings (service URL, tracking defaults), read once a request."""
        return engine_settings.of(self.tenant)

    def service(self, data: dict) -> str:
        """The URL the send's links start with: its ``baseUrl``, else ``service_url``."""
        return data.get("baseUrl") or service_url(self.request, self.tenant,
                                                  self.tenant_settings)

    def trackers(self, data: dict, service: str):
        """The send's open and click tracking (``compose``'s ``html_filter``), or None: off,
        or a dry run (EmailEngine's preview has none). A raw message's HTML parts are tracked
        as EmailEngine tracks them (``mailboxes.mime_rewrite``)."""
        if data["dryRun"]:
            return None
        row = self.tenant_settings
        opens, clicks = tracking.wanted(data, row.track_opens, row.track_clicks)
        if not (opens or clicks):
            return None
        return tracking.trackers(service, self.tenant.pk, self.email_account.account_id,
                                 opens=opens, clicks=clicks)

    @extend_schema(
        operation_id="submitMessage", tags=["Submit"],
        parameters=[ACCOUNT_PARAM, PREFER_PARAM, IDEMPOTENCY_PARAM], request=SubmitSerializer,
        responses={200: SubmittedSerializer,
                   202: OpenApiResponse(SubmittedSerializer,
                                        description="The same, with `Prefer: respond-async`"),
                   409: IN_USE},
        summary="Queue a message for sending",
        description="Stores the message in the outbox and answers at once (EmailEngine's "
                    "`response: \"Queued for delivery\"`); a worker sends it "
                    "through the account's SMTP server, retrying transient failures on the "
                    "retry schedule, then stores a copy in Sent (unless `copy` is off) and "
                    "raises `messageSent`, or `messageFailed` after the last try. `sendAt` "
                    "delays it. Follow it with `GET /v1/outbox/{queueId}`. A `reference` "
                    "that is not found answers 404, or with `reference.ignoreMissing` sends "
                    "anyway and says `reference.success: false`. An attachment given by "
                    "`reference` (an attachment id of this account) is read from the mail "
                    "server now, before the answer, so the queued message holds it: an "
                    "unknown one is 404 `AttachmentNotFound` (`code`: `ReferenceNotFound`) "
                    "and nothing is queued.")
    def post(self, request, account):
        data = self.validated(SubmitSerializer, request.data)
        if data["dryRun"]:  # nothing happens, so nothing to do once
            return Response(self.queue(data))
        if data.get("mailMerge"):
            return self.answer_once(request, lambda: self.queue_merge(data))
        return self.answer_once(request, lambda: self.queue(data))

    def queue_merge(self, data: dict) -> dict:
        """EmailEngine's mail merge: a message per entry, each queued on its own. A template
        the account cannot use is the whole request's 404, before anything is queued; what
        goes wrong with one entry's message (it does not render, say) is that entry's
        ``success: false``, and the others are queued as EmailEngine does."""
        email_account = self.email_account
        base = {key: value for key, value in data.items() if key != "mailMerge"}
        # What every entry shares is read once, not once an entry: the template, the service
        # URL, and referenced attachments (from the mail server).
        template = templates.usable(email_account, base["template"]) \
            if base.get("template") else None
        service = self.service(base)
        base = attachment_references.with_contents(email_account, base, self.body_room())
        blocked = blocklists.blocked_among(
            self.tenant, base["listId"], [entry["to"]["address"] for entry in data["mailMerge"]]
        ) if base.get("listId") else None
        results = []
        for entry in data["mailMerge"]:
            one = {**base, "to": [entry["to"]], "render": {"params": entry.get("params") or {}}}
            one.update({key: entry[key] for key in ("messageId", "sendAt") if entry.get(key)})
            try:
                body = self.queue(one, template, service, blocked)
            except DomainError as exc:
                results.append({"success": False, "to": entry["to"], "error": exc.message,
                                "code": exc.code, "statusCode": status_of(exc)})
                continue
            if body.get("skipped"):
                results.append({"success": True, "to": entry["to"], "skipped": body["skipped"]})
                continue
            done = {"success": True, "to": entry["to"], "messageId": body["messageId"],
                    "queueId": body["queueId"]}
            if body.get("sendAt"):
                done["sendAt"] = body["sendAt"]  # as queue() wrote it, with milliseconds
            results.append(done)
        return {"response": QUEUED, "mailMerge": results}

    def queue(self, data: dict, template=None, service: str | None = None,
              blocked: dict | None = None) -> dict:
        """Compose and queue one message; ``template``, ``service`` and ``blocked`` (a
        list's entries) as a mail merge reads them once for all its messages (otherwise read
        here)."""
        email_account = self.email_account
        service = self.service(data) if service is None else service
        if data.get("listId"):
            data, skipped = list_sends.prepared(email_account, data, service, blocked)
            if skipped is not None:
                return SubmittedSerializer({"response": SKIPPED, "skipped": skipped}).data
        if data.get("template") or isinstance(data.get("render"), dict) or data.get("rcpt"):
            data = templates.applied(email_account, data, service, template)
        # Referenced attachments are read now: the outbox keeps the whole message.
        data = attachment_references.with_contents(email_account, data, self.body_room())
        reference = data.get("reference")
        # A reference not found is a 404 unless it says ignoreMissing (``compose``).
        composed = _composed(email_account, data, self.trackers(data, service))
        found = composed["reference_found"]
        if data["dryRun"]:
            return dry_run_body(composed, reference, found)
        entry = outbox.submit(
            email_account, raw=composed["raw"], envelope=composed["envelope"],
            message_id=composed["message_id"], subject=composed["subject"],
            send_at=data.get("sendAt"), copy=data.get("copy"),
            reference={"message": reference["message"], "action": reference["action"]}
            if reference and found else None,
            delivery_attempts=data.get("deliveryAttempts"), gateway=self._gateway(data),
            sent_path=self._sent_path(data), dsn=data.get("dsn"),
            local_address=data.get("localAddress") or "", proxy=data.get("proxy") or "",
            on_due=sending.enqueue_quietly)
        return queued_body(entry, reference, found)


class DraftSubmitView(SubmitBase):
    @extend_schema(
        operation_id="submitDraft", tags=["Submit"],
        parameters=[ACCOUNT_PARAM, DRAFT_PARAM, PREFER_PARAM, IDEMPOTENCY_PARAM],
        request=DraftSubmitSerializer,
        responses={200: SubmittedSerializer, 409: IN_USE,
                   202: OpenApiResponse(SubmittedSerializer,
                                        description="The same, with `Prefer: respond-async`"),
                   400: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="Not a draft (`MessageNotDraft`)"),
                   404: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="No such message (`MessageNotFound`)")},
        summary="Send a stored draft",
        description="EmailEngine's draft send: the message (in the Drafts folder, or flagged "
                    "`\\Draft`) is read from the mail server and queued as it is, its "
                    "Message-ID kept, Bcc recipients in the envelope only. Once sent, a copy "
                    "goes to Sent (unless `copy` is off) and the draft is removed. The "
                    "answer is the same as `submit`'s.")
    def post(self, request, account, id):  # noqa: A002
        # EmailEngine's SubmitDraft body is nullable: a JSON null asks for nothing, as {} does.
        body = {} if request.data is None else request.data
        data = self.validated(DraftSubmitSerializer, body)
        return self.answer_once(request, lambda: self.queue(id, data))

    def queue(self, message_id: str, data: dict) -> dict:
        email_account = self.email_account
        raw = compose.load_draft(email_account, message_id)
        composed = _composed(email_account, {"raw": raw, "envelope": data.get("envelope")})
        entry = outbox.submit(
            email_account, raw=composed["raw"], envelope=composed["envelope"],
            message_id=composed["message_id"], subject=composed["subject"],
            send_at=data.get("sendAt"), copy=data.get("copy"),
            reference={"draft": message_id},
            delivery_attempts=data.get("deliveryAttempts"), gateway=self._gateway(data),
            sent_path=self._sent_path(data), dsn=data.get("dsn"),
            local_address=data.get("localAddress") or "", proxy=data.get("proxy") or "",
            on_due=sending.enqueue_quietly)
        return queued_body(entry)


class OutboxListView(TenantScopedAPIView):
    @extend_schema(
        operation_id="listOutbox", tags=["Outbox"], parameters=[OutboxQuerySerializer],
        responses={200: OutboxListSerializer}, summary="List queued messages",
        description="Your tenant's messages waiting to be sent (`queued`, `sending`), oldest "
                    "first; `state` lists another state (`sent`, `failed`, `cancelled`).")
    def get(self, request):
        query = self.validated(OutboxQuerySerializer, request.query_params)
        rows = outbox.tenant_entries(self.tenant, query.get("state"), query.get("account"))
        items, counters = paginate(rows, query["page"], query["pageSize"])
        return Response({"messages": OutboxEntrySerializer(items, many=True).data, **counters})


class OutboxEntryView(TenantScopedAPIView):
    @extend_schema(operation_id="getOutboxEntry", tags=["Outbox"], parameters=[QUEUE_PARAM],
                   responses={200: OutboxEntrySerializer}, summary="One queued message",
                   description="Its state, attempts, the last error with the SMTP reply code, "
                               "and once sent the server's answer and where the Sent copy went.")
    def get(self, request, queueId):
        return Response(OutboxEntrySerializer(outbox.tenant_entry(self.tenant, queueId)).data)

    @extend_schema(
        operation_id="deleteOutboxEntry", tags=["Outbox"], parameters=[QUEUE_PARAM],
        responses={200: CancelledSerializer, 409: OpenApiResponse(
            OpenApiTypes.OBJECT, description="Not queued any more: being sent or finished "
                                             "(`QueueEntryNotCancellable`)")},
        summary="Cancel a queued message",
        description="A `queued` entry becomes `cancelled` and is never sent. One being sent "
                    "or already finished answers 409 `QueueEntryNotCancellable`.")
    def delete(self, request, queueId):
        outbox.cancel(outbox.tenant_entry(self.tenant, queueId))
        return Response({"deleted": True})
