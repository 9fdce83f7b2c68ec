"""The hosted connect flow: a signed link in, a registered mailbox and a redirect out.

    POST /v1/authentication/form ──► make_link ──► /connect?data=..&sig=..  (the page)
    OAuth2:  start_oauth2 ──► provider's sign-in ──► finish_oauth2 (callback) ──┐
    IMAP:    the page's password form, tested for real ──► finish_password ─────┤
                                     save (new or existing account), accountAdded ◄┘
                                     ──► redirectUrl?account=<id>&state=new|existing

The provider's side (authorize URL, code exchange) is social-auth's backends for Gmail,
Outlook and Yahoo (``social.py``), and ``flow.py`` for a ``generic`` app.

Between start and callback, the PKCE verifier and the link live in Redis under the random
``state`` for ``STATE_SECONDS``; the callback takes them out (GETDEL), so a replayed callback
finds nothing. The link is claimed (``links.use``) only once the sign-in is known to be good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.dateparse import parse_datetime

from accounts import crypto, identity, services
from accounts.credentials import master_secrets
from accounts.errors import InvalidInput
from accounts.models import EmailAccount, OAuth2App, Tenant
from accounts.oauth2 import flow, links, presets, registered_apps, social
from emailapi.lib.redis import get_redis

STATE_SECONDS = 900
IMAP = "imap"
# The account's other settings given with ``oauth2.authorize`` ride in the link, sealed: a
# proxy's or a webhook's password among them is a secret, and Redis holds the link meanwhile.
SETTINGS_CONTEXT = "authorize-settings"
DATE_SETTINGS = ("notifyFrom", "syncFrom")


@dataclass(frozen=True)
class Saved:
    """A finished sign-in: where the browser goes, the account saved, and the settings that
    came with ``oauth2.authorize`` (saved with it; the web layer makes the account's webhook
    subscription from ``webhooks``/``webhooksCustomHeaders``, as ``POST /v1/account`` does)."""

    target: str
    account: EmailAccount
    settings: dict = field(default_factory=dict)


class ConnectError(Exception):
    """The sign-in cannot finish; the message is safe to show to the end user."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def make_link(tenant: Tenant, data: dict, base_url: str, longest: str = "redirectUrl") -> str:
    """The link's URL; ``longest`` names the field a link too long to be read back blames."""
    data_, sig = _signed(tenant, data, longest)
    return f"{service_url(base_url)}/connect?{urlencode({'data': data_, 'sig': sig})}"


def authorize_url(tenant: Tenant, data: dict, base_url: str) -> str:
    """EmailEngine's ``POST /v1/account`` with ``oauth2.authorize``: the provider's sign-in
    page at once, for a link made on the spot and never shown (``data`` as ``make_link``'s,
    ``type`` the app's id). The sign-in then finishes as the link's would."""
    data_, sig = _signed(tenant, data, "oauth2.authorize")
    return start_oauth2(data_, sig, base_url)


def sealed_settings(tenant: Tenant, values: dict) -> str:
    """An account's settings (``POST /v1/account``'s validated fields) for a link's
    ``settings``: JSON, sealed for this tenant."""
    return crypto.seal(json.dumps(values, cls=DjangoJSONEncoder),
                       f"{SETTINGS_CONTEXT}:{tenant.pk}", settings.EMAILAPI_SECRET)


def _opened_settings(payload: dict) -> dict:
    if not payload.get("settings"):
        return {}
    values = json.loads(crypto.open_secret(payload["settings"],
                                           f"{SETTINGS_CONTEXT}:{payload['tenant']}",
                                           master_secrets()))
    for key in DATE_SETTINGS:
        if isinstance(values.get(key), str):
            values[key] = parse_datetime(values[key])
    return values


def _signed(tenant: Tenant, data: dict, field_: str) -> tuple[str, str]:
    """The link's ``data`` and ``sig``; ``InvalidInput`` naming ``field_`` when the settings
    make it too long to be read back (``links.MAX_DATA``)."""
    payload = {key: data[key] for key in ("account", "name", "email", "expectedEmail",
                                          "redirectUrl", "type", "settings")
               if data.get(key) is not None}
    payload.update(tenant=tenant.pk, nonce=secrets.token_urlsafe(16))
    data_, sig = links.make(payload)
    if len(data_) > links.MAX_DATA:
        raise InvalidInput("Invalid input: too many settings to carry through the sign-in",
                           {field_: ["Too many settings to carry through the sign-in: send the "
                                     "longest ones with PUT /v1/account/{account} afterwards"]})
    return data_, sig


def done_url(base_url: str) -> str:
    """Where a sign-in without a redirect URL of the customer's ends: our page saying so."""
    return f"{service_url(base_url)}/connect/done"


def service_url(request_base: str) -> str:
    return settings.EMAILAPI_SERVICE_URL or request_base.rstrip("/")


def app_for(payload: dict) -> OAuth2App:
    app = registered_apps.find_app(payload["tenant"], payload["type"]) \
        if payload.get("type") else None
    if app is None:
        raise ConnectError("This sign-in method is not set up. Ask for a new link.",
                           "OAuth2AppNotFound")
    return app


