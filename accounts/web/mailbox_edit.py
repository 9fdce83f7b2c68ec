"""Editing a mailbox in the dashboard: its name, address, servers, login and the folder kept
in IDLE, through ``accounts.services.update_account`` (the service of ``PUT /v1/account``).

Only what changed is sent, so a rename does not make the worker reconnect. New server
settings or a new password are tried for real first, as when adding a mailbox (a password
left empty is the stored one): only settings that work are saved, and a refusal keeps the
form with the message next to the input it is about. Stored passwords are never shown.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from accounts import mail_proxy, plans, services
from accounts.credentials import get_credential
from accounts.errors import HostNotAllowed, SecretNeeded
from accounts.models import EmailAccount
from accounts.web.errors import show_on_form
from accounts.web.mail_views import account_or_404
from accounts.web.mailbox_forms import MailboxEditForm
from accounts.web.tenancy import can_write, tenant_view
from emailapi.lib.errors import DomainError
from mailboxes import connection_settings, listing
from mailboxes.verify import in_words, verify


@tenant_view(write=True)
def edit(request, account_id: str):
    if not can_write(request):  # a viewer is not shown a form it cannot send
        raise PermissionDenied("Your role can view but not change this")
    account = account_or_404(request, account_id)
    folders = [f.path for f in listing.folders_of(account) if not f.no_select]
    form = MailboxEditForm(account, folders, request.POST or None)
    if request.method == "POST" and form.is_valid():
        if request.tenant.status in plans.STOPPED:
            form.add_error(None, "This organization's service is stopped, so nothing can be "
                                 "changed now.")
        elif form.payload:
            _test_and_save(request, account, form)
        if form.is_valid():
            messages.success(request, "Mailbox saved." if form.payload else "Nothing changed.")
            return redirect("web:mailbox", account_id=account.account_id)
    return render(request, "dashboard/mailbox_edit.html", {
        "account": account, "form": form, "page": "mailboxes"},
        status=400 if form.errors else 200)


def _test_and_save(request, account: EmailAccount, form: MailboxEditForm) -> None:
    payload = form.payload
    if "imap" in payload or payload.get("smtp") or "proxy" in payload:
        _test(request, account, form, payload)
        if form.errors:
            return
    try:
        services.update_account(account, payload)
    except HostNotAllowed as exc:
        form.add_error(f"{exc.section}_host", exc.message)
    except DomainError as exc:
        show_on_form(form, exc)


def _test(request, account: EmailAccount, form: MailboxEditForm, payload: dict) -> None:
    """Log in with the settings the mailbox would have after the change (a password left
    empty: the stored one, on the host it was given for only); failures go on the form."""
    for section, field in (("imap", "password"), ("smtp", "smtp_password")):
        try:
            services.check_secrets_stay(account, section, payload)
        except SecretNeeded as exc:
            form.add_error(field, exc.message)
    if form.errors:
        return
    imap = _effective(account, "imap", payload.get("imap"))
    smtp_change = payload["smtp"] if payload.get("smtp") else None
    if smtp_change is None and "proxy" in payload and account.smtp and "smtp" not in payload:
        smtp_change = {}  # a new proxy carries the stored SMTP server too: test it as well
    smtp = _effective(account, "smtp", smtp_change) if smtp_change is not None else None
    typed = ((payload.get("imap") or {}).get("auth") or {}).get("pass")
    if smtp is not None and not smtp["auth"].get("pass") and typed:
        # A new SMTP server without a password of its own takes the IMAP password typed here
        # (never the stored one, which goes only to the server it was given for).
        if smtp["auth"].get("user") == imap["auth"].get("user"):
            smtp["auth"]["pass"] = typed
            payload["smtp"].setdefault("auth", {})["pass"] = typed
    if smtp is not None and not smtp["auth"].get("pass"):
        form.add_error("smtp_password", "Required for a new SMTP server (or type the IMAP "
                                        "password above to use it for both)")
        return
    try:  # tested the way the account will connect: through its proxy, else its tenant's
        proxy = mail_proxy.connection_proxy_after(account, payload["proxy"]) \
            if "proxy" in payload else mail_proxy.connection_proxy(account)
    except mail_proxy.ProxyUnusable as exc:
        form.add_error("imap_host", str(exc))
        return
    except DomainError as exc:  # not a proxy URL, a masked password for another proxy
        show_on_form(form, exc, {DomainError: "proxy"})
        return
    imap_settings = replace(connection_settings.imap_settings_from(imap, tenant=request.tenant),
                            proxy=proxy)
    smtp_settings = replace(connection_settings.smtp_settings_from(smtp, tenant=request.tenant),
                            proxy=proxy) if smtp else None
    results = verify(imap_settings, smtp_settings, timeout=settings.EMAILAPI_VERIFY_TIMEOUT)
    for name, field in (("imap", "imap_host"), ("smtp", "smtp_host")):
        result = results.get(name)
        if result and not result.get("success"):
            form.add_error(field, f"Connection test failed: {in_words(result)}")


def _effective(account: EmailAccount, section: str, change: dict | None) -> dict:
    """The section as it would be stored after *change*, its password opened or typed."""
    stored = getattr(account, section) or {}
    merged = {**stored, **(change or {})}
    auth = {**(stored.get("auth") or {}), **((change or {}).get("auth") or {})}
    if not auth.get("pass"):
        auth["pass"] = get_credential(account, f"{section}.pass")
    merged["auth"] = auth
    return merged
