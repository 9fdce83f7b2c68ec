"""Operator views of tenants, people, tokens and mailboxes. Secrets never appear: token hashes
and sealed credentials are left out, and mailbox settings are shown read-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import plans, usage
from accounts.admin_login import LimitedAdminLoginForm
from accounts.models import ApiToken, EmailAccount, Invitation, Membership, Tenant, User
from webhooks.models import Event

# /admin/login/ counts failed sign-ins with /login (accounts.admin_login).
admin.site.login_form = LimitedAdminLoginForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class SuspendForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Shown to the organization's users on their dashboard.")


def _convert_action(plan: plans.Plan):
    def action(modeladmin, request, queryset):
        for tenant in queryset:
            plans.convert(tenant, plan.name)
        modeladmin.message_user(request, f"{queryset.count()} converted to {plan.label}: "
                                         "API and mailboxes resume.", messages.SUCCESS)

    action.__name__ = f"convert_to_{plan.name}"
    return admin.action(description=f"Convert to the {plan.label} plan")(action)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Trials and plans go through ``accounts.plans`` (actions, in the list and on the
    tenant's page, and the trial's end, editable while on a trial), never by editing
    ``status`` by hand: they also pause or resume the tenant's mailboxes in the workers.
    "Mail servers on internal addresses" lets one tenant's mailboxes use IMAP/SMTP hosts on
    internal addresses (``accounts.mail_hosts``), for an on-premise customer."""

    list_display = ["name", "slug", "status", "plan", "trial_ends_at", "mailbox_count",
                    "created_at"]
    list_filter = ["status", "plan", "mail_allow_private"]
    search_fields = ["name", "slug", "memberships__user__email"]
    readonly_fields = ["status", "plan", "trial_ends_at", "max_mailboxes", "api_rate_limit",
                       "suspended_reason", "created_at", "usage", "mailboxes"]
    inlines = [MembershipInline]
    actions = ["extend_trial", *[_convert_action(plan) for plan in plans.PLANS.values()],
               "suspend"]
    change_form_template = "admin/accounts/tenant/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and plans.on_trial_limits(obj):
            fields.remove("trial_ends_at")  # saved through plans.set_trial_end
        return fields

    def save_model(self, request, obj, form, change):
        moved = change and "trial_ends_at" in form.changed_data and obj.trial_ends_at
        if moved:
            ends_at = obj.trial_ends_at
            obj.trial_ends_at = form.initial.get("trial_ends_at")
        super().save_model(request, obj, form, change)
        if moved:
            plans.set_trial_end(obj, ends_at)
            self.message_user(request, f"Trial now ends {ends_at:%Y-%m-%d %H:%M} UTC "
                                       f"({obj.get_status_display()}).", messages.SUCCESS)

    @admin.display(description="Mailboxes")
    def mailbox_count(self, tenant):
        return tenant.email_accounts.count()

    @admin.display(description="Usage")
    def usage(self, tenant):
        calls = usage.calls(tenant.pk)
        midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        limit = plans.mailbox_limit(tenant)
        return format_html(
            "{} mailboxes (limit {}) · {} API calls today, {} this minute (limit {}/min) · "
            "{} events today",
            tenant.email_accounts.count(), limit or "none",
            "?" if calls is None else calls.today, "?" if calls is None else calls.this_minute,
            plans.rate_limit(tenant) or "server default",
            Event.objects.filter(tenant=tenant, created_at__gte=midnight).count())

    @admin.display(description="Mailboxes")
    def mailboxes(self, tenant):
        url = reverse("admin:accounts_emailaccount_changelist") + f"?tenant__id__exact={tenant.pk}"
        return format_html('<a href="{}">{} mailbox(es) of {}</a>', url,
                           tenant.email_accounts.count(), tenant.name)

    def get_urls(self):
        return [path("<int:tenant_id>/act/<str:action>/", self.admin_site.admin_view(self.act),
                     name="accounts_tenant_act"), *super().get_urls()]

    def act(self, request, tenant_id: int, action: str):
        """The list's actions on one tenant, from buttons on its page."""
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None or not self.has_change_permission(request, tenant):
            raise Http404("No such organization")
        back = redirect("admin:accounts_tenant_change", tenant.pk)
        if request.method != "POST":
            return back
        if action == "extend_trial":
            plans.extend_trial(tenant)
            self.message_user(request, f"Trial extended to {tenant.trial_ends_at:%Y-%m-%d}.",
                              messages.SUCCESS)
        elif action.startswith("convert_") and action[8:] in plans.PLANS:
            plan = plans.PLANS[action[8:]]
            plans.convert(tenant, plan.name)
            self.message_user(request, f"Converted to {plan.label}: API and mailboxes resume.",
                              messages.SUCCESS)
        elif action == "suspend":
            form = SuspendForm(request.POST)
            if not form.is_valid():
                self.message_user(request, "Give a reason to suspend.", messages.ERROR)
                return back
            plans.suspend(tenant, form.cleaned_data["reason"])
            self.message_user(request, "Suspended: API refused, mailboxes paused, nothing "
                                       "deleted.", messages.WARNING)
        else:
            raise Http404("No such action")
        return back

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        context["plans"] = plans.PLANS.values()
        context["suspend_form"] = SuspendForm()
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Extend the trial by 14 days (resumes an expired trial)")
    def extend_trial(self, request, queryset):
        for tenant in queryset:
            plans.extend_trial(tenant)
        self.message_user(request, f"{queryset.count()} trial(s) extended.", messages.SUCCESS)

    @admin.action(description="Suspend with a reason…")
    def suspend(self, request, queryset):
        form = SuspendForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for tenant in queryset:
                plans.suspend(tenant, form.cleaned_data["reason"])
            self.message_user(request, f"{queryset.count()} suspended: API refused, mailboxes "
                                       "paused, nothing deleted.", messages.WARNING)
            return None
        return TemplateResponse(request, "admin/accounts/tenant/suspend.html", {
            **self.admin_site.each_context(request), "title": "Suspend organizations",
            "tenants": queryset, "form": form, "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "email_verified_at", "is_staff",
                    "is_active"]
    list_filter = ["is_staff", "is_active", "memberships__role"]
    search_fields = ["email", "first_name", "last_name", "memberships__tenant__name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups",
                                    "user_permissions"]}),
        ("Important dates", {"fields": ["last_login", "date_joined", "email_verified_at"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Pending invitations, to look at or cancel (delete); they are made from the team page,
    which mails the link. The key, part of the link, is never shown."""

    list_display = ["email", "tenant", "role", "invited_by", "created_at", "expires_at"]
    search_fields = ["email", "tenant__name"]
    exclude = ["key"]
    readonly_fields = ["tenant", "email", "role", "invited_by", "created_at", "expires_at"]

    def has_add_permission(self, request):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "prefix", "scopes", "created_at", "last_used_at",
                    "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "tenant__name"]
    exclude = ["token_hash"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]


@admin.register(EmailAccount)
class EmailAccountAdmin(admin.ModelAdmin):
    list_display = ["account_id", "tenant", "email", "state", "last_error_text", "state_changed_at",
                    "created_at"]
    list_filter = ["state", "paused", "tenant__status"]
    search_fields = ["account_id", "email", "name", "tenant__name"]
    readonly_fields = ["imap", "smtp", "last_error", "config_version", "state_changed_at",
                       "created_at", "updated_at"]

    def lookup_allowed(self, lookup, value, request=None):
        # The tenant page links here with its mailboxes (TenantAdmin.mailboxes).
        return lookup == "tenant__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="Last error")
    def last_error_text(self, account):
        error = account.last_error or {}
        return error.get("error") or error.get("response") or ""
