"""Who a mailbox must be signed in as: the ``expectedEmail`` pin (EmailEngine's name).

A connect link can carry an expected address, and an account can be pinned to one (``POST``/
``PUT /v1/account``, or kept from the link that set it up). A link's own expectation wins, as
the caller's deliberate restatement (a mailbox moving to a new address); a link without one
inherits the account's pin, so the constraint outlives the link that introduced it.

What counts as evidence differs by sign-in. OAuth2: only the address the provider names;
the caller's hints (the link's ``email``) never stand in for it, so a provider that names
nobody fails the check. The password form: the address typed on the form, so the guarantee
there is "registered under the expected address", not "holds that mailbox" (the password
proves the mailbox, not the address).
"""

from __future__ import annotations

from accounts.models import EmailAccount


def normalize(value: str | None) -> str:
    """An address as a pin compares it: trimmed, lower case ("" for none)."""
    return (value or "").strip().lower()


def pinned(account: EmailAccount | None) -> str | None:
    """The address ``account`` is pinned to, or None."""
    return (account.ee_options or {}).get("expectedEmail") if account is not None else None


def expectation(link_expected: str | None, account: EmailAccount | None) -> str:
    """The address a setup must sign in as ("" for any): the link's, else the account's pin."""
    return normalize(link_expected) or normalize(pinned(account))


def mismatch(expected: str, signed_in: str) -> str | None:
    """Why ``signed_in`` may not set up the mailbox when ``expected`` is wanted, in words for
    the end user; None when it may (no expectation: anyone may)."""
    if not expected:
        return None
    if not signed_in:
        return f"The provider did not say which address signed in, and this link is for {expected}."
    if normalize(signed_in) != expected:
        return (f"You signed in as {signed_in}, but this link is for {expected}. Sign in with "
                f"that address instead.")
    return None
