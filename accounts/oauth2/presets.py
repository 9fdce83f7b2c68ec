"""What we know about each OAuth2 mail provider: endpoints, scopes and mail servers (pure).

A tenant's OAuth2 app names a provider; its empty fields (authorize/token URL, scopes) come
from the preset, so a Gmail app needs only a client id and secret. ``generic`` has no preset:
its app must give both URLs and its mail servers. The URLs here, not social-core's, are the
defaults for the Gmail, Outlook and Yahoo backends too (``social.py``): Google's are the v2
endpoints its documentation names, and refresh (``refresh.py``) posts to the same token URL.

Scopes: the mail scopes each provider requires for IMAP and SMTP (Google's one full-mail
scope; Microsoft's IMAP and SMTP scopes plus ``offline_access``, without which no refresh
token is issued; Yahoo's ``mail-w``), plus OpenID ``openid email`` so the token response's
id_token names the address that signed in (``expectedEmail`` and the account's email).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

GMAIL = "gmail"
OUTLOOK = "outlook"
YAHOO = "yahoo"
GENERIC = "generic"
PROVIDERS = (GMAIL, OUTLOOK, YAHOO, GENERIC)
IDENTITY_SCOPES = ("openid", "email")


@dataclass(frozen=True)
class Preset:
    provider: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    imap: dict
    smtp: dict
    # Extra authorize parameters, e.g. Google issues a refresh token only with
    # access_type=offline, and again on a repeated consent only with prompt=consent.
    authorize_params: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    GMAIL: Preset(
        GMAIL,
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        ("https://mail.google.com/", *IDENTITY_SCOPES),
        {"host": "imap.gmail.com", "port": 993, "secure": True},
        {"host": "smtp.gmail.com", "port": 465, "secure": True},
        {"access_type": "offline", "prompt": "consent"},
    ),
    OUTLOOK: Preset(
        OUTLOOK,
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        ("https://outlook.office.com/IMAP.AccessAsUser.All",
         "https://outlook.office.com/SMTP.Send", "offline_access", *IDENTITY_SCOPES),
        {"host": "outlook.office365.com", "port": 993, "secure": True},
        {"host": "smtp.office365.com", "port": 587, "secure": False},
        {"prompt": "select_account"},
    ),
    YAHOO: Preset(
        YAHOO,
        "https://api.login.yahoo.com/oauth2/request_auth",
        "https://api.login.yahoo.com/oauth2/get_token",
        ("mail-w", *IDENTITY_SCOPES),
        {"host": "imap.mail.yahoo.com", "port": 993, "secure": True},
        {"host": "smtp.mail.yahoo.com", "port": 465, "secure": True},
    ),
}


@dataclass(frozen=True)
class Endpoints:
    """An app's effective settings: its own values where given, else the preset's."""

    provider: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    imap: dict | None
    smtp: dict | None
    authorize_params: dict


def resolve(provider: str, authorize_url: str = "", token_url: str = "",
            scopes: list[str] | tuple[str, ...] = (), imap: dict | None = None,
            smtp: dict | None = None) -> Endpoints:
    preset = PRESETS.get(provider)
    if preset is None:
        return Endpoints(provider, authorize_url, token_url, tuple(scopes), imap, smtp, {})
    return Endpoints(provider, authorize_url or preset.authorize_url,
                     token_url or preset.token_url, tuple(scopes) or preset.scopes,
                     imap or preset.imap, smtp or preset.smtp, dict(preset.authorize_params))


def authorize_url(endpoints: Endpoints, client_id: str, redirect_uri: str, state: str,
                  code_challenge: str, login_hint: str = "") -> str:
    """The provider URL the user's browser is sent to (RFC 6749 4.1.1 with RFC 7636 PKCE),
    for a ``generic`` app; Gmail, Outlook and Yahoo apps get theirs from ``social.py``."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(endpoints.scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **endpoints.authorize_params,
    }
    if login_hint:
        params["login_hint"] = login_hint
    sep = "&" if "?" in endpoints.authorize_url else "?"
    return endpoints.authorize_url + sep + urlencode(params)
