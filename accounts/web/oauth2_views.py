"""OAuth2 app pages: the tenant's apps (list, add, edit, delete), the dashboard side of
``/v1/oauth2``. Thin over ``accounts.oauth2.registered_apps`` and validated by the API's own serializers
(``OAuth2AppForm``), so a page and the API accept the same apps. The client secret goes in
through a password input and never comes back out: pages say only whether one is set."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.errors import AlreadyExists, ClientSecretNeeded, HostNotAllowed, TokenHostInUse
from accounts.models import OAuth2App
from accounts.oauth2 import connect, registered_apps
from accounts.web.errors import show_on_form
from accounts.web.forms import OAuth2AppForm
from accounts.web.tenancy import tenant_view
from emailapi.lib.errors import DomainError


def _app_or_404(request, app_id: str) -> OAuth2App:
    app = OAuth2App.objects.filter(tenant=request.tenant, app_id=app_id).first()
    if app is None:
        raise Http404("No such OAuth2 app")
    return app


def _callback_url(request) -> str:
    """What an empty redirect URL means (``connect.start_oauth2``): the URL to register at
    the provider, so the page shows it."""
    return f"{connect.service_url(request.build_absolute_uri('/'))}/connect/oauth2/callback"


def _with_effective(app: OAuth2App) -> OAuth2App:
    # The preset fills what the app leaves empty; the pages show which scopes really apply.
    app.effective = registered_apps.endpoints(app)
    return app


@tenant_view(write=True)
def oauth2_apps(request):
    form = OAuth2AppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            app = registered_apps.create_app(request.tenant, form.payload)
        except AlreadyExists as exc:
            show_on_form(form, exc, {AlreadyExists: "app"})
        else:
            messages.success(request, "OAuth2 app added.")
            return redirect("web:oauth2-app", app_id=app.app_id)
    tenant_apps = [_with_effective(app) for app in
                   OAuth2App.objects.filter(tenant=request.tenant).order_by("created_at", "id")]
    return render(request, "dashboard/oauth2_apps.html", {
        "form": form, "apps": tenant_apps, "callback_url": _callback_url(request),
        "page": "oauth2"}, status=400 if form.errors else 200)


@tenant_view(write=True)
def oauth2_app_detail(request, app_id: str):
    app = _app_or_404(request, app_id)
    form = OAuth2AppForm(request.POST or None, app=app)
    if request.method == "POST" and form.is_valid():
        try:
            registered_apps.update_app(app, form.payload)
        except DomainError as exc:  # a token host in use or without a new secret, a mail host
            show_on_form(form, exc, {TokenHostInUse: "token_url", HostNotAllowed: "imap_host",
                                     ClientSecretNeeded: "client_secret"})
            app = _app_or_404(request, app_id)  # the stored app, not the refused change
        else:
            messages.success(request, "OAuth2 app saved.")
            return redirect("web:oauth2-app", app_id=app.app_id)
    using = registered_apps.mailboxes_using(app)
    return render(request, "dashboard/oauth2_app_detail.html", {
        "app": _with_effective(app), "form": form, "mailboxes_using": using,
        "callback_url": _callback_url(request), "page": "oauth2"},
        status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def oauth2_app_delete(request, app_id: str):
    app = _app_or_404(request, app_id)
    registered_apps.delete_app(app)
    messages.success(request, f"OAuth2 app {app_id} deleted. Mailboxes that signed in with it "
                              "need a new sign-in once their access token expires.")
    return redirect("web:oauth2-apps")
