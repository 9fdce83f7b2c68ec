"""Trials, plans and what a tenant's status allows.

A tenant signs up into a 14-day ``trial``; an operator converts it to a paid plan (``active``,
with limits on mailboxes and API requests per minute) or ``suspended`` it with a reason. A trial
whose ``trial_ends_at`` has passed is ``expired``; nobody has to run a job for that to hold:
``effective_status`` decides it on every request (and writes the flip down once, so the admin
and the workers' query see it too). Stopping a tenant deletes nothing: its mailboxes go
``paused`` in the workers and come back on their own when it is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import state as account_state
from accounts import token_cache
from accounts.announcements import announce_many
from accounts.errors import PlanLimit, TenantSuspended, TrialExpired
from accounts.models import EmailAccount, Tenant

TRIAL_DAYS = 14


@dataclass(frozen=True)
class Plan:
    name: str
    label: str
    max_mailboxes: int | None
    api_rate_limit: int | None  # requests per minute


# The trial's limits come first: a trial is for trying, not for running production.
TRIAL = Plan("trial", "Trial", max_mailboxes=5, api_rate_limit=600)
PLANS = {
    plan.name: plan
    for plan in (
        Plan("starter", "Starter", max_mailboxes=10, api_rate_limit=1200),
        Plan("team", "Team", max_mailboxes=100, api_rate_limit=6000),
        Plan("business", "Business", max_mailboxes=1000, api_rate_limit=30000),
    )
}

STOPPED = (Tenant.Status.EXPIRED, Tenant.Status.SUSPENDED)


def stopped_tenants_q(prefix: str = "tenant__") -> Q:
    """Rows of tenants that must not be served: expired or suspended, or a trial past its end
    that no request has flipped yet (the workers must not wait for one)."""
    return (Q(**{f"{prefix}status__in": STOPPED})
            | Q(**{f"{prefix}status": Tenant.Status.TRIAL,
                   f"{prefix}trial_ends_at__lt": timezone.now()}))


def effective_status(tenant: Tenant) -> str:
    """The tenant's status now; a trial past its end is recorded as expired on first sight."""
    if (tenant.status == Tenant.Status.TRIAL and tenant.trial_ends_at is not None
            and tenant.trial_ends_at <= timezone.now()):
        Tenant.objects.filter(pk=tenant.pk, status=Tenant.Status.TRIAL).update(
            status=Tenant.Status.EXPIRED)
        tenant.status = Tenant.Status.EXPIRED
    return tenant.status


def trial_days_left(tenant: Tenant) -> int | None:
    if tenant.status != Tenant.Status.TRIAL or tenant.trial_ends_at is None:
        return None
    seconds = (tenant.trial_ends_at - timezone.now()).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def check_api_access(tenant: Tenant) -> None:
    """Raise the error a stopped tenant gets on every /v1 request."""
    state = effective_status(tenant)
    if state == Tenant.Status.EXPIRED:
        raise TrialExpired()
    if state == Tenant.Status.SUSPENDED:
        raise TenantSuspended()


def on_trial_limits(tenant: Tenant) -> bool:
    """A trial, running or expired (never converted), has the trial's limits: an expired
    one keeps them while it is stopped, so what it shows is what it had."""
    return tenant.status == Tenant.Status.TRIAL or (
        tenant.status == Tenant.Status.EXPIRED and not tenant.plan)


def mailbox_limit(tenant: Tenant) -> int | None:
    return TRIAL.max_mailboxes if on_trial_limits(tenant) else tenant.max_mailboxes


def rate_limit(tenant: Tenant) -> int | None:
    """Requests per minute for this tenant, or None to use EMAILAPI_RATE_LIMIT."""
    return TRIAL.api_rate_limit if on_trial_limits(tenant) else tenant.api_rate_limit


def check_room_for_mailbox(tenant: Tenant, lock: bool = False) -> None:
    """``PlanLimit`` when the plan has no room for another mailbox now, by the tenant's row as
    it is (the caller's may be an API token's cached copy, older than an operator's change).
    ``lock``: inside the registering transaction, the row locked first, so two registrations
    at once are counted one after the other and cannot both slip under the limit; without it,
    for refusing early what the registration would refuse."""
    rows = Tenant.objects.filter(pk=tenant.pk)
    current = (rows.select_for_update() if lock else rows).first() or tenant
    limit = mailbox_limit(current)
    if limit is not None:
        count = EmailAccount.objects.filter(tenant=tenant).count()
        if count >= limit:
            raise PlanLimit(limit, count)


def lock_for_new_mailbox(tenant: Tenant) -> None:
    """Inside the registering transaction: refuse a mailbox over the plan's limit."""
    check_room_for_mailbox(tenant, lock=True)


# --- operator actions ----------------------------------------------------------------------


def start_trial(tenant: Tenant) -> None:
    tenant.status = Tenant.Status.TRIAL
    tenant.trial_ends_at = timezone.now() + timedelta(days=TRIAL_DAYS)
    tenant.save(update_fields=["status", "trial_ends_at"])


def extend_trial(tenant: Tenant, days: int = TRIAL_DAYS) -> None:
    """Give ``days`` more from now (or from the current end, if later); resumes an expired one."""
    start = max(timezone.now(), tenant.trial_ends_at or timezone.now())
    _change(tenant, status=Tenant.Status.TRIAL, trial_ends_at=start + timedelta(days=days))


def set_trial_end(tenant: Tenant, ends_at) -> None:
    """An operator moves the trial's end (a trial or an expired trial): to the future runs
    (or resumes) the trial, to the past ends it, pausing its mailboxes."""
    status = Tenant.Status.TRIAL if ends_at > timezone.now() else Tenant.Status.EXPIRED
    _change(tenant, status=status, trial_ends_at=ends_at)


def convert(tenant: Tenant, plan_name: str) -> None:
    plan = PLANS[plan_name]
    _change(tenant, status=Tenant.Status.ACTIVE, plan=plan.name,
            max_mailboxes=plan.max_mailboxes, api_rate_limit=plan.api_rate_limit,
            suspended_reason="")


def suspend(tenant: Tenant, reason: str) -> None:
    _change(tenant, status=Tenant.Status.SUSPENDED, suspended_reason=reason)


def expire(tenant: Tenant) -> None:
    _change(tenant, status=Tenant.Status.EXPIRED, trial_ends_at=timezone.now())


def _change(tenant: Tenant, **fields) -> None:
    """Save the new status and tell the IMAP workers: stopping pauses every mailbox (their
    ``paused`` flag, the user's own choice, is left alone), starting again resumes them."""
    was_stopped = tenant.status in STOPPED
    for name, value in fields.items():
        setattr(tenant, name, value)
    now_stopped = tenant.status in STOPPED
    with transaction.atomic():
        tenant.save(update_fields=list(fields))
        accounts = list(EmailAccount.objects.filter(tenant=tenant, paused=False))
        if now_stopped:
            account_state.pause_all(a.pk for a in accounts)
        elif was_stopped:
            account_state.resume_all(a.pk for a in accounts)
        if now_stopped:
            announce_many(accounts, "paused")
        elif was_stopped:
            announce_many(accounts, "resumed")
    token_cache.clear()  # this process sees the new status at once; others within seconds