def start_oauth2(data: str, sig: str, request_base: str, chosen: str = "",
                 browser: str = "") -> str:
    """Remember the attempt under a fresh ``state``; return the provider's authorize URL.
    ``chosen``: the app the user picked on a link made without a ``type`` (one of the
    tenant's apps, by id; a link with a ``type`` keeps its own). ``browser``: the hosted
    page's cookie (``browser_key``) of the browser that starts it, which alone may finish it
    (``finish_oauth2``) when the provider sends it back to this host (an app's own
    ``redirectUrl`` elsewhere may reach our callback by a way that does not carry our cookie);
    "" for ``oauth2.authorize``, whose user goes to the provider from the customer's
    application without passing here."""
    payload = links.read(data, sig)
    app = app_for(payload if payload.get("type") else {**payload, "type": chosen})
    redirect_uri = app.redirect_url or f"{service_url(request_base)}/connect/oauth2/callback"
    verifier, challenge = flow.pkce_pair()
    state = secrets.token_urlsafe(24)
    attempt = {"data": data, "sig": sig, "app": app.app_id, "verifier": verifier,
               "redirectUri": redirect_uri}
    if browser and urlsplit(redirect_uri).netloc == urlsplit(request_base).netloc:
        attempt["browser"] = _digest(browser)
    get_redis().set(_state_key(state), json.dumps(attempt), ex=STATE_SECONDS)
    hint = expected_email(payload) or payload.get("email") or ""
    if social.supports(app.provider):
        return social.authorize_url(app, redirect_uri, state, challenge, login_hint=hint)
    return presets.authorize_url(registered_apps.endpoints(app), app.client_id, redirect_uri, state,
                                 challenge, login_hint=hint)


def finish_oauth2(state: str, code: str, browser: str = "") -> Saved:
    """Exchange the code, check who signed in, save the mailbox (with the settings that came
    with it).

    A sign-in started on the hosted page finishes only in the browser that started it
    (``browser``, its cookie): otherwise whoever holds a link could start a sign-in, send the
    provider's page to someone else, and have that person's mailbox added under the link's
    account once they click "Allow" (RFC 6749 section 10.12)."""
    raw = get_redis().getdel(_state_key(state)) if state else None
    if raw is None:
        raise ConnectError("This sign-in has expired or was already finished. Start again from "
                           "your link.", "InvalidState")
    attempt = json.loads(raw)
    if attempt.get("browser") and not hmac.compare_digest(attempt["browser"],
                                                          _digest(browser)):
        raise ConnectError("This sign-in was started in another browser. Open your link in "
                           "this browser and start again.", "InvalidState")
    payload = links.read(attempt["data"], attempt["sig"])
    app = OAuth2App.objects.filter(tenant_id=payload["tenant"], app_id=attempt["app"]).first()
    if app is None:
        raise ConnectError("This sign-in method was removed meanwhile.", "OAuth2AppNotFound")
    try:
        tokens = _exchange(app, state, code, attempt)
    except flow.OAuth2Error as exc:
        raise ConnectError(f"The provider did not accept the sign-in: {exc}", exc.code) from None
    # Only the provider's word counts against an expectation (see accounts.identity).
    _check_expected(payload, tokens.email or "")
    email = tokens.email or payload.get("email") or ""
    if not email:
        raise ConnectError("The provider did not say which address signed in.", "NoIdentity")
    return _save(payload, email, registered_apps.signed_in(
        app, email, tokens.access_token, tokens.refresh_token, tokens.expires, tokens.scope))


def _exchange(app: OAuth2App, state: str, code: str, attempt: dict) -> flow.Tokens:
    """Gmail, Outlook and Yahoo through social-auth's backends; ``generic`` through flow.py."""
    allow_http = settings.EMAILAPI_OAUTH2_ALLOW_HTTP
    if social.supports(app.provider):
        return social.exchange_code(app, code, state, attempt["redirectUri"],
                                    attempt["verifier"], allow_http)
    return flow.exchange_code(registered_apps.endpoints(app).token_url, app.client_id,
                              registered_apps.client_secret(app), code, attempt["redirectUri"],
                              attempt["verifier"], allow_http)


def finish_password(payload: dict, email: str, imap: dict, smtp: dict | None) -> Saved:
    """The IMAP form's settings, already tested for real by the caller: save them."""
    _check_expected(payload, email)
    return _save(payload, email, {"imap": imap, "smtp": smtp, "oauth2": None})


def expected_email(payload: dict) -> str:
    """The address this link's sign-in must be ("" for any): the link's ``expectedEmail``,
    else the pin of the account it sets up again (``accounts.identity``)."""
    account_id = payload.get("account")
    account = EmailAccount.of_tenant(payload["tenant"], account_id) \
        if account_id and not payload.get("expectedEmail") else None
    return identity.expectation(payload.get("expectedEmail"), account)


def _check_expected(payload: dict, email: str) -> None:
    refused = identity.mismatch(expected_email(payload), email)
    if refused:
        raise ConnectError(refused, "UnexpectedEmail")


def _save(payload: dict, email: str, settings_: dict) -> Saved:
    links.use(payload)  # from here on the link is spent, whatever happens
    try:
        tenant = Tenant.objects.get(pk=payload["tenant"])
        account_id = payload.get("account")
        existing = EmailAccount.of_tenant(tenant, account_id) \
            if account_id else None
        given = _opened_settings(payload)
        data = {**given, "name": payload.get("name") or email, "email": email, **settings_}
        if payload.get("expectedEmail"):  # the link's pin outlives it (accounts.identity)
            data["expectedEmail"] = payload["expectedEmail"]
        if existing is None:
            account = services.register_account(tenant, {"account": account_id, **data})
            state = "new"
        else:
            account = services.replace_sign_in(existing, data)
            state = "existing"
    except BaseException:
        links.release(payload)  # nothing was saved: let the user try again
        raise
    return Saved(_with_params(payload["redirectUrl"],
                              {"account": account.account_id, "state": state}), account, given)


def _with_params(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def browser_key() -> str:
    """A new value for the hosted page's cookie that ties a sign-in to its browser."""
    return secrets.token_urlsafe(24)


def _digest(browser: str) -> str:
    return hashlib.sha256(browser.encode()).hexdigest()


def _state_key(state: str) -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:connect-state:{state}"
