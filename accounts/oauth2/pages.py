"""The hosted connect pages an end user sees (server-rendered, no JavaScript needed).

``/connect?data=..&sig=..`` shows either a "Sign in with ..." button (OAuth2) or a password
form (``imap``), whose settings are tested against the servers before anything is saved. Every
failure is a page that says what to do next; nothing about the tenant, its app or any secret
is shown. Only the link's own signed parameters steer these pages.

A link allows a few sign-in attempts a minute (``links.attempt``; 429 beyond), and the
password form's servers must not be on internal addresses (``accounts.mail_hosts``) unless
the tenant is allowed them.
"""

from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from accounts import mail_hosts
from accounts.errors import LINK_ERRORS, HostNotAllowed
from accounts.models import OAuth2App, Tenant
from accounts.oauth2 import connect, discovery, links
from emailapi.api.errors import status_of
from emailapi.lib.errors import DomainError
from mailboxes import connection_settings
from mailboxes.verify import in_words, verify
from webhooks import account_webhooks

logger = logging.getLogger(__name__)
# Ties a sign-in started on the hosted page to the browser that started it
# (``connect.finish_oauth2``).
BROWSER_COOKIE = "emailapi_connect"
PROVIDER_NAMES = {"gmail": "Google", "outlook": "Microsoft", "yahoo": "Yahoo",
                  "generic": "your provider"}


class PasswordForm(forms.Form):
    """The end user's mailbox: what they typed is kept when anything fails, except the
    password, which is never written into a page."""

    email = forms.EmailField(label="Email address", max_length=320, widget=forms.EmailInput(
        attrs={"autocomplete": "email", "data-autoconfig": "email"}))
    user = forms.CharField(label="Username", max_length=512, required=False,
                           help_text="Empty: the email address.",
                           widget=forms.TextInput(attrs={"autocomplete": "username"}))
    password = forms.CharField(label="Password", max_length=1024, strip=False,
                               widget=forms.PasswordInput(
                                   attrs={"autocomplete": "current-password"}),
                               help_text="Stored encrypted; some providers want an app "
                                         "password here.")
    imap_host = forms.RegexField(label="IMAP server", regex=r"^[A-Za-z0-9.\-:\[\]_]{1,255}$",
                                 error_messages={"invalid": "Not a valid host name."},
                                 widget=forms.TextInput(attrs={"data-autoconfig": "imap.host"}))
    imap_port = forms.IntegerField(label="IMAP port", min_value=1, max_value=65535, initial=993,
                                   widget=forms.NumberInput(attrs={"data-autoconfig": "imap.port"}))
    imap_secure = forms.BooleanField(label="IMAP TLS from the start (port 993)", required=False,
                                     initial=True, widget=forms.CheckboxInput(
                                         attrs={"data-autoconfig": "imap.secure"}))
    smtp_host = forms.RegexField(label="SMTP server (optional)",
                                 regex=r"^[A-Za-z0-9.\-:\[\]_]{1,255}$", required=False,
                                 error_messages={"invalid": "Not a valid host name."},
                                 widget=forms.TextInput(attrs={"data-autoconfig": "smtp.host"}))
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535,
                                   required=False, initial=465,
                                   widget=forms.NumberInput(attrs={"data-autoconfig": "smtp.port"}))
    smtp_secure = forms.BooleanField(label="SMTP TLS from the start (port 465)", required=False,
                                     initial=True, widget=forms.CheckboxInput(
                                         attrs={"data-autoconfig": "smtp.secure"}))
    allow_untrusted = forms.BooleanField(required=False,
                                         label="Accept an untrusted (self-signed) certificate")

    def servers(self) -> tuple[dict, dict | None]:
        data = self.cleaned_data
        auth = {"user": data["user"] or data["email"], "pass": data["password"]}
        tls = {"rejectUnauthorized": not data["allow_untrusted"]}
        imap = {"host": data["imap_host"], "port": data["imap_port"],
                "secure": data["imap_secure"], "auth": auth, "tls": tls}
        smtp = None
        if data["smtp_host"]:
            smtp = {"host": data["smtp_host"], "port": data["smtp_port"] or 465,
                    "secure": data["smtp_secure"], "auth": dict(auth), "tls": dict(tls)}
        return imap, smtp


