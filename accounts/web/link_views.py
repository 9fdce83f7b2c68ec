"""Hosted connect links made from the dashboard: the same signed, single-use links as
``POST /v1/authentication/form`` (``accounts.oauth2.connect.make_link``), shown with a Copy
button for the customer to send to their user.

- ``connect_links``: a link for a new mailbox (or to reconnect one), by password form or by
  one of the tenant's OAuth2 apps.
- ``reauth_link``: for a mailbox whose sign-in stopped working (``authenticationError``), a
  link that reconnects that very mailbox, by the way it signs in now, for its address only.

Without a redirect URL of the customer's, the user lands on our plain "connected" page.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import plans
from accounts.models import OAuth2App
from accounts.oauth2 import connect
from accounts.web.mail_views import account_or_404
from accounts.web.mailbox_forms import ConnectLinkForm
from accounts.web.tenancy import can_write, tenant_view

STOPPED_MESSAGE = "This organization's service is stopped, so no link can be made now."


def _base(request) -> str:
    return request.build_absolute_uri("/")


def _done_url(request) -> str:
    return connect.done_url(_base(request))


@tenant_view(write=True)
def connect_links(request):
    if not can_write(request):  # a viewer is not shown a form it cannot send
        raise PermissionDenied("Your role can view but not change this")
    apps = OAuth2App.objects.filter(tenant=request.tenant).order_by("created_at")
    form = ConnectLinkForm(request.POST or None, apps=apps,
                           default_redirect=_done_url(request))
    link = None
    if request.method == "POST" and form.is_valid():
        if request.tenant.status in plans.STOPPED:
            form.add_error(None, STOPPED_MESSAGE)
        else:
            link = connect.make_link(request.tenant, form.payload, _base(request))
    return render(request, "dashboard/connect_links.html", {
        "form": form, "link": link, "page": "mailboxes"},
        status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def reauth_link(request, account_id: str):
    account = account_or_404(request, account_id)
    if request.tenant.status in plans.STOPPED:
        messages.error(request, STOPPED_MESSAGE)
        return redirect("web:mailbox", account_id=account.account_id)
    kind = (account.oauth2 or {}).get("app") or connect.IMAP
    data = {"account": account.account_id, "name": account.name or None,
            "email": account.email or None, "redirectUrl": _done_url(request), "type": kind}
    if account.email:
        data["expectedEmail"] = account.email
    link = connect.make_link(request.tenant, data, _base(request))
    return render(request, "dashboard/reauth_link.html", {
        "account": account, "link": link, "page": "mailboxes"})
