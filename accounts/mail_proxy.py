"""The proxy of a mailbox's connections (EmailEngine's ``proxy``, ``proxyUrl``/``proxyEnabled``):
kept, shown, chosen and opened.

A proxy is chosen as EmailEngine chooses it: the account's own ``proxy`` first; else, while the
tenant's settings have ``proxyEnabled`` and a ``proxyUrl``, the tenant's (``connection_proxy``).
A send's own ``proxy`` wins over both for its send (``mailboxes.sending``); a gateway is reached
without any. ``verifyAccount`` without a ``proxy`` checks through the tenant's
(``tenant_proxy``).

Either URL is kept with its password masked (``socks5://user:******@host:1080``, what GET
shows) and the password sealed apart: an account's with its credentials (``proxy.pass``), the
tenant's on its ``EngineSettings`` row. The masked URL written back keeps the stored password
while it names the same proxy (scheme, host, port), the rule of a webhook URL's password
(``webhooks.subscriptions.url_and_password``); written back for another proxy it is refused
(``ProxyPasswordNeeded``): a password goes to no other server than the one it was given for.
``kept`` is that rule, for both. ``emailapi.lib.tunnels`` speaks to the proxy.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.db.models import F

from accounts import crypto
from accounts.announcements import announce_many
from accounts.credentials import (
    MASK,
    CredentialsUnavailable,
    get_credential,
    master_secrets,
    set_credential,
)
from accounts.errors import InvalidInput, ProxyPasswordNeeded
from accounts.models import EmailAccount
from emailapi.lib import tunnels, userinfo
from emailapi.lib.timestamps import from_row
from webhooks.models import EngineSettings

PASSWORD = "proxy.pass"  # the account's credential's name
TENANT_FIELD = "proxyUrl"  # EmailEngine's settings key


class ProxyUnusable(CredentialsUnavailable):
    """The stored proxy URL cannot be used (one kept before proxies were checked, a password
    sealed with a key no longer configured)."""

    code = "ProxyError"


def checked(url: str, field: str = "proxy") -> tunnels.Proxy:
    """``url`` read as a proxy URL; ``InvalidInput`` naming ``field`` when it is not one."""
    try:
        return tunnels.parse(url)
    except ValueError as exc:
        raise InvalidInput(f"Invalid input: {field}: {exc}", {field: [str(exc)]}) from None


def kept(url: str, stored_url: str | None, stored_password: str | None,
         field: str) -> tuple[str, str | None]:
    """``url`` as a client wrote it, as it is kept: the URL with its password masked, and the
    password to seal (None without one). The mask written back stands for ``stored_password``
    while ``url`` names the proxy of ``stored_url``; otherwise ``ProxyPasswordNeeded`` naming
    ``field``. ``InvalidInput`` naming ``field`` for what is not a proxy URL."""
    given = checked(url, field)
    _, written = userinfo.split(url)
    password = given.password
    if written is not None and written.written_password == MASK:
        if stored_password is None:
            raise ProxyPasswordNeeded(field, moved=False)
        if not stored_url or _where(stored_url) != _where(url):
            raise ProxyPasswordNeeded(field, moved=True)
        password = stored_password
    return userinfo.masked(url, MASK), password


def _where(url: str) -> tuple[str, str, int] | None:
    try:
        proxy = tunnels.parse(url)
    except ValueError:
        return None
    return proxy.scheme, proxy.host.lower(), proxy.port


def _with_password(url: str, password, whose: str) -> tunnels.Proxy:
    """The kept (masked) ``url`` as a ``Proxy``, its password put back: ``password()`` opens
    the sealed one (asked only when the URL has one)."""
    try:
        proxy = tunnels.parse(url)
    except ValueError as exc:
        raise ProxyUnusable(f"{whose} cannot be used: {exc}") from None
    if proxy.password is None:
        return proxy
    try:
        opened = password()
    except crypto.DecryptionError:
        raise ProxyUnusable(f"{whose}'s password cannot be opened (sealed with a key that is "
                            f"no longer configured)") from None
    # None: kept masked before passwords were sealed
    return replace(proxy, password=opened or "")


# --- The account's own proxy (``proxy``) ---------------------------------------------------

def set_account_proxy(account: EmailAccount, url: str | None) -> bool:
    """Keep ``url`` as the account's proxy (None or "": none) on ``account`` (saved, so its
    credential can be written; ``ee_options`` is left for the caller to save). True when the
    proxy its connections use changed."""
    options = dict(account.ee_options or {})
    before = (options.get("proxy"), get_credential(account, PASSWORD))
    if not url:
        if url is None:
            options.pop("proxy", None)
        else:
            options["proxy"] = ""
        set_credential(account, PASSWORD, None)
        account.ee_options = options
        return bool(before[0])
    shown, password = kept(url, *before, "proxy")
    options["proxy"] = shown
    account.ee_options = options
    set_credential(account, PASSWORD, password)
    return before != (shown, password)


def check_account_proxy(account: EmailAccount, url: str | None) -> None:
    """Raise what ``set_account_proxy`` would for ``url`` (not a proxy URL, a masked password
    for another proxy), changing nothing: a refusal of the URL itself comes before one of
    the change it makes (``accounts.secret_routes``)."""
    if url:
        stored = (account.ee_options or {}).get("proxy") or None
        kept(url, stored, get_credential(account, PASSWORD) if stored else None, "proxy")


def account_proxy(account: EmailAccount) -> tunnels.Proxy | None:
    """The account's own proxy, its password opened; None for none. ``ProxyUnusable`` (a
    ``CredentialsUnavailable``) for a stored URL that is not a proxy URL: connecting without
    the proxy the tenant asked for is not an option."""
    url = (account.ee_options or {}).get("proxy")
    if not url:
        return None
    return _with_password(url, lambda: get_credential(account, PASSWORD), "The account's proxy")


# --- The tenant's proxy (settings ``proxyUrl`` / ``proxyEnabled``) ----------------------------

def _tenant_context(tenant_id: int) -> str:
    return f"tenant:{tenant_id}/engine-settings/proxy-password"


def _tenant_password(tenant_id: int, sealed: str) -> str | None:
    return crypto.open_secret(sealed, _tenant_context(tenant_id), master_secrets()) \
        if sealed else None


def set_tenant_proxy(row: EngineSettings, url: str | None) -> bool:
    """Keep ``url`` as the tenant's ``proxyUrl`` on its settings ``row`` (None or "": none;
    the caller saves the row). True when the proxy it names, or its password, changed."""
    before = (row.proxy_url, _tenant_password(row.tenant_id, row.sealed_proxy_password))
    if not url:
        row.proxy_url, row.sealed_proxy_password = "", ""
        return bool(before[0])
    shown, password = kept(url, *before, TENANT_FIELD)
    row.proxy_url = shown
    row.sealed_proxy_password = "" if password is None else crypto.seal(
        password, _tenant_context(row.tenant_id), settings.EMAILAPI_SECRET)
    return before != (shown, password)


def _tenant_row(tenant_id: int) -> tuple[str, str, datetime | None] | None:
    """The tenant's enabled proxy as kept (masked URL, sealed password, when its route was
    set): one read."""
    return EngineSettings.objects.filter(tenant_id=tenant_id, proxy_enabled=True) \
        .exclude(proxy_url="").values_list("proxy_url", "sealed_proxy_password",
                                           "proxy_route_set_at").first()


_UNREAD = object()


def tenant_proxy(tenant_id: int, found=_UNREAD) -> tunnels.Proxy | None:
    """The tenant's proxy while ``proxyEnabled`` (None otherwise), its password opened;
    ``ProxyUnusable`` when it cannot be used. ``found``: its kept row (``_tenant_row``) or
    None, when the caller read it already (``EmailAccount.for_session``)."""
    if found is _UNREAD:
        found = _tenant_row(tenant_id)
    if found is None:
        return None
    url, sealed = found[:2]
    return _with_password(url, lambda: _tenant_password(tenant_id, sealed),
                          "The tenant's proxy (proxyUrl)")


def _tenant_row_of(account: EmailAccount) -> tuple[str, str, datetime | None] | None:
    """The tenant's enabled proxy as kept, for this account: read with its row by the worker
    (``EmailAccount.for_session``), else read once and kept on the instance, so a send that
    reports its proxy (``shown_connection_proxy``) and connects through it
    (``connection_proxy``) asks once."""
    found = getattr(account, "tenant_proxy_row", _UNREAD)
    if found is _UNREAD:
        found = account.tenant_proxy_row = _tenant_row(account.tenant_id)
    return found


def _has_own(account: EmailAccount) -> bool:
    return bool((account.ee_options or {}).get("proxy"))


def connection_proxy(account: EmailAccount) -> tunnels.Proxy | None:
    """The proxy the account's IMAP connections and SMTP sends go through: its own, else the
    tenant's while enabled (for an account without one of its own: ``_tenant_row_of``);
    None: direct."""
    if _has_own(account):
        return account_proxy(account)
    return tenant_proxy(account.tenant_id, _tenant_row_of(account))


NOT_THE_TENANTS = object()


def tenant_route_set_at(account: EmailAccount):
    """When the tenant's proxy the account's connections go through was set (None: not
    known); ``NOT_THE_TENANTS`` when they go through the account's own proxy or none."""
    if _has_own(account):
        return NOT_THE_TENANTS
    found = _tenant_row_of(account)
    return NOT_THE_TENANTS if found is None else from_row(found[2])