def _error(request, message: str, status: int = 400):
    return render(request, "connect/error.html", {"message": message}, status=status)


def _too_many(request, retry_after: int):
    response = _error(request, "Too many attempts with this link. Wait a minute, then try "
                               "again.", 429)
    response["Retry-After"] = str(retry_after)
    return response


def _base(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@require_http_methods(["GET", "POST"])
def connect_page(request):
    data, sig = request.GET.get("data", ""), request.GET.get("sig", "")
    try:
        payload = links.read(data, sig)
    except LINK_ERRORS as exc:
        return _error(request, str(exc), status_of(exc))
    context = {"data": data, "sig": sig, "email": payload.get("email", "")}
    if not payload.get("type"):  # the user chooses: the password form, and each app
        context["apps"] = [
            {"id": app.app_id, "provider": PROVIDER_NAMES.get(app.provider, app.name)}
            for app in OAuth2App.objects.filter(tenant_id=payload["tenant"])
            .order_by("created_at", "id")]
    elif payload["type"] != connect.IMAP:
        try:
            app = connect.app_for(payload)
        except connect.ConnectError as exc:
            return _error(request, str(exc))
        context["provider"] = PROVIDER_NAMES.get(app.provider, app.provider)
        return render(request, "connect/oauth2.html", context)
    if request.method == "POST":
        return _password_submit(request, payload, context)
    context["form"] = PasswordForm(initial=_initial(payload))
    return render(request, "connect/password.html", context)


def _initial(payload: dict) -> dict:
    email = connect.expected_email(payload) or payload.get("email") or ""
    initial: dict = {"email": email}
    found = discovery.by_domain(discovery.domain_of(email)) if email else None
    if found:
        initial.update(imap_host=found["imap"]["host"], imap_port=found["imap"]["port"],
                       imap_secure=found["imap"]["secure"], smtp_host=found["smtp"]["host"],
                       smtp_port=found["smtp"]["port"], smtp_secure=found["smtp"]["secure"])
    return initial


def _password_submit(request, payload: dict, context: dict):
    form = PasswordForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "connect/password.html", context, status=400)
    retry_after = links.attempt(payload)
    if retry_after:
        return _too_many(request, retry_after)
    imap, smtp = form.servers()
    tenant = Tenant.objects.filter(pk=payload["tenant"]).first()
    try:
        mail_hosts.check(tenant, {"imap": imap, "smtp": smtp})
    except HostNotAllowed as exc:
        form.add_error(f"{exc.section}_host", f"{exc.reason}. Mail servers on internal "
                                              "addresses are not allowed.")
        return render(request, "connect/password.html", context, status=400)
    result = verify(connection_settings.imap_settings_from(imap, tenant=tenant),
                    connection_settings.smtp_settings_from(smtp, tenant=tenant) if smtp else None,
                    timeout=settings.EMAILAPI_VERIFY_TIMEOUT)
    for kind in ("imap", "smtp"):  # each failure next to the server it is about
        if kind in result and not result[kind].get("success"):
            form.add_error(f"{kind}_host", f"{kind.upper()}: {in_words(result[kind])}")
    if form.errors:
        return render(request, "connect/password.html", context, status=400)
    try:
        saved = connect.finish_password(payload, form.cleaned_data["email"], imap, smtp)
    except (connect.ConnectError, DomainError) as exc:
        return _error(request, str(exc))
    return HttpResponseRedirect(saved.target)


@require_GET
def connect_done(request):
    """Where a link made without a redirect URL of the customer's ends: the mailbox is
    connected (``state``: ``new``, or ``existing`` when it was signed in again)."""
    again = request.GET.get("state") == "existing"
    return render(request, "connect/done.html", {"again": again})


# The MX lookup of autoconfig (tests replace it, as the API's AutoconfigView's).
autoconfig_mx_lookup = discovery.dns_mx_lookup


