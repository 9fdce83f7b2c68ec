"""Stored message templates (EmailEngine's ``/v1/templates``) and what a send makes of them.

A template holds a subject, text, HTML and preview text, in Handlebars (``handlebars``). It is
an account's (only that account's sends may use it) or, with no account, the tenant's shared
one (EmailEngine's "public" template). A send names it with ``template``; its content takes
the place of the send's own ``subject``, ``text``, ``html`` and ``previewText`` (as in
EmailEngine), and is rendered with ``render.params`` unless ``render`` is ``false``. A send
may also render its own fields with ``render`` and no template. The values a template sees::

    {{params.*}}    the send's render.params
    {{account.name}}, {{account.email}}   the sending account's
    {{service.url}}  this service's public URL (EmailEngine's serviceUrl setting, else ours)
    {{rcpt.*}}      a list send's recipient: name, address, unsubscribeUrl (``list_sends``)

A ``markdown`` template's HTML is Markdown (CommonMark), rendered first and turned into HTML.
Ids look like EmailEngine's: base64url of the creation time in milliseconds and four random
bytes; they are unique per tenant.
"""

from __future__ import annotations

import base64
import os
import struct
import time

from django.db import IntegrityError, transaction
from django.utils import timezone
from markdown_it import MarkdownIt

from accounts.errors import AccountNotFound
from accounts.models import EmailAccount, Tenant
from mailboxes import handlebars
from mailboxes.errors import TemplateNotFound, TemplateRenderFailed
from mailboxes.models import MessageTemplate

CONTENT_KEYS = ("subject", "text", "html", "previewText")
FORMATS = ("html", "markdown")


def new_id() -> str:
    raw = struct.pack(">Q", int(time.time() * 1000)) + os.urandom(4)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def find(tenant: Tenant | int, template_id: str) -> MessageTemplate | None:
    return (MessageTemplate.objects.select_related("email_account")
            .filter(tenant_id=getattr(tenant, "pk", tenant), template_id=template_id).first())


def listed(tenant: Tenant, account: EmailAccount | None):
    """The account's templates, or the shared ones (no account), newest first."""
    return (MessageTemplate.objects.filter(tenant=tenant, email_account=account)
            .order_by("-created_at", "-id"))


def check_content(content: dict) -> None:
    """``TemplateRenderFailed`` for a field that does not parse (so a broken template is
    refused when it is saved, not when a send uses it)."""
    for key in CONTENT_KEYS:
        if content.get(key):
            try:
                handlebars.parse(content[key])
            except handlebars.TemplateError as exc:
                raise TemplateRenderFailed(f"content.{key}", str(exc)) from None


def create(tenant: Tenant, account: EmailAccount | None, meta: dict,
           content: dict) -> MessageTemplate:
    """A new template (``AccountNotFound`` when its account was deleted meanwhile)."""
    check_content(content)
    for attempt in range(5):
        template = MessageTemplate(tenant=tenant, email_account=account, template_id=new_id(),
                                   name=meta["name"], description=meta.get("description") or "",
                                   format=meta.get("format") or "html",
                                   content={k: content[k] for k in CONTENT_KEYS if k in content})
        try:
            with transaction.atomic():
                template.save(force_insert=True)
            return template
        except IntegrityError:
            if account is not None and not EmailAccount.objects.filter(pk=account.pk).exists():
                raise AccountNotFound(account.account_id) from None
            if attempt == 4:
                raise
            # else the same millisecond and random bytes as another: a new id
    raise AssertionError("unreachable")


def update(template: MessageTemplate, meta: dict, content: dict | None) -> MessageTemplate:
    """The given fields changed (``content`` replaces the stored content whole, as in
    EmailEngine); ``TemplateNotFound`` when it was deleted meanwhile."""
    if content is not None:
        check_content(content)
        template.content = {k: content[k] for k in CONTENT_KEYS if k in content}
    for key in ("name", "description", "format"):
        if meta.get(key) is not None:
            setattr(template, key, meta[key])
    template.updated_at = timezone.now()
    changed = MessageTemplate.objects.filter(pk=template.pk).update(
        name=template.name, description=template.description, format=template.format,
        content=template.content, updated_at=template.updated_at)
    if not changed:
        raise TemplateNotFound(template.template_id)
    return template


def delete(tenant: Tenant, template_id: str) -> MessageTemplate | None:
    """The deleted template, or None when the tenant had none of that id."""
    template = find(tenant, template_id)
    if template is None:
        return None
    deleted, _ = MessageTemplate.objects.filter(pk=template.pk).delete()
    return template if deleted else None


def flush(account: EmailAccount) -> int:
    deleted, _ = MessageTemplate.objects.filter(email_account=account).delete()
    return deleted


# -- a send ------------------------------------------------------------------------------------

def usable(account: EmailAccount, template_id: str) -> MessageTemplate:
    """The template ``account``'s sends may use: its own or a shared one of its tenant
    (``TemplateNotFound`` otherwise)."""
    template = find(account.tenant_id, template_id)
    if template is None or (template.email_account_id is not None
                            and template.email_account_id != account.pk):
        raise TemplateNotFound(template_id)
    return template


def applied(account: EmailAccount, data: dict, service_url: str,
            template: MessageTemplate | None = None) -> dict:
    """A send's fields with its ``template`` (``TemplateNotFound`` when the tenant has none
    of that id, or it is another account's) and its ``render`` applied: the template's
    content in place of the send's own fields, each rendered (Handlebars) unless ``render``
    is false, and a Markdown ``html`` (the template's format, or ``render.format``) made HTML
    after rendering; a list send's (``rcpt``, from ``list_sends``) is rendered too.
    ``template``: the one ``data`` names, when the caller has it already."""
    template_id = data.get("template")
    render = data.get("render")
    rcpt = data.get("rcpt")  # a list send's recipient (``mailboxes.list_sends``)
    if not template_id and not isinstance(render, dict) and rcpt is None:
        return data
    data = {key: value for key, value in data.items()
            if key not in ("template", "render", "rcpt")}
    html_format = (render or {}).get("format") or "html"
    if template_id:
        template = template or usable(account, template_id)  # given: a merge read it once
        data.update({key: template.content[key] for key in CONTENT_KEYS
                     if template.content.get(key) is not None})
        html_format = template.format
    if render is not False:
        context = {"params": (render or {}).get("params") or {},
                   "account": {"name": account.name or "", "email": account.email or ""},
                   "service": {"url": service_url}}
        if rcpt is not None:
            context["rcpt"] = rcpt
        for key in CONTENT_KEYS:
            if isinstance(data.get(key), str):
                data[key] = _rendered(key, data[key], context)
    if html_format == "markdown" and data.get("html"):
        data["html"] = markdown_html(data["html"])
    if data.get("subject"):
        data["subject"] = " ".join(data["subject"].splitlines())  # a value may hold a line break
    return data


def _rendered(key: str, source: str, context: dict) -> str:
    try:
        return handlebars.render_text(source, context)
    except handlebars.TemplateError as exc:
        raise TemplateRenderFailed(key, str(exc)) from None


def markdown_html(source: str) -> str:
    """CommonMark as HTML (EmailEngine's ``markdown`` format)."""
    return MarkdownIt("commonmark").render(source)
