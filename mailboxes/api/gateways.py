"""EmailEngine's SMTP gateway routes: ``GET /v1/gateways``, ``GET``/``DELETE
/v1/gateway/{gateway}``, ``POST /v1/gateway`` (register, or replace an existing one's settings)
and ``PUT /v1/gateway/edit/{gateway}``. Thin views over ``mailboxes.gateways``; the password is
never answered (``"******"`` when one is set)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.serializers import TlsSerializer, id_problem, validate_host
from accounts.credentials import MASK
from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import TenantScopedAPIView
from mailboxes import gateways, smtp_status
from mailboxes.errors import GatewayNotFound
from mailboxes.message_fields import iso
from mailboxes.models import SmtpGateway

GATEWAY_PARAM = OpenApiParameter("gateway", str, OpenApiParameter.PATH,
                                 description="The gateway's id, as registered")
TAGS = ["SMTP Gateway"]


def validate_gateway_id(value: str) -> str:
    """As an account id: it goes in a URL path (``/v1/gateway/{gateway}``)."""
    problem = id_problem(value, "Gateway id")
    if problem:
        raise serializers.ValidationError(problem)
    return value


class _PassNamed:
    """``pass`` (EmailEngine's name, a Python keyword) declared as ``password``."""

    def get_fields(self):
        fields = super().get_fields()
        fields["pass"] = fields.pop("password")
        return fields


class GatewayUpdateSerializer(_PassNamed, StrictSerializer):
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    user = serializers.CharField(max_length=1024, required=False, allow_null=True,
                                 allow_blank=True, help_text="SMTP user; null or empty: none")
    password = serializers.CharField(
        max_length=1024, required=False, allow_null=True, allow_blank=True, write_only=True,
        trim_whitespace=False, help_text="SMTP password, stored encrypted and never answered; "
                                         "null or empty: none")
    host = serializers.CharField(max_length=255, required=False, validators=[validate_host])
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    secure = serializers.BooleanField(required=False,
                                      help_text="TLS from the start (465); false upgrades with "
                                                "STARTTLS when offered")
    tls = TlsSerializer(required=False, help_text="Ours, as a mailbox's server has it: "
                                                  "`rejectUnauthorized`, `minVersion`")



class GatewayCreateSerializer(GatewayUpdateSerializer):
    gateway = serializers.CharField(
        max_length=256, allow_null=True, allow_blank=True, validators=[validate_gateway_id],
        help_text="Your id for the gateway; null or empty generates one. An id you have already "
                  "replaces that gateway's settings (`state: existing`)")
    name = serializers.CharField(max_length=256)
    host = serializers.CharField(max_length=255, validators=[validate_host])
    port = serializers.IntegerField(min_value=1, max_value=65535)
    secure = serializers.BooleanField(default=False)


class GatewayErrorSerializer(serializers.Serializer):
    """Ours (``error``, ``time``) and EmailEngine's GatewayErrorEntry side by side
    (``mailboxes.smtp_status.error_entry``); ``code`` and ``responseCode`` are both's."""

    error = serializers.CharField(help_text="Ours: what failed, in words")
    code = serializers.CharField(allow_null=True, required=False)
    responseCode = serializers.IntegerField(allow_null=True, required=False)
    time = serializers.CharField(help_text="Ours: when, ISO 8601")
    created = serializers.IntegerField(allow_null=True,
                                       help_text="EmailEngine's: when, ms since the epoch")
    status = serializers.ChoiceField(choices=["error"])
    response = serializers.CharField(allow_null=True,
                                     help_text="The server's reply, else our words")
    description = serializers.CharField(allow_null=True, help_text="In words")
    command = serializers.CharField(allow_null=True,
                                    help_text="The SMTP command refused (MAIL FROM, RCPT TO, "
                                              "DATA, AUTH) or CONN (no session); null when "
                                              "not known (errors kept before it was)")
    networkRouting = serializers.JSONField(allow_null=True,
                                           help_text="The local address it went out from")


class GatewayItemSerializer(serializers.Serializer):
    gateway = serializers.CharField()
    name = serializers.CharField()
    deliveries = serializers.IntegerField(help_text="Messages sent through it")
    lastUse = serializers.CharField(allow_null=True, help_text="Its last send, or null")
    lastError = GatewayErrorSerializer(allow_null=True,
                                       help_text="The last failed send through it, or null")


class GatewaySerializer(_PassNamed, GatewayItemSerializer):
    host = serializers.CharField()
    port = serializers.IntegerField()
    secure = serializers.BooleanField()
    tls = TlsSerializer(required=False)
    user = serializers.CharField(allow_null=True)
    password = serializers.CharField(required=False, help_text='"******" when one is set')


class GatewayListSerializer(serializers.Serializer):
    gateways = GatewayItemSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()


class GatewayUpdatedSerializer(serializers.Serializer):
    gateway = serializers.CharField()


class GatewayCreatedSerializer(GatewayUpdatedSerializer):
    state = serializers.ChoiceField(choices=["new", "existing"])


class GatewayDeletedSerializer(serializers.Serializer):
    gateway = serializers.CharField()
    deleted = serializers.BooleanField()


def _item(gateway: SmtpGateway) -> dict:
    return {"gateway": gateway.gateway_id, "name": gateway.name,
            "deliveries": gateway.deliveries, "lastUse": iso(gateway.last_use),
            "lastError": _last_error(gateway.last_error)}


def _last_error(stored: dict | None) -> dict | None:
    """The stored error with EmailEngine's GatewayErrorEntry names beside ours."""
    if not stored:
        return None
    return {**smtp_status.error_entry(stored, stored.get("time")), **stored}


def _detail(gateway: SmtpGateway) -> dict:
    out = {**_item(gateway), "host": gateway.host, "port": gateway.port,
           "secure": gateway.secure, "user": gateway.user or None}
    if gateway.tls:
        out["tls"] = gateway.tls
    if gateway.sealed_pass:
        out["pass"] = MASK
    return out


class GatewayBase(TenantScopedAPIView):
    def gateway(self, gateway_id: str) -> SmtpGateway:
        found = gateways.find(self.tenant, gateway_id)
        if found is None:
            raise GatewayNotFound(gateway_id)
        return found


class GatewayListView(GatewayBase):
    @extend_schema(operation_id="listGateways", tags=TAGS, parameters=[PageQuerySerializer],
                   responses={200: GatewayListSerializer}, summary="List SMTP gateways",
                   description="Your SMTP gateways, oldest first, with how each was used.")
    def get(self, request):
        query = self.validated(PageQuerySerializer, request.query_params)
        rows = SmtpGateway.objects.filter(tenant=self.tenant).order_by("created_at", "id")
        items, counters = paginate(rows, query["page"], query["pageSize"])
        return Response({"gateways": [_item(g) for g in items], **counters})


class GatewayCreateView(GatewayBase):
    @extend_schema(operation_id="createGateway", tags=TAGS, request=GatewayCreateSerializer,
                   responses={200: GatewayCreatedSerializer}, summary="Register an SMTP gateway",
                   description="An SMTP server of yours that sends an account's mail when a "
                               "send names it (`gateway` on submit). The password is stored "
                               "encrypted and never answered. A host on an internal address is "
                               "400 HostNotAllowed, as for a mailbox.")
    def post(self, request):
        data = dict(self.validated(GatewayCreateSerializer, request.data))
        gateway, state = gateways.save(self.tenant, data.pop("gateway", None), data)
        return Response({"gateway": gateway.gateway_id, "state": state})


class GatewayDetailView(GatewayBase):
    @extend_schema(operation_id="getGateway", tags=TAGS, parameters=[GATEWAY_PARAM],
                   responses={200: GatewaySerializer}, summary="An SMTP gateway",
                   description="Its settings (the password as `******`) and use.")
    def get(self, request, gateway):
        return Response(_detail(self.gateway(gateway)))

    @extend_schema(operation_id="deleteGateway", tags=TAGS, parameters=[GATEWAY_PARAM],
                   responses={200: GatewayDeletedSerializer}, summary="Delete an SMTP gateway",
                   description="Sends still queued through it fail when their turn comes "
                               "(`GatewayNotFound`): they are not sent through another server.")
    def delete(self, request, gateway):
        gateways.delete(self.gateway(gateway))
        return Response({"gateway": gateway, "deleted": True})


class GatewayEditView(GatewayBase):
    @extend_schema(operation_id="updateGateway", tags=TAGS, parameters=[GATEWAY_PARAM],
                   request=GatewayUpdateSerializer, responses={200: GatewayUpdatedSerializer},
                   summary="Change an SMTP gateway",
                   description="Only the given fields change; `pass` null or empty removes the "
                               "password.")
    def put(self, request, gateway):
        data = self.validated(GatewayUpdateSerializer, request.data)
        changed = gateways.update(self.gateway(gateway), data)
        return Response({"gateway": changed.gateway_id})