@require_GET
def connect_autoconfig(request):
    """``GET /connect/autoconfig?data=..&sig=..&email=``: the servers ``/v1/autoconfig``
    suggests for an address, for the password form to pre-fill as the address is typed. Only
    a genuine, unexpired, unused link may ask (the page has no API token)."""
    try:
        payload = links.read(request.GET.get("data", ""), request.GET.get("sig", ""))
    except LINK_ERRORS as exc:
        return JsonResponse({"error": str(exc), "code": exc.code}, status=status_of(exc))
    email = request.GET.get("email", "").strip()
    try:
        validate_email(email)
    except ValidationError:
        return JsonResponse({"error": "Enter a valid email address.", "code": "InvalidInput"},
                            status=400)
    found = discovery.by_domain(discovery.domain_of(email))
    if found is None:  # the domain's MX hosts, a DNS lookup: counted per link
        retry_after = links.lookup(payload)
        if retry_after:
            response = JsonResponse({"error": "Too many lookups with this link. Wait a "
                                              "minute, or type the servers.",
                                     "code": "RateLimited"}, status=429)
            response["Retry-After"] = str(retry_after)
            return response
        found = discovery.by_mx(autoconfig_mx_lookup(discovery.domain_of(email)))
    return JsonResponse(discovery.answer(email, found))


@require_GET
def start_oauth2(request):
    data, sig = request.GET.get("data", ""), request.GET.get("sig", "")
    browser = _browser_cookie(request) or connect.browser_key()
    try:
        retry_after = links.attempt(links.read(data, sig))
        if retry_after:
            return _too_many(request, retry_after)
        target = connect.start_oauth2(data, sig, _base(request), request.GET.get("app", ""),
                                      browser=browser)
    except LINK_ERRORS as exc:
        return _error(request, str(exc), status_of(exc))
    except connect.ConnectError as exc:
        return _error(request, str(exc))
    response = HttpResponseRedirect(target)
    # Lax: sent on the provider's redirect back (a top-level GET), never on a sub-request.
    response.set_cookie(BROWSER_COOKIE, browser, max_age=connect.STATE_SECONDS,
                        path="/connect/", secure=request.is_secure(), httponly=True,
                        samesite="Lax")
    return response


def _browser_cookie(request) -> str:
    value = request.COOKIES.get(BROWSER_COOKIE, "")
    return value if 20 <= len(value) <= 64 and value.isascii() else ""


@require_GET
def oauth2_callback(request):
    if request.GET.get("error"):
        # The user declined, or the provider refused: its error code only, never echoed HTML.
        code = request.GET["error"][:64]
        return _error(request, f"The sign-in was not completed ({code}). Start again from your "
                               f"link.")
    try:
        saved = connect.finish_oauth2(request.GET.get("state", ""), request.GET.get("code", ""),
                                      browser=_browser_cookie(request))
    except (connect.ConnectError, DomainError) as exc:  # DomainError: a race
        logger.info("connect callback refused: %s", getattr(exc, "code", exc))
        return _error(request, str(exc))
    _follow_account_webhook(saved)
    return HttpResponseRedirect(saved.target)


def _follow_account_webhook(saved: connect.Saved) -> None:
    """The account's own webhook given with ``oauth2.authorize``, made as ``POST
    /v1/account`` makes it once the account is saved. The account is saved and the link spent
    by then: a failure here (the account deleted meanwhile, the database gone) is logged and
    the user still goes on; the account keeps its ``webhooks`` URL, and a ``PUT`` of it makes
    the subscription."""
    given = saved.settings
    if "webhooks" not in given and "webhooksCustomHeaders" not in given:
        return
    try:
        account_webhooks.follow_account_webhook(saved.account, given.get("webhooksCustomHeaders"),
                                                given.get("webhooks"))
    except Exception as exc:  # noqa: BLE001 - the sign-in itself succeeded
        logger.warning("account %s: its webhook subscription was not made: %s",
                       saved.account.pk, getattr(exc, "code", type(exc).__name__))
