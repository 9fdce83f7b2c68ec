"""A tenant's OAuth2 apps: create, update, delete, and their effective settings.

The client secret enters here in clear and is stored sealed (``accounts.crypto``) under a
context naming the tenant and app, so a sealed secret copied to another row does not open.
``client_secret`` is the only reader.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import crypto, mail_hosts
from accounts.credentials import master_secrets
from accounts.errors import AlreadyExists, ClientSecretNeeded, OAuth2AppNotFound, TokenHostInUse
from accounts.models import EmailAccount, OAuth2App, Tenant
from accounts.oauth2 import presets
from emailapi.lib.existing import save_existing

PUBLIC_FIELDS = {"name": "name", "provider": "provider", "clientId": "client_id",
                 "authorizeUrl": "authorize_url", "tokenUrl": "token_url", "scopes": "scopes",
                 "redirectUrl": "redirect_url", "imap": "imap", "smtp": "smtp"}


def _context(tenant_id: int, app_id: str) -> str:
    return f"tenant:{tenant_id}/oauth2app:{app_id}/clientSecret"


def _seal(tenant_id: int, app_id: str, value: str) -> str:
    return crypto.seal(value, _context(tenant_id, app_id), settings.EMAILAPI_SECRET)


def client_secret(app: OAuth2App) -> str:
    return crypto.open_secret(app.client_secret_sealed, _context(app.tenant_id, app.app_id),
                              master_secrets())


def create_app(tenant: Tenant, data: dict) -> OAuth2App:
    """A new app; its mail servers (a generic provider's) may not be on internal addresses,
    as a mailbox's may not (``mail_hosts``): refused now, not at the end of a sign-in."""
    mail_hosts.check(tenant, data)
    app_id = data.get("app") or secrets.token_hex(8)
    values = {model: data[api] for api, model in PUBLIC_FIELDS.items() if api in data}
    try:
        with transaction.atomic():
            return OAuth2App.objects.create(
                tenant=tenant, app_id=app_id,
                client_secret_sealed=_seal(tenant.pk, app_id, data["clientSecret"]), **values)
    except IntegrityError:
        raise AlreadyExists(f"OAuth2 app {app_id!r} already exists") from None


def update_app(app: OAuth2App, data: dict) -> OAuth2App:
    """Apply the given fields. The token endpoint (``tokenUrl``, or the provider whose
    preset it is) is where the client secret is posted, at every sign-in and refresh: moved
    to another host it needs a new client secret (``ClientSecretNeeded``), else whoever may
    change the app could collect the stored one at a server of their choosing; and while
    mailboxes signed in with the app it may not move at all (``TokenHostInUse``): their
    refresh tokens would go there."""
    mail_hosts.check(app.tenant, data)
    before = _token_host(app)
    for api, model in PUBLIC_FIELDS.items():
        if api in data:
            setattr(app, model, data[api])
    if _token_host(app) != before:
        if using := mailboxes_using(app):
            raise TokenHostInUse(using)
        if not data.get("clientSecret"):
            raise ClientSecretNeeded()
    if "clientSecret" in data:
        app.client_secret_sealed = _seal(app.tenant_id, app.app_id, data["clientSecret"])
    app.updated_at = timezone.now()
    if not save_existing(app):  # deleted meanwhile: never brought back
        raise OAuth2AppNotFound(app.app_id)
    return app


def delete_app(app: OAuth2App) -> None:
    """Raises ``OAuth2AppNotFound`` when it was gone already (a concurrent delete came first)."""
    deleted, _ = OAuth2App.objects.filter(pk=app.pk).delete()
    if not deleted:
        raise OAuth2AppNotFound(app.app_id)


def app_of(account: EmailAccount) -> OAuth2App | None:
    """The app ``account`` signed in with (None: a password mailbox, or the app is gone)."""
    app_id = (account.oauth2 or {}).get("app")
    if not app_id:
        return None
    return OAuth2App.objects.filter(tenant_id=account.tenant_id, app_id=app_id).first()


def mailboxes_using(app: OAuth2App) -> int:
    """How many of the tenant's mailboxes signed in with ``app`` (they need a new sign-in
    once it is deleted and their access token expires)."""
    return EmailAccount.objects.filter(tenant_id=app.tenant_id, oauth2__app=app.app_id).count()


def signed_in(app: OAuth2App, user: str, access_token: str | None, refresh_token: str | None,
              expires: datetime | None, scope: str | None = None, imap: dict | None = None,
              smtp: dict | None = None) -> dict:
    """The ``imap``, ``smtp`` and ``oauth2`` of a mailbox signed in with ``app`` as ``user``
    (a connect link's sign-in, or tokens registered through the API): the app's servers
    unless others are given, logged in to as ``user``; the tokens go in ``oauth2``, which the
    services seal when they save it."""
    servers = endpoints(app)
    imap = imap or dict(servers.imap or {})
    smtp = smtp or (dict(servers.smtp) if servers.smtp else None)
    oauth2 = {"app": app.app_id, "provider": app.provider, "scope": scope,
              "expires": expires.isoformat() if expires else None,
              "accessToken": access_token, "refreshToken": refresh_token}
    return {"imap": {**imap, "auth": {"user": user}} if imap else None,
            "smtp": {**smtp, "auth": {"user": user}} if smtp else None, "oauth2": oauth2}


def _token_host(app: OAuth2App) -> str:
    return (urlsplit(endpoints(app).token_url or "").hostname or "").lower()


def endpoints(app: OAuth2App) -> presets.Endpoints:
    return presets.resolve(app.provider, app.authorize_url, app.token_url, app.scopes,
                           app.imap, app.smtp)


def find_app(tenant_id: int, kind: str) -> OAuth2App | None:
    """The app a connect link of ``type`` ``kind`` means: an app id, or a provider name
    (``gmail``, ``outlook``, ``yahoo``: the tenant's first app of that provider)."""
    apps = OAuth2App.objects.filter(tenant_id=tenant_id)
    app = apps.filter(app_id=kind).first()
    if app is None and kind in presets.PRESETS:
        app = apps.filter(provider=kind).order_by("created_at", "id").first()
    return app
