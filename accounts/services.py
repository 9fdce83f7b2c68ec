"""Use-cases for tenants, tokens and registered mailboxes, shared by the API, the dashboard and
the management commands. Views validate input and call these; these own the transactions.

Secrets are stored through ``accounts.credentials``; workers hear of changes through
``accounts.announcements``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import identity, mail_hosts, mail_proxy, plans, state, token_cache, tokens
from accounts.announcements import announce
from accounts.credentials import MASK, set_credential, without_password
from accounts.errors import (
    AccountNotFound,
    AlreadyExists,
    IncompleteServer,
    UnknownOAuth2App,
)
from accounts.models import ApiToken, Credential, EmailAccount, Tenant
from accounts.oauth2 import registered_apps
from accounts.oauth2 import revoke as oauth2_revoke
from accounts.secret_routes import SECRET_FIELDS, check_secrets_stay
from webhooks import events

# --- tenants and tokens -------------------------------------------------------------------


def create_tenant(name: str, status: str = Tenant.Status.ACTIVE) -> Tenant:
    """A tenant with a free slug from its name. Another tenant of the same name created at
    the same moment (a sign-up sent twice) takes the slug between our look and our insert:
    the insert is tried in a savepoint and, refused, with another suffix."""
    base = slugify(name)[:48] or "tenant"
    slug = base
    for _ in range(10):
        if not Tenant.objects.filter(slug=slug).exists():
            try:
                with transaction.atomic():
                    return Tenant.objects.create(name=name, slug=slug, status=status)
            except IntegrityError:
                pass  # taken meanwhile
        slug = f"{base}-{secrets.token_hex(3)}"
    raise AssertionError("no free slug in ten tries")


def issue_token(tenant: Tenant, name: str, scopes: list[str], created_by=None,
                account_id: str = "", metadata: str = "",
                expires_at=None) -> tuple[ApiToken, str]:
    """Create a token; return the row and the token text, which is never retrievable again.
    ``account_id``: EmailEngine's account token, good only for that account's routes;
    ``expires_at``: the moment it stops working (None: never)."""
    scopes = tokens.parse_scopes(scopes)
    raw = tokens.generate()
    token = ApiToken.objects.create(
        tenant=tenant,
        name=name,
        scopes=scopes,
        token_hash=tokens.hash_token(raw),
        prefix=tokens.display_prefix(raw),
        created_by=created_by,
        account_id=account_id,
        metadata=metadata,
        expires_at=expires_at,
    )
    return token, raw


def revoke_token(token: ApiToken) -> bool:
    """False when it was revoked already (a concurrent revocation came first): of two
    revocations at once, one is the revocation and the other finds nothing to revoke."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True) \
        .update(revoked_at=timezone.now())
    token_cache.forget(token.token_hash)
    return bool(revoked)


# --- registered mailboxes -----------------------------------------------------------------


def _split_secrets(section: dict | None) -> tuple[dict | None, dict[str, str]]:
    """Separate ``auth.pass``/``auth.accessToken`` from the storable settings of a section."""
    if section is None:
        return None, {}
    public = json.loads(json.dumps(section))  # deep copy of plain JSON data
    auth = public.get("auth") or {}
    found = {key: auth.pop(key) for key in SECRET_FIELDS if key in auth}
    # A client writing back what GET showed ("******", EmailEngine's mask) keeps the secret.
    found = {key: value for key, value in found.items() if value != MASK}
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


# EmailEngine's fields kept in ``EmailAccount.ee_options`` (``proxy`` is used: ``mail_proxy``;
# ``locale`` and ``tz`` by quoted dates; the others accepted and echoed).
EE_OPTIONS = ("subconnections", "imapIndexer", "locale", "tz", "proxy", "smtpEhloName")


