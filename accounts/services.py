"""Use-cases for tenants, tokens and registered mailboxes, shared by the API, the dashboard and
the management commands. Views validate input and call these; these own the transactions.

Secrets enter here in clear and leave sealed (``accounts.crypto``): ``set_credential`` is the
only writer of ``Credential`` rows and ``get_credential`` the only reader.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import crypto, mail_hosts, plans, state, token_cache, tokens
from accounts.models import ApiToken, Credential, EmailAccount, Tenant
from emailapi.api.errors import ConflictError
from emailapi.redis import get_redis
from mailboxes.imap.client import ImapSettings
from mailboxes.smtp import SmtpSettings
from webhooks import events

logger = logging.getLogger(__name__)



def account_changes_channel() -> str:
    """Redis pub/sub channels ignore the database number, so the name carries a prefix that
    separates deployments (and test runs) sharing one Redis."""
    return f"{settings.EMAILAPI_REDIS_PREFIX}:account-changes"
SECRET_FIELDS = ("pass", "accessToken")


# --- tenants and tokens -------------------------------------------------------------------


def create_tenant(name: str, status: str = Tenant.Status.ACTIVE) -> Tenant:
    base = slugify(name)[:48] or "tenant"
    slug = base
    while Tenant.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return Tenant.objects.create(name=name, slug=slug, status=status)


def issue_token(tenant: Tenant, name: str, scopes: list[str], created_by=None) -> tuple[ApiToken, str]:
    """Create a token; return the row and the token text, which is never retrievable again."""
    scopes = tokens.parse_scopes(scopes)
    raw = tokens.generate()
    token = ApiToken.objects.create(
        tenant=tenant,
        name=name,
        scopes=scopes,
        token_hash=tokens.hash_token(raw),
        prefix=tokens.display_prefix(raw),
        created_by=created_by,
    )
    return token, raw


def revoke_token(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token_cache.forget(token.token_hash)


# --- credentials --------------------------------------------------------------------------


def _context(account: EmailAccount, name: str) -> str:
    return f"tenant:{account.tenant_id}/account:{account.pk}/{name}"


def _master_secrets() -> list[str]:
    return [settings.EMAILAPI_SECRET, *getattr(settings, "EMAILAPI_OLD_SECRETS", [])]


def set_credential(account: EmailAccount, name: str, value: str | None) -> None:
    if value is None:
        Credential.objects.filter(email_account=account, name=name).delete()
        return
    sealed = crypto.seal(value, _context(account, name), settings.EMAILAPI_SECRET)
    Credential.objects.update_or_create(
        email_account=account, name=name, defaults={"sealed": sealed, "updated_at": timezone.now()}
    )


def get_credential(account: EmailAccount, name: str) -> str | None:
    row = Credential.objects.filter(email_account=account, name=name).first()
    if row is None:
        return None
    return crypto.open_secret(row.sealed, _context(account, name), _master_secrets())


# --- registered mailboxes -----------------------------------------------------------------


def _split_secrets(section: dict | None) -> tuple[dict | None, dict[str, str]]:
    """Separate ``auth.pass``/``auth.accessToken`` from the storable settings of a section."""
    if section is None:
        return None, {}
    public = json.loads(json.dumps(section))  # deep copy of plain JSON data
    auth = public.get("auth") or {}
    found = {key: auth.pop(key) for key in SECRET_FIELDS if key in auth}
    if "auth" in public:
        public["auth"] = auth
    return public, found


def _store_secrets(account: EmailAccount, prefix: str, found: dict[str, str]) -> None:
    for key, value in found.items():
        set_credential(account, f"{prefix}.{key}", value)


OAUTH2_SECRETS = ("accessToken", "refreshToken")


def _store_oauth2(account: EmailAccount, oauth2: dict | None) -> None:
    """Keep an OAuth2 sign-in: tokens sealed as ``oauth2.*`` credentials, the rest (app,
    expiry, scope) on the account; ``None`` leaves the account as it is."""
    if oauth2 is None:
        return
    account.oauth2 = {k: v for k, v in oauth2.items() if k not in OAUTH2_SECRETS}
    account.save(update_fields=["oauth2"])
    for key in OAUTH2_SECRETS:
        set_credential(account, f"oauth2.{key}", oauth2.get(key))


def new_account_id() -> str:
    return secrets.token_hex(8)


def register_account(tenant: Tenant, data: dict[str, Any]) -> EmailAccount:
    """Create a mailbox with its sealed credentials and record ``accountAdded``, atomically.
    Hosts on internal addresses are refused (``mail_hosts``)."""
    mail_hosts.check(tenant, data)
    imap, imap_secrets = _split_secrets(data.get("imap"))
    smtp, smtp_secrets = _split_secrets(data.get("smtp"))
    account_id = data.get("account") or new_account_id()
    try:
        with transaction.atomic():
            plans.lock_for_new_mailbox(tenant)  # 403 PlanLimit over the plan's mailboxes
            account = EmailAccount.objects.create(
                tenant=tenant,
                account=account_id,
                name=data.get("name") or "",
                email=data.get("email") or "",
                imap=imap,
                smtp=smtp,
                watch_folders=list(data.get("watchFolders") or []),
                copy=data.get("copy", True),
            )
            _store_secrets(account, "imap", imap_secrets)
            _store_secrets(account, "smtp", smtp_secrets)
            _store_oauth2(account, data.get("oauth2"))
            events.record(tenant, events.ACCOUNT_ADDED, account.account, {
                "account": account.account, "name": account.name, "email": account.email,
            })
    except IntegrityError:
        raise ConflictError(f"Account {account_id!r} already exists") from None
    _announce(account, "added")
    return account


def _merge(stored: dict | None, update: dict) -> dict:
    merged = dict(stored or {})
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def update_account(account: EmailAccount, data: dict[str, Any]) -> EmailAccount:
    """Apply a partial update; changed settings or secrets bump ``config_version``. A new
    host on an internal address is refused (``mail_hosts``)."""
    mail_hosts.check(account.tenant, data)
    changed_connection = False
    with transaction.atomic():
        account = EmailAccount.objects.select_for_update().get(pk=account.pk)
        for field in ("name", "email"):
            if field in data:
                setattr(account, field, data[field] or "")
        if "copy" in data:
            account.copy = data["copy"]
        for section in ("imap", "smtp"):
            if section not in data:
                continue
            public, found = _split_secrets(data[section])
            if public is None:
                setattr(account, section, None)
                Credential.objects.filter(
                    email_account=account, name__startswith=f"{section}."
                ).delete()
            else:
                setattr(account, section, _merge(getattr(account, section), public))
                _store_secrets(account, section, found)
            changed_connection = True
        if "oauth2" in data:  # a new sign-in (connect link): new tokens, flags cleared
            _store_oauth2(account, data["oauth2"])
            changed_connection = True
        if "watchFolders" in data and list(data["watchFolders"]) != account.watch_folders:
            account.watch_folders = list(data["watchFolders"])
            changed_connection = True  # the worker re-enters IDLE on the new folder
        if changed_connection:
            account.config_version += 1
        account.updated_at = timezone.now()
        account.save()
    if changed_connection:
        _announce(account, "updated")
    return account


def delete_account(account: EmailAccount, revoke: bool = False) -> None:
    """Remove the mailbox and everything indexed for it; record ``accountDeleted``.

    ``revoke``: first revoke an OAuth2 mailbox's grant at its provider (best effort, see
    ``accounts.oauth2.revoke``); it must come first, as the delete takes the tokens with it."""
    if revoke and account.oauth2:
        from accounts.oauth2 import revoke as oauth2_revoke

        oauth2_revoke.revoke_grant(account)
    pk = account.pk
    with transaction.atomic():
        events.record(account.tenant, events.ACCOUNT_DELETED, account.account,
                      {"account": account.account})
        account.delete()
    account.pk = pk  # Django clears it on delete; the announcement still names the row
    _announce(account, "deleted")


def request_reconnect(account: EmailAccount) -> None:
    """Ask the worker holding the account to drop its connection and connect afresh."""
    _announce(account, "reconnect")


def pause_account(account: EmailAccount) -> EmailAccount:
    """Stop syncing: the worker logs out and no worker claims the account until resumed."""
    state.pause(account)
    _announce(account, "paused")
    return account


def resume_account(account: EmailAccount) -> EmailAccount:
    state.resume(account)
    _announce(account, "resumed")
    return account


def announce(account: EmailAccount, action: str) -> None:
    """Public name for other services (``accounts.plans``) that pause or resume mailboxes."""
    _announce(account, action)


def _announce(account: EmailAccount, action: str) -> None:
    """Tell IMAP workers at once (they also poll the database, so a lost message is harmless)."""
    message = json.dumps({"tenant": account.tenant_id, "account": account.account,
                          "id": account.pk, "action": action})

    def publish() -> None:
        try:
            get_redis().publish(account_changes_channel(), message)
        except Exception as exc:  # noqa: BLE001 - Redis is a hint here, not the record
            logger.warning("could not announce account change: %s", exc)

    transaction.on_commit(publish)


# --- connection settings for the protocol layer ---------------------------------------------


def imap_settings_from(section: dict, password: str | None = None,
                       access_token: str | None = None, *, tenant: Tenant | None = None) \
        -> ImapSettings:
    """``section`` as the protocol layer's settings; ``tenant`` decides whether its host may
    be on an internal address (``mail_hosts``: without one, only the deployment's setting)."""
    auth = section.get("auth") or {}
    return ImapSettings(
        host=section["host"],
        port=int(section["port"]),
        secure=bool(section.get("secure", False)),
        user=auth.get("user") or "",
        password=password if password is not None else auth.get("pass"),
        access_token=access_token if access_token is not None else auth.get("accessToken"),
        tls_verify=bool((section.get("tls") or {}).get("rejectUnauthorized", True)),
        timeout=float(settings.EMAILAPI_VERIFY_TIMEOUT),
        allow_private=mail_hosts.allows_private(tenant),
        connect_timeout=float(settings.IMAP_CONNECT_TIMEOUT),
        greeting_timeout=float(settings.IMAP_GREETING_TIMEOUT),
        tls_timeout=float(settings.IMAP_TLS_TIMEOUT),
        login_timeout=float(settings.IMAP_LOGIN_TIMEOUT),
    )


def smtp_settings_from(section: dict, password: str | None = None,
                       access_token: str | None = None, *, tenant: Tenant | None = None) \
        -> SmtpSettings:
    auth = section.get("auth") or {}
    return SmtpSettings(
        host=section["host"],
        port=int(section["port"]),
        secure=bool(section.get("secure", False)),
        user=auth.get("user") or None,
        password=password if password is not None else auth.get("pass"),
        access_token=access_token if access_token is not None else auth.get("accessToken"),
        tls_verify=bool((section.get("tls") or {}).get("rejectUnauthorized", True)),
        timeout=float(settings.EMAILAPI_VERIFY_TIMEOUT),
        allow_private=mail_hosts.allows_private(tenant),
    )


def account_imap_settings(account: EmailAccount,
                          force_refresh: bool = False) -> ImapSettings | None:
    """The account's IMAP settings with its secrets opened, for a worker or a service. An
    OAuth2 mailbox gets a live access token (refreshed first if it is about to expire; raises
    ``accounts.oauth2.refresh.TokenError`` when none can be had)."""
    if not account.imap:
        return None
    if account.oauth2:
        return imap_settings_from(account.imap, None, _oauth2_token(account, force_refresh),
                                  tenant=account.tenant)
    return imap_settings_from(account.imap, get_credential(account, "imap.pass"),
                              get_credential(account, "imap.accessToken"), tenant=account.tenant)


def account_smtp_settings(account: EmailAccount,
                          force_refresh: bool = False) -> SmtpSettings | None:
    if not account.smtp:
        return None
    if account.oauth2:
        return smtp_settings_from(account.smtp, None, _oauth2_token(account, force_refresh),
                                  tenant=account.tenant)
    return smtp_settings_from(account.smtp, get_credential(account, "smtp.pass"),
                              get_credential(account, "smtp.accessToken"), tenant=account.tenant)


def _oauth2_token(account: EmailAccount, force: bool) -> str:
    from accounts.oauth2 import refresh  # it uses this module's credential functions

    return refresh.access_token(account, force=force)
