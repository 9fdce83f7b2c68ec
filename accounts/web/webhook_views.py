"""Webhook pages: subscriptions (create, edit, send a test event, rotate the secret, remove
custom headers, delete), their health (``webhooks.health``) and the delivery log (the body
sent, the receiver's answer, retry, retry now). Thin over ``webhooks.subscriptions``,
``webhooks.signed_request`` and ``webhooks.delivery_state``, validated by the API's own
serializers. A stopped tenant's refusals come from those services (``TrialExpired``,
``TenantSuspended``) and are shown as messages."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.web.errors import show_on_form
from accounts.web.forms import MaskedURLInput, add_api_errors
from accounts.web.tenancy import tenant_view
from emailapi.lib.errors import DomainError
from webhooks import delivery_state, health, signed_request, subscriptions
from webhooks.api import serializers as api_serializers
from webhooks.errors import WebhookPasswordNeeded
from webhooks.models import Delivery, WebhookSubscription

LOG_SIZE = 50
# A refusal about the URL is shown next to it.
FIELD_OF_ERROR = {WebhookPasswordNeeded: "url"}


class WebhookForm(forms.Form):
    name = forms.CharField(label="Name", required=False, max_length=256,
                           help_text="To tell your webhooks apart (also EmailEngine's route name).")
    description = forms.CharField(label="Description", required=False, max_length=1024,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    url = forms.CharField(
        label="Endpoint URL", max_length=2048,
        widget=MaskedURLInput(attrs={"placeholder": "https://"}),
        help_text="A user:password@ in it is sent as HTTP Basic; the password is stored "
                  "encrypted and shown as ******, which keeps it when saved unchanged.")
    events = forms.CharField(label="Events", initial="*", max_length=2000,
                             help_text="Event names separated by commas, or * for every event.")
    # One id a line: an account id may hold a comma, never a line break.
    accounts = forms.CharField(
        label="Mailboxes", required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Account ids, one per line; empty for all.")
    headers = forms.CharField(
        label="Custom headers", required=False, max_length=8000, widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Authorization: Bearer ..."}),
        help_text="One “Name: value” per line, sent with every delivery and stored encrypted. "
                  "When editing, leave empty to keep the current ones.")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def clean_headers(self):
        headers = {}
        for number, line in enumerate(self.cleaned_data.get("headers", "").splitlines(), 1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise forms.ValidationError(f"Line {number}: write “Name: value”.")
            headers[name.strip()] = value.strip()
        return headers

    def clean(self):
        data = super().clean()
        payload = {"url": data.get("url", ""), "enabled": bool(data.get("enabled")),
                   "name": data.get("name", ""), "description": data.get("description", ""),
                   "events": [e.strip() for e in data.get("events", "").split(",") if e.strip()],
                   "accounts": [a.strip() for a in data.get("accounts", "").splitlines()
                                if a.strip()]}
        if data.get("headers"):
            payload["headers"] = data["headers"]
        serializer = api_serializers.WebhookCreateSerializer(data=payload)
        if serializer.is_valid():
            self.payload = dict(serializer.validated_data)
        else:
            add_api_errors(self, serializer.errors)
        return data


def _webhook_or_404(request, webhook_id) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.filter(tenant=request.tenant,
                                                      pk=webhook_id).first()
    if subscription is None:
        raise Http404("No such webhook")
    return subscription


@tenant_view(write=True)
def webhooks(request):
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription, secret = subscriptions.create(request.tenant, form.payload)
        except DomainError as exc:  # a stopped tenant, a masked password with none stored
            show_on_form(form, exc, FIELD_OF_ERROR)
        else:
            request.session["new_webhook_secret"] = secret  # shown once, on the next page only
            return redirect("web:webhook", webhook_id=subscription.pk)
    rows = list(subscriptions.tenant_subscriptions(request.tenant))
    for row in rows:
        row.health = health.health_of(row)
    return render(request, "dashboard/webhooks.html", {
        "form": form, "subscriptions": rows, "page": "webhooks"},
        status=400 if form.errors else 200)


@tenant_view(write=True)
def webhook_detail(request, webhook_id):
    subscription = _webhook_or_404(request, webhook_id)
    initial = {"name": subscription.name, "description": subscription.description,
               "url": subscription.url, "events": ", ".join(subscription.events),
               "accounts": "\n".join(subscription.accounts), "enabled": subscription.enabled}
    form = WebhookForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and _saved(form, subscription):
        messages.success(request, "Webhook saved.")
        return redirect("web:webhook", webhook_id=subscription.pk)
    log = list(Delivery.objects.filter(subscription=subscription).select_related("event")
               .order_by("-created_at")[:LOG_SIZE])
    bodies = signed_request.sent_bodies(subscription, log)
    for row in log:
        row.bodies = bodies[row.pk]
    return render(request, "dashboard/webhook_detail.html", {
        "subscription": subscription, "form": form, "log": log,
        "health": health.health_of(subscription),
        "unknown_accounts": health.unknown_accounts(subscription),
        "header_names": subscriptions.header_names(subscription),
        "secret": request.session.pop("new_webhook_secret", None), "page": "webhooks"},
        status=400 if form.errors else 200)


def _saved(form: WebhookForm, subscription: WebhookSubscription) -> bool:
    """Apply the form; a refusal (the URL's masked password sent to another server) goes on
    the form instead."""
    try:
        subscriptions.update(subscription, form.payload)
    except DomainError as exc:
        show_on_form(form, exc, FIELD_OF_ERROR)
        return False
    return True


@require_POST
@tenant_view(write=True)
def webhook_test(request, webhook_id):
    subscription = _webhook_or_404(request, webhook_id)
    try:
        outcome = signed_request.send_test(subscription)
    except DomainError as exc:  # a stopped tenant
        messages.error(request, exc.message)
        return redirect("web:webhook", webhook_id=subscription.pk)
    if outcome.ok:
        messages.success(request, f"Test event delivered: HTTP {outcome.status_code} in "
                                  f"{outcome.duration_ms} ms.")
    else:
        messages.error(request, f"Test event failed: {outcome.error}")
    return redirect("web:webhook", webhook_id=subscription.pk)


@require_POST
@tenant_view(write=True)
def webhook_rotate_secret(request, webhook_id):
    """A new signing secret, shown once; the old one stops signing at the next attempt."""
    subscription = _webhook_or_404(request, webhook_id)
    request.session["new_webhook_secret"] = subscriptions.rotate_secret(subscription)
    messages.success(request, "New signing secret made: update your receiver with it.")
    return redirect("web:webhook", webhook_id=subscription.pk)


@require_POST
@tenant_view(write=True)
def webhook_remove_headers(request, webhook_id):
    subscription = _webhook_or_404(request, webhook_id)
    removed = subscriptions.remove_headers(subscription, request.POST.getlist("header"))
    if removed:
        messages.success(request, f"No longer sent: {', '.join(removed)}.")
    else:
        messages.error(request, "Choose the headers to remove.")
    return redirect("web:webhook", webhook_id=subscription.pk)


@require_POST
@tenant_view(write=True)
def webhook_delete(request, webhook_id):
    subscription = _webhook_or_404(request, webhook_id)
    subscriptions.delete(subscription)
    messages.success(request, "Webhook deleted.")
    return redirect("web:webhooks")


@require_POST
@tenant_view(write=True)
def delivery_retry(request, webhook_id, delivery_id):
    """Failed: send it again (a new round of attempts). Pending: its next attempt now."""
    subscription = _webhook_or_404(request, webhook_id)
    row = Delivery.objects.filter(subscription=subscription, pk=delivery_id).first()
    if row is None:
        raise Http404("No such delivery")
    if row.state == Delivery.State.PENDING:
        if delivery_state.retry_now(row):
            messages.success(request, "Delivery attempted again now.")
        else:
            messages.error(request, "This delivery is no longer waiting.")
    else:
        delivery_state.retry(row)
        messages.success(request, "Delivery queued again.")
    return redirect("web:webhook", webhook_id=subscription.pk)
