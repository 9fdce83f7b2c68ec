"""Usage and plan: what the organization uses against its plan's limits (mailboxes, API calls
this minute, events and webhook deliveries today), its trial's end, and a way to ask for a
plan (a request mailed to ``EMAILAPI_SALES_EMAIL``, else to the operators; an operator
converts the tenant in the admin and everything resumes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import plans, usage
from accounts.models import EmailAccount, Tenant, User
from accounts.web import outgoing_mail
from accounts.web.tenancy import tenant_view
from webhooks.models import Delivery, Event


@dataclass(frozen=True)
class Meter:
    used: int | None  # None: unknown (Redis down)
    limit: int | None  # None: no limit

    @property
    def percent(self) -> int:
        if not self.limit or self.used is None:
            return 0
        return min(100, round(100 * self.used / self.limit))

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used is not None and self.used >= self.limit


@dataclass(frozen=True)
class Usage:
    mailboxes: Meter
    api_calls_this_minute: Meter
    api_calls_today: int | None
    events_today: int
    deliveries_today: int
    trial_ends_at: datetime | None


def _midnight() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def usage_of(tenant: Tenant) -> Usage:
    calls = usage.calls(tenant.pk)
    rate = plans.rate_limit(tenant) or settings.EMAILAPI_RATE_LIMIT or None
    midnight = _midnight()
    return Usage(
        mailboxes=Meter(EmailAccount.objects.filter(tenant=tenant).count(),
                        plans.mailbox_limit(tenant)),
        api_calls_this_minute=Meter(calls.this_minute if calls else None, rate),
        api_calls_today=calls.today if calls else None,
        events_today=Event.objects.filter(tenant=tenant, created_at__gte=midnight).count(),
        deliveries_today=Delivery.objects.filter(subscription__tenant=tenant,
                                                 created_at__gte=midnight).count(),
        trial_ends_at=tenant.trial_ends_at if plans.on_trial_limits(tenant) else None)


def sales_addresses() -> list[str]:
    if settings.EMAILAPI_SALES_EMAIL:
        return [settings.EMAILAPI_SALES_EMAIL]
    return list(User.objects.filter(is_superuser=True, is_active=True)
                .values_list("email", flat=True))


@require_POST
@tenant_view(write=True)
def plan_request(request):
    """"Request this plan": mail the request to sales (or the operators)."""
    plan = plans.PLANS.get(request.POST.get("plan", ""))
    if plan is None:
        messages.error(request, "Choose one of the plans shown.")
        return redirect("web:settings")
    to = sales_addresses()
    if not to:
        messages.error(request, "Nobody is set up to receive plan requests here: ask your "
                                "emailapi operator.")
        return redirect("web:settings")
    tenant = request.tenant
    unsent = outgoing_mail.send(
        f"Plan request: {tenant.name} wants {plan.label}",
        f"{request.user.email} asks to convert {tenant.name} (id {tenant.pk}, "
        f"status {tenant.get_status_display()}) to the {plan.label} plan.\n\n"
        f"Convert it in the admin: {request.build_absolute_uri('/admin/accounts/tenant/')}"
        f"{tenant.pk}/change/\n", to)
    if unsent:
        messages.error(request, f"The request could not be sent ({unsent}). Try again later.")
        return redirect("web:settings")
    messages.success(request, f"Request for the {plan.label} plan sent. We will write to "
                              f"{request.user.email} once your organization is converted.")
    return redirect("web:settings")
