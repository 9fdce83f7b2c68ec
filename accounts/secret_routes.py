"""Where a mailbox's stored password or token may go: only to the server it was given for, by
the route and over the TLS it was given for.

Whoever may change a mailbox's settings (or the tenant's) must not be able to collect its
password at a server of their choosing. A stored secret follows the settings to every
connection, so three kinds of change would hand it to such a server:

- the server's host (``imap.host``/``smtp.host``);
- the proxy (``proxy``): a proxy picks the server the tunnel reaches, whatever host is named;
- TLS weakened (``secure`` true -> false, ``tls.rejectUnauthorized`` -> false): a connection
  without TLS, or whose certificate is not checked, is open to whoever is on the way.

An account change of that kind must bring the secret again in the same request
(``check_secrets_stay``, ``SecretNeeded``); an OAuth2 mailbox, whose tokens only a new sign-in
replaces, must sign in again. Taking a proxy away, or turning TLS on, needs nothing.

The tenant's proxy (settings ``proxyUrl``) is the route of every account without its own, so
a change there cannot ask for each account's secret. Instead the connection decides
(``tls_required``): through the tenant's proxy a secret given before that proxy was set
(``EngineSettings.proxy_route_set_at`` against ``Credential.given_at``) is sent only over TLS
that verifies the server's certificate, which no proxy can stand in for; given after, the
person who gave it knew the route. An authentication server's answer is given by no person:
through the tenant's proxy it always needs that TLS.
"""

from __future__ import annotations

from django.db.models import Max

from accounts import auth_server, mail_proxy
from accounts.credentials import MASK
from accounts.errors import SecretNeeded
from accounts.models import Credential, EmailAccount

SECRET_FIELDS = ("pass", "accessToken")


# --- changes of an account's settings -------------------------------------------------------

def check_secrets_stay(account: EmailAccount, section: str, data: dict) -> None:
    """Refuse (``SecretNeeded``) the change ``data`` (an account update: its ``imap``,
    ``smtp``, ``proxy``...) when it would send ``section``'s stored password or token (or the
    account's OAuth2 tokens) to another server, through another proxy or over weaker TLS
    without bringing its own. A new port, user or TLS version on the same host keeps it."""
    stored = getattr(account, section) or {}
    if data.get("oauth2"):  # a new sign-in's tokens
        return
    if section in data and data[section] is None:  # the server goes, its secrets with it
        return
    change = data.get(section) or {}
    if not stored:
        if account.oauth2 and change.get("host"):  # its tokens go to every server it has
            raise SecretNeeded(section, "host", oauth2=True)
        return  # a new server takes no stored password: it needs its own
    changed = _what_moves(account, stored, change, data)
    if changed is None:
        return
    if account.oauth2:  # its tokens go wherever the section points; a PUT brings none
        raise SecretNeeded(section, changed, oauth2=True)
    auth = change.get("auth") or {}
    if any(auth.get(key) and auth.get(key) != MASK for key in SECRET_FIELDS):
        return  # a new secret of its own (the mask written back keeps the stored one)
    if Credential.objects.filter(
            email_account=account, name__in=[f"{section}.pass", f"{section}.accessToken"]).exists():
        raise SecretNeeded(section, changed)


def _what_moves(account: EmailAccount, stored: dict, change: dict, data: dict) -> str | None:
    """What in the change would take the stored secret elsewhere (``SecretNeeded``'s
    ``changed``), or None."""
    host = change.get("host")
    if host is not None and host.lower() != str(stored.get("host") or "").lower():
        return "host"
    if "proxy" in data and mail_proxy.moves(data["proxy"], (account.ee_options or {}).get("proxy")):
        return "proxy"
    secure = bool(stored.get("secure", False))
    if secure and not bool(change.get("secure", secure)):
        return "secure"
    verify = _verifies(stored.get("tls"))
    tls = change.get("tls")
    if verify and isinstance(tls, dict) and "rejectUnauthorized" in tls \
            and not tls["rejectUnauthorized"]:
        return "rejectUnauthorized"
    return None


def _verifies(tls) -> bool:
    return bool((tls or {}).get("rejectUnauthorized", True)) if isinstance(tls, dict) else True


# --- connections through the tenant's proxy -------------------------------------------------

UNREAD = object()  # ``tls_required``'s ``given`` not read by its caller


def tls_required(account: EmailAccount, section: str, given=UNREAD) -> str | None:
    """Why ``section``'s secret may go only over TLS that verifies the server's certificate
    (the words the connection's refusal says), or None: the account's connections do not go
    through the tenant's proxy, or its secret was given after that proxy was set. ``given``:
    when the section's password was given, when the caller read it with the password
    (``credentials.get_credentials_given``: a connect's one credential query)."""
    set_at = mail_proxy.tenant_route_set_at(account)
    if set_at is mail_proxy.NOT_THE_TENANTS:
        return None
    if given is UNREAD:
        given = _given_at(account, section)
    if given is not None and set_at is not None and given > set_at:
        return None
    if account.oauth2 and not auth_server.uses_it(account.oauth2):
        again = "Sign the mailbox in again"
    elif auth_server.uses_it(getattr(account, section)) or auth_server.uses_it(account.oauth2):
        again = "Give the mailbox a password of its own"
    else:
        again = f"Give its password again ({section}.auth.pass)"
    return (f"Credentials not sent: through the organization's proxy (proxyUrl) they go only "
            f"over TLS with a verified certificate, as they were given before that proxy was "
            f"set, and this server offered none. {again}, or use TLS with a valid certificate")


def _given_at(account: EmailAccount, section: str):
    """When a person last gave the secret the section's connections send (None: never, or
    not known)."""
    if auth_server.uses_it(getattr(account, section)) or auth_server.uses_it(account.oauth2):
        return None  # asked of the authentication server at every connection
    names = ["oauth2.refreshToken", "oauth2.accessToken"] if account.oauth2 else \
        [f"{section}.pass", f"{section}.accessToken"]
    return Credential.objects.filter(email_account=account, name__in=names) \
        .aggregate(given=Max("given_at"))["given"]