def _apply_emailengine_fields(account: EmailAccount, data: dict[str, Any]) -> bool:
    """Set EmailEngine's account fields given in ``data`` on ``account`` (unsaved); True when
    the worker must hear of it (the folder kept in IDLE changed)."""
    changed_connection = False
    if "path" in data:
        path = data["path"]
        account.path = list(path) if path else None  # None: every folder ("*")
        if "watchFolders" not in data:
            wanted = account.path[:1] if account.path else []
            changed_connection = wanted != list(account.watch_folders or [])
            account.watch_folders = wanted
    if "logs" in data and bool(data["logs"]) != bool(account.logs):
        changed_connection = True  # the protocol log is tapped when a connection opens
    for field, attr in (("notifyFrom", "notify_from"), ("syncFrom", "sync_from"),
                        ("logs", "logs")):
        if field in data:
            setattr(account, attr, data[field])
    if "webhooks" in data:  # its password lives sealed in the subscription made from it
        account.webhooks = without_password(data["webhooks"] or "")
    options = dict(account.ee_options or {})
    if "expectedEmail" in data:
        pinned = identity.normalize(data["expectedEmail"])
        if pinned:
            options["expectedEmail"] = pinned
        else:
            options.pop("expectedEmail", None)
    for key in EE_OPTIONS:
        if key in data and key != "proxy":  # the proxy: mail_proxy.set_account_proxy, once saved
            if data[key] is None:
                options.pop(key, None)
            else:
                options[key] = data[key]
    account.ee_options = options
    return changed_connection


def new_account_id() -> str:
    return secrets.token_hex(8)


def register_or_update_account(tenant: Tenant, data: dict[str, Any]) -> tuple[EmailAccount, str]:
    """EmailEngine's upsert: register the mailbox, or, when the tenant already has one with
    this id, update it with the given fields (``update_account``; with new OAuth2 tokens, the
    sign-in is replaced: ``replace_sign_in``). Returns the account and ``"new"`` or
    ``"existing"``."""
    account_id = data.get("account")
    change = replace_sign_in if data.get("oauth2") else update_account
    if account_id:
        existing = EmailAccount.of_tenant(tenant, account_id)
        if existing is not None:
            return change(existing, data), "existing"
    try:
        return register_account(tenant, data), "new"
    except AlreadyExists:  # registered by a concurrent request meanwhile
        existing = EmailAccount.of_tenant(tenant, account_id)
        if existing is None:
            raise
        return change(existing, data), "existing"


@transaction.atomic
def replace_sign_in(account: EmailAccount, data: dict) -> EmailAccount:
    """Replace an existing account's sign-in (a connect link used again, OAuth2 tokens
    registered again): old secrets of the other kind go, the servers are replaced rather than
    merged into the old ones, and a ``reauthRequired`` flag goes (the new tokens come without
    it). ``data["oauth2"]`` None: a password sign-in."""
    for name in ("imap.pass", "imap.accessToken", "smtp.pass", "smtp.accessToken",
                 "oauth2.accessToken", "oauth2.refreshToken"):
        set_credential(account, name, None)
    if data.get("oauth2") is None:
        EmailAccount.objects.filter(pk=account.pk).update(oauth2=None)
        account.oauth2 = None
        data = {k: v for k, v in data.items() if k != "oauth2"}
    account.imap = account.smtp = None
    EmailAccount.objects.filter(pk=account.pk).update(imap=None, smtp=None)
    return update_account(account, data)