def moves(url: str | None, stored: str | None) -> bool:
    """Whether ``url`` (a new account proxy; None or "": none) names another proxy than
    ``stored`` (scheme, host, port): a route a stored secret was not given for. Taking the
    proxy away is no move; what is no proxy URL is not one either (refused as such later)."""
    if not url:
        return False
    where = _where(url)
    return where is not None and (not stored or _where(stored) != where)


def connection_proxy_after(account: EmailAccount, url: str | None) -> tunnels.Proxy | None:
    """``connection_proxy`` once the account's own proxy is ``url`` ("" or None: none), before
    it is saved (a form tests the connection first): a masked password stands for the stored
    one on the same proxy only (``kept``, naming ``proxy``)."""
    if not url:
        return tenant_proxy(account.tenant_id)
    stored = (account.ee_options or {}).get("proxy") or None
    _, password = kept(url, stored, get_credential(account, PASSWORD) if stored else None,
                       "proxy")
    proxy = checked(url)
    return replace(proxy, password=password if proxy.user is not None else None)


def shown_connection_proxy(account: EmailAccount) -> str:
    """``connection_proxy``'s URL as shown (password masked; "" for none): what a send's
    ``networkRouting`` names."""
    if _has_own(account):
        return account.ee_options["proxy"]
    found = _tenant_row_of(account)
    return found[0] if found else ""


def reroute_accounts_without_own(tenant_id: int) -> int:
    """The tenant's proxy changed: its accounts that have no proxy of their own connect
    afresh, through the new route (``config_version`` bumped: the worker and the command
    pool reconnect an account whose version moved; announced so the worker does it now).
    Returns how many."""
    rows = [(pk, account_id) for pk, account_id, own in EmailAccount.objects
            .filter(tenant_id=tenant_id).values_list("pk", "account_id", "ee_options__proxy")
            if not own]
    EmailAccount.objects.filter(pk__in=[pk for pk, _ in rows]) \
        .update(config_version=F("config_version") + 1)
    announce_many((EmailAccount(pk=pk, tenant_id=tenant_id, account_id=account_id)
                   for pk, account_id in rows), "updated")
    return len(rows)
