"""Which providers want an app password rather than the account's own password for IMAP/SMTP,
and where their users learn to make one (EmailEngine's ``appPassword`` of ``GET
/v1/autoconfig``: ``{required, provider, instructions}``).

Keyed by ``discovery``'s provider names, so a hosted domain found by its MX hosts (Google
Workspace) gets its provider's rule too. ``required`` is true where a password login is refused
without one (iCloud and Fastmail always; Gmail, Yahoo and AOL for third-party mail programs),
false where only an account with two-factor sign-in needs one (Zoho). Microsoft is not here:
outlook.com no longer takes passwords over IMAP at all, app password or not; its mailboxes sign
in with OAuth2 (the answer's ``oauth2``). GMX wants IMAP switched on in its settings, not a
separate password.
"""

from __future__ import annotations

from accounts.oauth2 import presets

APP_PASSWORDS: dict[str, dict] = {
    presets.GMAIL: {"required": True, "provider": "Gmail",
                    "instructions": "https://support.google.com/accounts/answer/185833"},
    "icloud": {"required": True, "provider": "iCloud",
               "instructions": "https://support.apple.com/102654"},
    presets.YAHOO: {"required": True, "provider": "Yahoo",
                    "instructions": "https://help.yahoo.com/kb/SLN15241.html"},
    "aol": {"required": True, "provider": "AOL",
            "instructions": "https://help.aol.com/articles/Create-and-manage-app-password"},
    "fastmail": {"required": True, "provider": "Fastmail",
                 "instructions": "https://www.fastmail.help/hc/en-us/articles/360058752854"},
    "zoho": {"required": False, "provider": "Zoho",
             "instructions": "https://www.zoho.com/mail/help/imap-access.html"},
}


def for_provider(provider: str | None) -> dict | None:
    """``{required, provider, instructions}`` for a discovered provider, or None when its
    users log in with their own password (or it is not known)."""
    found = APP_PASSWORDS.get(provider or "")
    return dict(found) if found else None