def with_oauth2_app(tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    """EmailEngine's OAuth2 registration (``oauth2: {provider, auth: {user}, accessToken,
    refreshToken, expires}``, tokens the caller obtained itself) as the data a connect link's
    sign-in saves: ``provider`` names one of the tenant's OAuth2 apps (its id, or ``gmail``,
    ``outlook``, ``yahoo`` for the first app of that provider), whose servers become the
    account's ``imap`` and ``smtp`` unless given, signed in as ``auth.user``. Data without
    ``oauth2`` is returned as it is. Raises ``OAuth2AppNotFound``."""
    oauth2 = data.get("oauth2")
    if not oauth2:
        return data
    app = registered_apps.find_app(tenant.pk, oauth2["provider"])
    if app is None:
        raise UnknownOAuth2App(oauth2["provider"], "oauth2.provider")
    user = oauth2["auth"]["user"]
    signed = registered_apps.signed_in(app, user, oauth2.get("accessToken"),
                                       oauth2.get("refreshToken"), oauth2.get("expires"),
                                       imap=data.get("imap"), smtp=data.get("smtp"))
    if oauth2.get("useAuthServer"):  # its tokens come from the authentication server
        signed["oauth2"]["useAuthServer"] = True
    if not signed["imap"]:
        raise IncompleteServer("imap", ["host", "port"], "the OAuth2 app names no IMAP server")
    return {**data, "email": data.get("email") or user, **signed}


def _imap_disabled(data: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """EmailEngine's ``imap.disabled`` is our pause under its name (no worker connects, SMTP
    still sends): taken out of the IMAP settings it came in, as True, False or None (not
    given), with the data left without it (and without an ``imap`` it alone made up)."""
    imap = data.get("imap")
    if not isinstance(imap, dict) or "disabled" not in imap:
        return data, None
    rest = {key: value for key, value in imap.items() if key != "disabled"}
    kept = {key: value for key, value in data.items() if key != "imap"}
    return ({**kept, "imap": rest} if rest else kept), bool(imap["disabled"])


def register_account(tenant: Tenant, data: dict[str, Any]) -> EmailAccount:
    """Create a mailbox with its sealed credentials and record ``accountAdded``, atomically.
    Hosts on internal addresses are refused (``mail_hosts``); a taken id is AlreadyExists."""
    data, disabled = _imap_disabled(data)
    mail_hosts.check(tenant, data)
    imap, imap_secrets = _split_secrets(data.get("imap"))
    smtp, smtp_secrets = _split_secrets(data.get("smtp"))
    account_id = data.get("account") or new_account_id()
    try:
        with transaction.atomic():
            plans.lock_for_new_mailbox(tenant)  # 403 PlanLimit over the plan's mailboxes
            account = EmailAccount(
                tenant=tenant,
                account_id=account_id,
                name=data.get("name") or "",
                email=data.get("email") or "",
                imap=imap,
                smtp=smtp,
                watch_folders=list(data.get("watchFolders") or []),
                copy=data.get("copy", True),
                paused=bool(disabled),
                state=EmailAccount.State.PAUSED if disabled else
                EmailAccount.State.INIT if imap is not None else EmailAccount.State.UNSET,
            )
            _apply_emailengine_fields(account, data)
            account.save(force_insert=True)
            if "proxy" in data:  # its password sealed with the credentials (a saved row's)
                mail_proxy.set_account_proxy(account, data["proxy"])
                account.save(update_fields=["ee_options"])
            _store_secrets(account, "imap", imap_secrets)
            _store_secrets(account, "smtp", smtp_secrets)
            _store_oauth2(account, data.get("oauth2"))
            events.record(tenant, events.ACCOUNT_ADDED, account.account_id, {
                "account": account.account_id, "name": account.name, "email": account.email,
            })
    except IntegrityError:
        raise AlreadyExists(f"Account {account_id!r} already exists") from None
    announce(account, "added")
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
    host on an internal address is refused (``mail_hosts``). ``imap.disabled`` pauses or
    resumes the account, after the rest is saved."""
    data, disabled = _imap_disabled(data)
    account = _update_settings(account, data)
    if disabled is True and not account.paused:
        pause_account(account)
    elif disabled is False and account.paused:
        resume_account(account)
    return account


def _update_settings(account: EmailAccount, data: dict[str, Any]) -> EmailAccount:
    mail_hosts.check(account.tenant, data)
    changed_connection = False
    with transaction.atomic():
        locked = EmailAccount.objects.select_for_update().filter(pk=account.pk).first()
        if locked is None:  # deleted meanwhile
            raise AccountNotFound(account.account_id)
        account = locked
        for field in ("name", "email"):
            if field in data:
                setattr(account, field, data[field] or "")
        if "copy" in data:
            account.copy = data["copy"]
        if "proxy" in data:
            mail_proxy.check_account_proxy(account, data["proxy"])
        for section in ("imap", "smtp"):  # a new host, proxy or weaker TLS: a new secret
            check_secrets_stay(account, section, data)
        for section in ("imap", "smtp"):
            if section not in data:
                continue
            public, found = _split_secrets(data[section])
            if section == "imap":
                _follow_imap_presence(account, public is not None)
            if public is None:
                setattr(account, section, None)
                Credential.objects.filter(
                    email_account=account, name__startswith=f"{section}."
                ).delete()
            else:
                merged = _merge(getattr(account, section), public)
                missing = [key for key in ("host", "port") if key not in merged]
                if missing:  # a partial change of a server the account does not have
                    raise IncompleteServer(section, missing)
                setattr(account, section, merged)
                _store_secrets(account, section, found)
            changed_connection = True
        if "oauth2" in data:  # a new sign-in (connect link): new tokens, flags cleared
            _store_oauth2(account, data["oauth2"])
            changed_connection = True
        if _apply_emailengine_fields(account, data):
            changed_connection = True  # the worker re-enters IDLE on the new folder
        if "proxy" in data and mail_proxy.set_account_proxy(account, data["proxy"]):
            changed_connection = True  # the worker's connections go through the new proxy
        if "watchFolders" in data and list(data["watchFolders"]) != account.watch_folders:
            account.watch_folders = list(data["watchFolders"])
            changed_connection = True  # the worker re-enters IDLE on the new folder
        if changed_connection:
            account.config_version += 1
        account.updated_at = timezone.now()
        account.save()
    if changed_connection:
        announce(account, "updated")
    return account


def _follow_imap_presence(account: EmailAccount, has_imap: bool) -> None:
    """A send-only account (EmailEngine's ``imap: false``) is ``unset``: no worker holds it
    (``mailboxes.worker.eligible``). Given IMAP again it starts over at ``init`` for a worker
    to claim; a paused one stays paused."""
    state = EmailAccount.State
    if not has_imap and account.state != state.UNSET:
        account.state, account.state_changed_at = state.UNSET, timezone.now()
        account.last_error = None
    elif has_imap and account.state == state.UNSET:
        account.state = state.PAUSED if account.paused else state.INIT
        account.state_changed_at = timezone.now()


def delete_account(account: EmailAccount, revoke: bool = False,
                   along: Callable[[EmailAccount], None] | None = None) -> None:
    """Remove the mailbox and everything indexed for it; record ``accountDeleted``.

    The row is locked first: a concurrent delete, update or send either finished before
    (a second delete is AccountNotFound and records nothing) or waits and then finds the
    account gone. ``along(account)`` runs in the same transaction, on the locked row (the
    webhooks layer drops the account's own subscription there: ``account_webhooks``).
    ``revoke``: first revoke an OAuth2 mailbox's grant at its provider (best effort, see
    ``accounts.oauth2.revoke``); it must come first, as the delete takes the tokens with it."""
    if revoke and account.oauth2:
        oauth2_revoke.revoke_grant(account)
    pk = account.pk
    with transaction.atomic():
        locked = EmailAccount.objects.select_for_update().filter(pk=pk).first()
        if locked is None:
            raise AccountNotFound(account.account_id)
        if along is not None:
            along(locked)
        events.record(account.tenant, events.ACCOUNT_DELETED, account.account_id,
                      {"account": account.account_id})
        revoked = _revoke_account_tokens(locked)
        locked.delete()
    for token_hash in revoked:
        token_cache.forget(token_hash)
    account.pk = pk  # the announcement names the row
    announce(account, "deleted")


def _revoke_account_tokens(account: EmailAccount) -> list[str]:
    """The account's own API tokens (EmailEngine's, made with ``account``) go with it: kept,
    they would open the next account registered under the same id. Returns their hashes."""
    tokens_ = ApiToken.objects.filter(tenant_id=account.tenant_id, account_id=account.account_id,
                                      revoked_at__isnull=True)
    hashes = list(tokens_.values_list("token_hash", flat=True))
    tokens_.update(revoked_at=timezone.now())
    return hashes


def request_reconnect(account: EmailAccount) -> None:
    """Ask the worker holding the account to drop its connection and connect afresh."""
    announce(account, "reconnect")


def request_sync(account: EmailAccount) -> None:
    """Ask the worker holding the account to look at every folder now (EmailEngine's
    ``PUT .../sync``) rather than at its next poll."""
    announce(account, "sync")


def pause_account(account: EmailAccount) -> EmailAccount:
    """Stop syncing: the worker logs out and no worker claims the account until resumed."""
    state.pause(account)
    announce(account, "paused")
    return account


def resume_account(account: EmailAccount) -> EmailAccount:
    state.resume(account)
    announce(account, "resumed")
    return account
