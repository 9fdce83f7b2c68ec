"""The tenant's pages: overview, mailboxes, tokens, team and settings.

Thin views: forms validate, ``accounts.services`` / ``accounts.plans`` / ``onboarding`` / ``invitations`` act.
Every lookup starts from ``request.tenant`` (``tenancy.tenant_view``), so another tenant's
objects are 404. Write views refuse viewers (403) and stopped tenants (a message, no change).
"""

from __future__ import annotations

from datetime import datetime, time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import plans, services
from accounts.errors import AlreadyExists
from accounts.models import ApiToken, EmailAccount, Invitation, Membership, OAuth2App, Tenant
from accounts.oauth2 import connect, registered_apps
from accounts.web import invitations, plan_views
from accounts.web.errors import show_on_form
from accounts.web.forms import InviteForm, MailboxForm, ProxySettingsForm, SettingsForm, TokenForm
from accounts.web.tenancy import WRITE_ROLES, tenant_view
from emailapi.lib.errors import DomainError
from mailboxes import connection_settings
from mailboxes.models import Folder, Message
from mailboxes.verify import verify
from webhooks import account_webhooks, engine_settings
from webhooks.models import Event

STOPPED_MESSAGE = "This organization's service is stopped, so nothing can be added now."


def _stopped(request) -> bool:
    return request.tenant.status in plans.STOPPED


def _events_today(tenant) -> int:
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    return Event.objects.filter(tenant=tenant, created_at__gte=midnight).count()


def _account_or_404(request, account_id: str) -> EmailAccount:
    account = EmailAccount.of_tenant(request.tenant, account_id)
    if account is None:
        raise Http404("No such mailbox")
    return account


@tenant_view()
def overview(request):
    by_state = dict(EmailAccount.objects.filter(tenant=request.tenant)
                    .values_list("state").annotate(n=Count("id")))
    return render(request, "dashboard/overview.html", {
        "by_state": sorted(by_state.items()), "mailbox_count": sum(by_state.values()),
        "events_today": _events_today(request.tenant),
        "recent_events": Event.objects.filter(tenant=request.tenant).order_by("-created_at")[:15],
        "page": "overview",
    })


@tenant_view()
def mailboxes(request):
    accounts = list(EmailAccount.objects.filter(tenant=request.tenant).order_by("created_at", "id"))
    limit = plans.mailbox_limit(request.tenant)
    return render(request, "dashboard/mailboxes.html", {
        "accounts": accounts, "limit": limit, "page": "mailboxes",
        "at_limit": limit is not None and len(accounts) >= limit, "stopped": _stopped(request),
        "oauth2_apps": OAuth2App.objects.filter(tenant=request.tenant).order_by("created_at")})


@require_POST
@tenant_view(write=True)
def mailbox_connect(request):
    """"Connect Gmail" (or any OAuth2 app of the tenant): the same hosted connect link the API
    makes (``POST /v1/authentication/form``), coming back to the mailbox list."""
    app = registered_apps.find_app(request.tenant.pk, request.POST.get("app", ""))
    if app is None or app.app_id != request.POST.get("app"):
        raise Http404("No such OAuth2 app")
    back = request.build_absolute_uri("/dashboard/mailboxes")
    return redirect(connect.make_link(request.tenant, {"type": app.app_id, "redirectUrl": back},
                                      request.build_absolute_uri("/")))


@tenant_view(write=True)
def mailbox_add(request):
    form = MailboxForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if _stopped(request):
            form.add_error(None, STOPPED_MESSAGE)
        else:
            _test_and_register(request, form)
        if form.is_valid():
            messages.success(request, "Mailbox added: connecting now.")
            return redirect("web:mailbox", account_id=form.registered.account_id)
    return render(request, "dashboard/mailbox_add.html", {"form": form, "page": "mailboxes"},
                  status=400 if form.errors else 200)


def _test_and_register(request, form: MailboxForm) -> None:
    """Log in for real first; only settings that work are saved (errors go on the form)."""
    payload = form.validated_payload
    imap = connection_settings.imap_settings_from(payload["imap"], tenant=request.tenant)
    smtp = connection_settings.smtp_settings_from(payload["smtp"], tenant=request.tenant) \
        if payload.get("smtp") else None
    results = verify(imap, smtp, timeout=settings.EMAILAPI_VERIFY_TIMEOUT)
    for name, field in (("imap", "imap_host"), ("smtp", "smtp_host")):
        result = results.get(name)
        if result and not result.get("success"):
            form.add_error(field, f"Connection test failed: {result.get('error') or 'no details'}")
    if form.errors:
        return
    try:
        form.registered = services.register_account(request.tenant, dict(payload))
    except DomainError as exc:  # PlanLimit, AlreadyExists
        show_on_form(form, exc, {AlreadyExists: "account"})


