"""An account's proxy (EmailEngine's ``proxy``): kept, shown, and opened for its connections.

The URL is kept in ``EmailAccount.ee_options["proxy"]`` with its password masked
(``socks5://user:******@host:1080``, what GET shows) and the password sealed apart with the
account's credentials (``proxy.pass``). The masked URL written back keeps the stored password
while it names the same proxy (scheme, host, port), the rule of a webhook URL's password
(``webhooks.subscriptions.url_and_password``); written back for another proxy it is refused
(``ProxyPasswordNeeded``): a password goes to no other server than the one it was given for.

``account_proxy`` is what the account's IMAP and SMTP connections go through
(``mailboxes.connection_settings``); ``emailapi.lib.tunnels`` speaks to the proxy.
"""

from __future__ import annotations

from accounts.credentials import MASK, CredentialsUnavailable, get_credential, set_credential
from accounts.errors import InvalidInput, ProxyPasswordNeeded
from accounts.models import EmailAccount
from emailapi.lib import tunnels, userinfo

PASSWORD = "proxy.pass"  # the credential's name


class ProxyUnusable(CredentialsUnavailable):
    """The stored proxy URL cannot be used (one kept before proxies were checked)."""

    code = "ProxyError"


def checked(url: str, field: str = "proxy") -> tunnels.Proxy:
    """``url`` read as a proxy URL; ``InvalidInput`` naming ``field`` when it is not one."""
    try:
        return tunnels.parse(url)
    except ValueError as exc:
        raise InvalidInput(f"Invalid input: {field}: {exc}", {field: [str(exc)]}) from None


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
    given = checked(url)
    _, written = userinfo.split(url)
    password = given.password
    if written is not None and written.written_password == MASK:
        stored_url, stored_password = before
        if stored_password is None:
            raise ProxyPasswordNeeded("proxy", moved=False)
        if not stored_url or _where(stored_url) != _where(url):
            raise ProxyPasswordNeeded("proxy", moved=True)
        password = stored_password
    shown = userinfo.masked(url, MASK)
    options["proxy"] = shown
    account.ee_options = options
    set_credential(account, PASSWORD, password)
    return before != (shown, password)


def _where(url: str) -> tuple[str, str, int] | None:
    try:
        proxy = tunnels.parse(url)
    except ValueError:
        return None
    return proxy.scheme, proxy.host.lower(), proxy.port


def account_proxy(account: EmailAccount) -> tunnels.Proxy | None:
    """The proxy the account's connections go through, its password opened; None for none.
    ``ProxyUnusable`` (a ``CredentialsUnavailable``) for a stored URL that is not a proxy URL:
    connecting without the proxy the tenant asked for is not an option."""
    url = (account.ee_options or {}).get("proxy")
    if not url:
        return None
    try:
        proxy = tunnels.parse(url)
    except ValueError as exc:
        raise ProxyUnusable(f"The account's proxy cannot be used: {exc}") from None
    if proxy.password is None:
        return proxy
    stored = get_credential(account, PASSWORD)  # None: kept masked before passwords were sealed
    return tunnels.Proxy(proxy.scheme, proxy.host, proxy.port, proxy.user, stored or "")
