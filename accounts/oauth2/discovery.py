"""Suggest IMAP/SMTP settings for an address (``GET /v1/autoconfig``).

First the built-in table of common providers, by the address's domain; then, for a domain we
do not know (a company on Google Workspace or Microsoft 365), its MX hosts: mail for it is
received by ``*.google.com`` or ``*.protection.outlook.com``, so it is read there too. The
MX lookup is a plain function passed in (``mx_lookup``), so tests replace it with a dict and
no query leaves the machine.
"""

from __future__ import annotations

from collections.abc import Callable

from accounts.oauth2 import app_passwords, presets

MxLookup = Callable[[str], list[str]]


def _servers(imap_host: str, smtp_host: str, smtp_port: int = 465,
             smtp_secure: bool = True) -> dict:
    return {"imap": {"host": imap_host, "port": 993, "secure": True},
            "smtp": {"host": smtp_host, "port": smtp_port, "secure": smtp_secure}}


_GMAIL = {"provider": presets.GMAIL, "oauth2": presets.GMAIL,
          **_servers("imap.gmail.com", "smtp.gmail.com")}
_OUTLOOK = {"provider": presets.OUTLOOK, "oauth2": presets.OUTLOOK,
            **_servers("outlook.office365.com", "smtp.office365.com", 587, False)}
_YAHOO = {"provider": presets.YAHOO, "oauth2": presets.YAHOO,
          **_servers("imap.mail.yahoo.com", "smtp.mail.yahoo.com")}
_ICLOUD = {"provider": "icloud", **_servers("imap.mail.me.com", "smtp.mail.me.com", 587, False)}
_FASTMAIL = {"provider": "fastmail", **_servers("imap.fastmail.com", "smtp.fastmail.com")}
_ZOHO = {"provider": "zoho", **_servers("imap.zoho.com", "smtp.zoho.com")}
_AOL = {"provider": "aol", **_servers("imap.aol.com", "smtp.aol.com")}
_GMX = {"provider": "gmx", **_servers("imap.gmx.net", "mail.gmx.net", 587, False)}

DOMAINS: dict[str, dict] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), _GMAIL),
    **dict.fromkeys(("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk",
                     "outlook.de", "hotmail.de", "hotmail.fr", "live.co.uk"), _OUTLOOK),
    **dict.fromkeys(("yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.de",
                     "yahoo.fr"), _YAHOO),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), _ICLOUD),
    **dict.fromkeys(("fastmail.com", "fastmail.fm"), _FASTMAIL),
    **dict.fromkeys(("zoho.com", "zohomail.com"), _ZOHO),
    **dict.fromkeys(("aol.com", "aim.com"), _AOL),
    **dict.fromkeys(("gmx.com", "gmx.net", "gmx.de"), _GMX),
}

# MX host suffix -> provider (hosted domains: Workspace, Microsoft 365, ...).
MX_SUFFIXES: tuple[tuple[str, dict], ...] = (
    (".google.com", _GMAIL),
    (".googlemail.com", _GMAIL),
    (".protection.outlook.com", _OUTLOOK),
    (".outlook.com", _OUTLOOK),
    (".yahoodns.net", _YAHOO),
    (".messagingengine.com", _FASTMAIL),
    (".zoho.com", _ZOHO),
    (".zoho.eu", _ZOHO),
    (".icloud.com", _ICLOUD),
    (".gmx.net", _GMX),
)


def dns_mx_lookup(domain: str) -> list[str]:
    """MX hosts of ``domain`` by preference, through the system resolver (empty if none)."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=5.0)
    except (dns.exception.DNSException, ValueError):
        return []
    records = sorted(answer, key=lambda record: record.preference)
    return [str(record.exchange).rstrip(".").lower() for record in records]


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().rstrip(".").lower()


def by_domain(domain: str) -> dict | None:
    found = DOMAINS.get(domain)
    return {**found, "source": "builtin"} if found else None


def by_mx(mx_hosts: list[str]) -> dict | None:
    for host in mx_hosts:
        host = "." + host.lower().rstrip(".")
        for suffix, found in MX_SUFFIXES:
            if host.endswith(suffix):
                return {**found, "source": "mx"}
    return None


def discover(email: str, mx_lookup: MxLookup = dns_mx_lookup) -> dict | None:
    """Settings for ``email`` (``imap``, ``smtp``, ``provider``, ``oauth2`` when it signs in
    with OAuth2, ``source``: ``builtin`` or ``mx``), or None if nothing is known."""
    domain = domain_of(email)
    return by_domain(domain) or by_mx(mx_lookup(domain))


def answer(email: str, found: dict | None) -> dict:
    """The JSON of ``GET /v1/autoconfig`` (and the connect form's ``/connect/autoconfig``)
    for what ``discover`` found: ours (``provider``, ``source``, ``oauth2``) and EmailEngine's
    (``imap``/``smtp`` with ``auth.user``, ``_source``, ``appPassword``), so a client that
    fills an account from EmailEngine's answer finds the user name where it looks and can tell
    its user to make an app password first. Every provider we know logs in with the whole
    address."""
    found = found or {}

    def servers(kind: str) -> dict | None:
        server = found.get(kind)
        return {**server, "auth": {"user": email}} if server else None

    return {"email": email, "provider": found.get("provider"), "source": found.get("source"),
            "_source": found.get("source"), "oauth2": found.get("oauth2"),
            "imap": servers("imap"), "smtp": servers("smtp"),
            "appPassword": app_passwords.for_provider(found.get("provider"))}
