"""An account's IMAP and SMTP servers as the protocol layer's settings (``ImapSettings``,
``SmtpSettings``): the stored sections (``EmailAccount.imap``/``.smtp``) plus their secrets,
opened here (``accounts.credentials``), or a live OAuth2 access token
(``accounts.oauth2.refresh``), or what the tenant's authentication server answers
(``accounts.auth_server``). The protocol modules take these plain values and never load an
account themselves.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings

from accounts import auth_server, mail_hosts, mail_proxy, secret_routes
from accounts.credentials import get_credentials_given
from accounts.models import EmailAccount, Tenant
from accounts.oauth2 import refresh
from mailboxes import local_address, protocol_log
from mailboxes.imap.client import DEFAULT_TLS_VERSION, TLS_VERSIONS, ImapSettings
from mailboxes.smtp import SmtpSettings


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
        tls_min_version=_tls_min_version(section),
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
        tls_min_version=_tls_min_version(section),
        timeout=float(settings.EMAILAPI_VERIFY_TIMEOUT),
        allow_private=mail_hosts.allows_private(tenant),
    )


def _tls_min_version(section: dict) -> str:
    """The section's ``tls.minVersion`` (EmailEngine's), else TLS 1.2."""
    wanted = (section.get("tls") or {}).get("minVersion")
    return wanted if wanted in TLS_VERSIONS else DEFAULT_TLS_VERSION


def account_imap_settings(account: EmailAccount,
                          force_refresh: bool = False) -> ImapSettings | None:
    """The account's IMAP settings with its secrets opened, for a worker or a service. An
    OAuth2 mailbox gets a live access token (refreshed first if it is about to expire; raises
    ``accounts.oauth2.refresh.TokenError`` when none can be had), one with ``useAuthServer``
    the credentials its tenant's authentication server gives (``auth_server.AuthServerError``
    when none can be had); both are ``accounts.credentials.CredentialsUnavailable``."""
    return _opened(account, "imap", imap_settings_from, force_refresh)


def account_smtp_settings(account: EmailAccount,
                          force_refresh: bool = False) -> SmtpSettings | None:
    """The account's SMTP settings with its secrets opened (as ``account_imap_settings``)."""
    return _opened(account, "smtp", smtp_settings_from, force_refresh)


def _opened(account: EmailAccount, section: str, settings_from, force_refresh: bool):
    config = getattr(account, section)
    if not config:
        return None
    given = secret_routes.UNREAD  # when the password was given, if read with it
    if auth_server.uses_it(config):  # EmailEngine's useAuthServer: asked at every connection
        asked = auth_server.credentials(account, section)
        opened = settings_from({**config, "auth": {"user": asked.user}}, asked.password,
                               asked.access_token, tenant=account.tenant)
    elif auth_server.uses_it(account.oauth2):  # oauth2.useAuthServer: only the token is asked
        opened = settings_from(config, None, auth_server.access_token(account, section),
                               tenant=account.tenant)
    elif account.oauth2:
        opened = settings_from(config, None, refresh.access_token(account, force=force_refresh),
                               tenant=account.tenant)
    else:
        password, token, given = get_credentials_given(account, f"{section}.pass",
                                                       f"{section}.accessToken")
        opened = settings_from(config, password, token, tenant=account.tenant)
    # EmailEngine's proxy: the account's own, else the tenant's proxyUrl while enabled
    proxy = mail_proxy.connection_proxy(account)
    if proxy is not None:
        # through the tenant's proxy, a secret given before it was set: verified TLS only
        opened = replace(opened, proxy=proxy,
                         tls_required=secret_routes.tls_required(account, section, given))
    if section == "imap":  # a send's address is chosen per send (``local_address.route``)
        source = local_address.imap_address(account.tenant_id, account.account_id)
        if source is not None:
            opened = replace(opened, source_address=source)
    if not account.logs:
        return opened
    # The account's protocol log (EmailEngine's ``logs``), told the secrets it must hide.
    return replace(opened, protocol_log=protocol_log.opener(
        account.pk, section, (opened.password, opened.access_token)))
