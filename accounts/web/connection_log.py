"""The dashboard's "Connection log" of a mailbox (issue 18 item 13): the last IMAP/SMTP lines
of its connections, redacted, from the same service as ``GET /v1/logs/{account}``
(``mailboxes.protocol_log``), and the switch that turns the account's ``logs`` on or off
(owners and admins)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.models import EmailAccount
from accounts.web.tenancy import tenant_view
from mailboxes import protocol_log

logger = logging.getLogger(__name__)
SHOWN = 500  # the newest lines shown on the page (the API gives all that are kept)


@require_http_methods(["GET", "POST"])
@tenant_view(write=True)
def mailbox_log(request, account_id: str):
    account = EmailAccount.of_tenant(request.tenant, account_id)
    if account is None:
        raise Http404("No such mailbox")
    if request.method == "POST":
        on = request.POST.get("logs") == "on"
        services.update_account(account, {"logs": on})
        messages.success(request, "Connection log on: new connections are logged." if on
                         else "Connection log off: nothing more is logged.")
        return redirect("web:mailbox-log", account_id=account.account_id)
    try:
        entries, unavailable = protocol_log.read(account.pk)[-SHOWN:], False
    except Exception:  # noqa: BLE001 - Redis away: say so, keep the page
        logger.warning("connection log of account %s unreadable", account.pk, exc_info=True)
        entries, unavailable = [], True
    return render(request, "dashboard/mailbox_log.html", {
        "account": account, "entries": entries, "unavailable": unavailable, "shown": SHOWN,
        "page": "mailboxes"})
