"""EmailEngine's template routes: ``GET /v1/templates``, ``POST /v1/templates/template``,
``GET``/``PUT``/``DELETE /v1/templates/template/{template}`` and ``DELETE
/v1/templates/account/{account}`` (``force=true``). Thin views over ``mailboxes.templates``,
answering EmailEngine's shapes."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.pagination import PageQuerySerializer, paginate
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from mailboxes import templates
from mailboxes.errors import InvalidInput, TemplateNotFound
from mailboxes.message_fields import iso
from mailboxes.models import MessageTemplate

TAGS = ["Templates"]
TEMPLATE_PARAM = OpenApiParameter("template", str, OpenApiParameter.PATH,
                                  description="The template's id, as created")


class ContentSerializer(StrictSerializer):
    subject = serializers.CharField(max_length=10000, required=False, allow_blank=True,
                                    trim_whitespace=False, help_text="Handlebars")
    text = serializers.CharField(max_length=5 * 1024 * 1024, required=False, allow_blank=True,
                                 trim_whitespace=False)
    html = serializers.CharField(max_length=5 * 1024 * 1024, required=False, allow_blank=True,
                                 trim_whitespace=False,
                                 help_text="HTML, or Markdown when the format is markdown")
    previewText = serializers.CharField(max_length=1024, required=False, allow_blank=True,
                                        trim_whitespace=False)


class TemplateUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    description = serializers.CharField(max_length=1024, required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=templates.FORMATS, required=False, allow_blank=True,
                                     help_text="html or markdown (the html field's language)")
    content = ContentSerializer(required=False, help_text="Replaces the stored content whole")


class TemplateCreateSerializer(StrictSerializer):
    account = serializers.CharField(allow_null=True, allow_blank=True, max_length=256,
                                    help_text="The account whose sends may use it; null: any "
                                              "account of yours (EmailEngine's public template)")
    name = serializers.CharField(max_length=256)
    description = serializers.CharField(max_length=1024, required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=templates.FORMATS, default="html",
                                     help_text="html or markdown (the html field's language)")
    content = ContentSerializer()


class TemplateListQuerySerializer(PageQuerySerializer):
    account = serializers.CharField(max_length=256, required=False, allow_blank=True,
                                    help_text="This account's templates; absent: the shared "
                                              "ones")


class FlushQuerySerializer(QuerySerializer):
    force = serializers.BooleanField(default=False, help_text="Must be true")


class TemplateItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    format = serializers.CharField()
    created = serializers.CharField()
    updated = serializers.CharField(required=False)


class TemplateListSerializer(serializers.Serializer):
    account = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    templates = TemplateItemSerializer(many=True)


class TemplateSerializer(TemplateItemSerializer):
    account = serializers.CharField(allow_null=True)
    content = ContentSerializer()


class TemplateChangedSerializer(serializers.Serializer):
    account = serializers.CharField(allow_null=True)
    id = serializers.CharField()


class TemplateCreatedSerializer(TemplateChangedSerializer):
    created = serializers.BooleanField()


class TemplateUpdatedSerializer(TemplateChangedSerializer):
    updated = serializers.BooleanField()


class TemplateDeletedSerializer(TemplateChangedSerializer):
    deleted = serializers.BooleanField(help_text="false when there was no such template")


class TemplatesFlushedSerializer(serializers.Serializer):
    flushed = serializers.BooleanField()
    account = serializers.CharField()


def _account_id(template: MessageTemplate) -> str | None:
    return template.email_account.account_id if template.email_account_id else None


def _item(template: MessageTemplate) -> dict:
    out = {"id": template.template_id, "name": template.name,
           "description": template.description, "format": template.format,
           "created": iso(template.created_at)}
    if template.updated_at:
        out["updated"] = iso(template.updated_at)
    return out


class TemplateBase(TenantScopedAPIView):
    def template(self, template_id: str) -> MessageTemplate:
        found = templates.find(self.tenant, template_id)
        if found is None:
            raise TemplateNotFound(template_id)
        return found


class TemplateListView(TemplateBase):
    @extend_schema(operation_id="listTemplates", tags=TAGS,
                   parameters=[TemplateListQuerySerializer],
                   responses={200: TemplateListSerializer}, summary="List templates",
                   description="An account's templates (`account`), or without it the shared "
                               "ones, newest first.")
    def get(self, request):
        query = self.validated(TemplateListQuerySerializer, request.query_params)
        account = self.account_named(query["account"]) if query.get("account") else None
        items, counters = paginate(templates.listed(self.tenant, account), query["page"],
                                   query["pageSize"])
        return Response({"account": account.account_id if account else None, **counters,
                         "templates": [_item(t) for t in items]})


class TemplateCreateView(TemplateBase):
    @extend_schema(operation_id="createTemplate", tags=TAGS, request=TemplateCreateSerializer,
                   responses={200: TemplateCreatedSerializer}, summary="Create a template",
                   description="A subject, text, HTML and preview text in Handlebars that a "
                               "send takes with `template` (see the README's \"Templates\"). "
                               "A field that does not parse is 400 `TemplateRenderFailed`.")
    def post(self, request):
        data = self.validated(TemplateCreateSerializer, request.data)
        account = self.account_named(data["account"]) if data.get("account") else None
        template = templates.create(self.tenant, account, data, data["content"])
        return Response({"created": True, "account": account.account_id if account else None,
                         "id": template.template_id})


class TemplateDetailView(TemplateBase):
    @extend_schema(operation_id="getTemplate", tags=TAGS, parameters=[TEMPLATE_PARAM],
                   responses={200: TemplateSerializer}, summary="A template",
                   description="Its fields and content.")
    def get(self, request, template):
        found = self.template(template)
        return Response({"account": _account_id(found), **_item(found),
                         "content": found.content})

    @extend_schema(operation_id="updateTemplate", tags=TAGS, parameters=[TEMPLATE_PARAM],
                   request=TemplateUpdateSerializer, responses={200: TemplateUpdatedSerializer},
                   summary="Change a template",
                   description="Only the given fields change; `content` replaces the stored "
                               "content whole.")
    def put(self, request, template):
        data = self.validated(TemplateUpdateSerializer, request.data)
        found = self.template(template)
        templates.update(found, {k: v for k, v in data.items() if v not in ("", None)},
                         data.get("content"))
        return Response({"updated": True, "account": _account_id(found), "id": template})

    @extend_schema(operation_id="deleteTemplate", tags=TAGS, parameters=[TEMPLATE_PARAM],
                   responses={200: TemplateDeletedSerializer}, summary="Delete a template",
                   description="`deleted: false` when there was no such template, as in "
                               "EmailEngine.")
    def delete(self, request, template):
        gone = templates.delete(self.tenant, template)
        return Response({"deleted": gone is not None,
                         "account": _account_id(gone) if gone else None, "id": template})


class TemplateFlushView(TemplateBase):
    @extend_schema(operation_id="flushTemplates", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, FlushQuerySerializer],
                   responses={200: TemplatesFlushedSerializer},
                   summary="Delete an account's templates",
                   description="Every template of the account; `force=true` is required.")
    def delete(self, request, account):
        query = self.validated(FlushQuerySerializer, request.query_params)
        if not query["force"]:
            reason = "Set the force=true query parameter to delete the account's templates"
            raise InvalidInput(reason, {"force": [reason]})
        templates.flush(self.account_named(account))
        return Response({"flushed": True, "account": account})
