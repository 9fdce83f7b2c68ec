"""Operator views of tenants, people, tokens and mailboxes. Secrets never appear: token hashes
and sealed credentials are left out, and mailbox settings are shown read-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse

from accounts import plans
from accounts.admin_login import LimitedAdminLoginForm
from accounts.models import ApiToken, EmailAccount, Invitation, Membership, Tenant, User

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
    """Trials and plans go through ``accounts.plans`` (actions), never by editing ``status``
    by hand: the actions also pause or resume the tenant's mailboxes in the workers.
    "Mail servers on internal addresses" lets one tenant's mailboxes use IMAP/SMTP hosts on
    internal addresses (``accounts.mail_hosts``), for an on-premise customer."""

    list_display = ["name", "slug", "status", "plan", "trial_ends_at", "mailbox_count",
                    "created_at"]
    list_filter = ["status", "plan", "mail_allow_private"]
    search_fields = ["name", "slug", "memberships__user__email"]
    readonly_fields = ["status", "plan", "trial_ends_at", "max_mailboxes", "api_rate_limit",
                       "suspended_reason", "created_at"]
    inlines = [MembershipInline]
    actions = ["extend_trial", *[_convert_action(plan) for plan in plans.PLANS.values()],
               "suspend"]

    @admin.display(description="Mailboxes")
    def mailbox_count(self, tenant):
        return tenant.email_accounts.count()

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

    @admin.display(description="Last error")
    def last_error_text(self, account):
        error = account.last_error or {}
        return error.get("response") or error.get("error") or ""