@tenant_view()
def mailbox_detail(request, account_id: str):
    account = _account_or_404(request, account_id)
    folders = Folder.objects.filter(email_account=account).order_by("path")
    # Newest first by the message's date, an undated one by its arrival (the API's ``date``),
    # never NULLs first (PostgreSQL's default for a descending order).
    recent = (Message.objects.filter(email_account=account).select_related("folder")
              .annotate(shown_date=Coalesce("date", "internal_date"))
              .order_by(F("shown_date").desc(nulls_last=True), "-id")[:20])
    return render(request, "dashboard/mailbox_detail.html", {
        "account": account, "folders": folders, "recent": recent, "page": "mailboxes"})


@require_POST
@tenant_view(write=True)
def mailbox_action(request, account_id: str, action: str):
    account = _account_or_404(request, account_id)
    if action == "delete":
        services.delete_account(account, along=account_webhooks.drop_account_webhook)
        messages.success(request, f"Mailbox {account.account_id} deleted.")
        return redirect("web:mailboxes")
    if action == "reconnect":
        services.request_reconnect(account)
        messages.success(request, "Reconnecting.")
    elif action == "pause":
        services.pause_account(account)
        messages.success(request, "Paused: nothing is synced until you resume.")
    elif action == "resume":
        services.resume_account(account)
        messages.success(request, "Resumed.")
    else:
        raise Http404("No such action")
    return redirect("web:mailbox", account_id=account.account_id)


