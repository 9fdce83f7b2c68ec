"""Dashboard routes (mounted at the site root by ``emailapi.urls``): sign-up and sign-in pages,
Django's password reset with our templates, and the tenant's pages under ``/dashboard``."""

from django.contrib.auth import views as auth
from django.urls import path, reverse_lazy

from accounts.web import (
    auth_views,
    connection_log,
    invitation_views,
    live,
    oauth2_views,
    views,
    webhook_views,
)

app_name = "web"

urlpatterns = [
    path("signup", auth_views.signup, name="signup"),
    path("login", auth_views.login_view, name="login"),
    path("logout", auth_views.logout_view, name="logout"),
    path("verify-email/<str:token>", auth_views.verify_email, name="verify-email"),
    path("verify-email", auth_views.resend_verification, name="resend-verification"),
    path("invitations/accept", invitation_views.accept, name="invitation-accept"),
    path("invitations/<str:token>", invitation_views.open_link, name="invitation"),
    path("password-reset", auth.PasswordResetView.as_view(
        template_name="registration/password_reset.html",
        email_template_name="registration/password_reset_email.txt",
        subject_template_name="registration/password_reset_subject.txt",
        success_url=reverse_lazy("web:password-reset-done")), name="password-reset"),
    path("password-reset/sent", auth.PasswordResetDoneView.as_view(
        template_name="registration/password_reset_sent.html"), name="password-reset-done"),
    path("password-reset/<uidb64>/<token>", auth.PasswordResetConfirmView.as_view(
        template_name="registration/password_reset_confirm.html",
        success_url=reverse_lazy("web:password-reset-complete")),
        name="password-reset-confirm"),
    path("password-reset/done", auth.PasswordResetCompleteView.as_view(
        template_name="registration/password_reset_complete.html"),
        name="password-reset-complete"),
    path("dashboard", views.overview, name="overview"),
    path("dashboard/live.json", live.live, name="live"),
    path("dashboard/stream", live.LiveStreamView.as_view(), name="live-stream"),
    path("dashboard/mailboxes", views.mailboxes, name="mailboxes"),
    path("dashboard/mailboxes/new", views.mailbox_add, name="mailbox-add"),
    path("dashboard/mailboxes/connect", views.mailbox_connect, name="mailbox-connect"),
    path("dashboard/mailboxes/<str:account_id>", views.mailbox_detail, name="mailbox"),
    path("dashboard/mailboxes/<str:account_id>/log", connection_log.mailbox_log,
         name="mailbox-log"),
    path("dashboard/mailboxes/<str:account_id>/<str:action>", views.mailbox_action,
         name="mailbox-action"),
    path("dashboard/tokens", views.tokens, name="tokens"),
    path("dashboard/tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("dashboard/team", views.team, name="team"),
    path("dashboard/team/<int:member_id>/remove", views.member_remove, name="member-remove"),
    path("dashboard/team/<int:member_id>/role", views.member_role, name="member-role"),
    path("dashboard/team/invitations/<int:invitation_id>/cancel", views.invitation_cancel,
         name="invitation-cancel"),
    path("dashboard/organization", views.switch_organization, name="switch-organization"),
    path("dashboard/settings", views.tenant_settings, name="settings"),
    path("dashboard/webhooks", webhook_views.webhooks, name="webhooks"),
    path("dashboard/webhooks/<uuid:webhook_id>", webhook_views.webhook_detail, name="webhook"),
    path("dashboard/webhooks/<uuid:webhook_id>/test", webhook_views.webhook_test,
         name="webhook-test"),
    path("dashboard/webhooks/<uuid:webhook_id>/delete", webhook_views.webhook_delete,
         name="webhook-delete"),
    path("dashboard/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/retry",
         webhook_views.delivery_retry, name="delivery-retry"),
    path("dashboard/oauth2", oauth2_views.oauth2_apps, name="oauth2-apps"),
    path("dashboard/oauth2/<str:app_id>", oauth2_views.oauth2_app_detail, name="oauth2-app"),
    path("dashboard/oauth2/<str:app_id>/delete", oauth2_views.oauth2_app_delete,
         name="oauth2-app-delete"),
]