@tenant_view(write=True)
def tokens(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        if _stopped(request):
            form.add_error(None, STOPPED_MESSAGE)
        else:
            _, new_token = services.issue_token(request.tenant, form.cleaned_data["name"],
                                                form.cleaned_data["scopes"],
                                                created_by=request.user)
            form = TokenForm()  # shown once, in this response only; never stored in clear
    active = ApiToken.live(tenant=request.tenant)
    return render(request, "dashboard/tokens.html", {
        "form": form, "new_token": new_token, "tokens": active.order_by("-created_at"),
        "page": "tokens"}, status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def token_revoke(request, token_id: int):
    token = ApiToken.objects.filter(tenant=request.tenant, pk=token_id,
                                    revoked_at__isnull=True).first()
    if token is None or not services.revoke_token(token):
        raise Http404("No such token")
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("web:tokens")


@tenant_view(write=True)
def team(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        if role == Membership.Role.OWNER and request.membership.role != Membership.Role.OWNER:
            form.add_error("role", "Only an owner can invite another owner.")
        elif Membership.objects.filter(tenant=request.tenant, user__email__iexact=email).exists():
            form.add_error("email", "This person is already a member.")
        else:
            again = Invitation.objects.filter(tenant=request.tenant,
                                              email=invitations.normalize(email)).exists()
            invitation, unsent = invitations.invite(request, request.tenant, email, role,
                                                    request.user)
            if unsent:
                messages.warning(request, f"Invitation for {invitation.email} saved, but its "
                                          f"email could not be sent ({unsent}). Invite again "
                                          f"later to send it.")
            else:
                messages.success(request, f"Invitation {'sent again' if again else 'sent'} to "
                                          f"{invitation.email}.")
            return redirect("web:team")
    members = (Membership.objects.filter(tenant=request.tenant).select_related("user")
               .order_by("created_at", "id"))
    pending = (Invitation.objects.filter(tenant=request.tenant).select_related("invited_by")
               .order_by("created_at", "id"))
    return render(request, "dashboard/team.html", {"form": form, "members": members,
                                                   "invitations": pending, "now": timezone.now(),
                                                   "role_choices": Membership.Role.choices,
                                                   "page": "team"},
                  status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def invitation_cancel(request, invitation_id: int):
    """Cancel a pending invitation: its link stops working. Only an owner cancels an
    invitation to become an owner (only owners make or unmake owners)."""
    invitation = Invitation.objects.filter(tenant=request.tenant, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    if invitation.role == Membership.Role.OWNER and \
            request.membership.role != Membership.Role.OWNER:
        messages.error(request, "Only an owner can cancel an invitation to be an owner.")
    else:
        invitation.delete()
        messages.success(request, f"Invitation to {invitation.email} cancelled.")
    return redirect("web:team")


@require_POST
@tenant_view(write=True)
@transaction.atomic
def member_remove(request, member_id: int):
    me = _team_locked(request)
    member = Membership.objects.filter(tenant=request.tenant, pk=member_id).first()
    if member is None:
        raise Http404("No such member")
    owners = Membership.objects.filter(tenant=request.tenant, role=Membership.Role.OWNER)
    if member.role == Membership.Role.OWNER and owners.count() <= 1:
        messages.error(request, "The last owner cannot be removed.")
    elif member.role == Membership.Role.OWNER and me.role != Membership.Role.OWNER:
        messages.error(request, "Only an owner can remove an owner.")
    else:
        member.delete()
        messages.success(request, f"{member.user.email} removed.")
    return redirect("web:team")


def _team_locked(request) -> Membership:
    """Lock the organization's row (``FOR NO KEY UPDATE``: rows that refer to it are still
    written meanwhile) for the rest of the transaction, so that changes of its members run
    one at a time, and read the caller's membership afresh under that lock. Two owners
    demoting or removing each other at once each checked "not the last owner" before the
    other had written, and the organization was left with no owner at all. The caller's
    own role may have changed meanwhile too: gone is a 404 and a viewer a 403, as
    ``tenant_view`` answers them."""
    Tenant.objects.select_for_update(no_key=True).filter(pk=request.tenant.pk).first()
    me = Membership.objects.filter(pk=request.membership.pk).first()
    if me is None:
        raise Http404("No organization")
    if me.role not in WRITE_ROLES:
        raise PermissionDenied("Your role can view but not change this")
    return me


@require_POST
@tenant_view()
def switch_organization(request):
    """Act for another organization the user belongs to (404 for any other)."""
    tenant = request.POST.get("tenant", "")
    chosen = Membership.objects.filter(user=request.user, tenant_id=int(tenant)).first() \
        if tenant.isascii() and tenant.isdigit() and len(tenant) < 19 else None
    if chosen is None:
        raise Http404("No such organization")
    request.session["tenant_id"] = chosen.tenant_id
    return redirect("web:overview")


@require_POST
@tenant_view(write=True)
@transaction.atomic
def member_role(request, member_id: int):
    """Change a member's role: only an owner makes or unmakes owners, and the last owner
    stays one (an organization nobody can administer is lost)."""
    me = _team_locked(request)
    member = Membership.objects.filter(tenant=request.tenant, pk=member_id).first()
    if member is None:
        raise Http404("No such member")
    role = request.POST.get("role", "")
    owners = Membership.objects.filter(tenant=request.tenant, role=Membership.Role.OWNER)
    if role not in Membership.Role.values:
        messages.error(request, "Choose owner, admin or viewer.")
    elif Membership.Role.OWNER in (role, member.role) and me.role != Membership.Role.OWNER:
        messages.error(request, "Only an owner can make or unmake an owner.")
    elif member.role == Membership.Role.OWNER and role != member.role and owners.count() <= 1:
        messages.error(request, "The last owner cannot stop being one.")
    else:
        member.role = role
        member.save(update_fields=["role"])
        messages.success(request, f"{member.user.email} is now {member.get_role_display()}.")
    return redirect("web:team")


@tenant_view(write=True)
def tenant_settings(request):
    """The organization's name and its proxy: two forms, told apart by their ``form`` input."""
    posted = request.POST.get("form", "organization") if request.method == "POST" else None
    form = SettingsForm(request.POST if posted == "organization" else None,
                        initial={"name": request.tenant.name})
    stored = engine_settings.of(request.tenant)
    proxy_form = ProxySettingsForm(request.POST if posted == "proxy" else None, initial={
        "proxy_url": stored.proxy_url, "proxy_enabled": stored.proxy_enabled})
    if posted == "organization" and form.is_valid():
        request.tenant.name = form.cleaned_data["name"]
        request.tenant.save(update_fields=["name"])
        messages.success(request, "Settings saved.")
        return redirect("web:settings")
    if posted == "proxy" and proxy_form.is_valid():
        try:
            engine_settings.update(request.tenant, proxy_form.settings)
        except DomainError as exc:  # a masked password written for another proxy
            show_on_form(proxy_form, exc, {DomainError: "proxy_url"})
        else:
            messages.success(request, "Proxy saved. Mailboxes it routes connect again through it.")
            return redirect(reverse("web:settings") + "#proxy")
    invalid = bool(form.errors or proxy_form.errors)
    return render(request, "dashboard/settings.html", {
        "form": form, "proxy_form": proxy_form, "stored_proxy": stored,
        "plans": plans.PLANS.values(), "trial": plans.TRIAL,
        "current_plan": plans.PLANS.get(request.tenant.plan),
        "on_trial_limits": plans.on_trial_limits(request.tenant),
        "limit": plans.mailbox_limit(request.tenant),
        "rate": plans.rate_limit(request.tenant) or settings.EMAILAPI_RATE_LIMIT or None,
        "usage": plan_views.usage_of(request.tenant), "page": "settings"},
        status=400 if invalid else 200)
