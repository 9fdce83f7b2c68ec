"""A mailbox's secrets (passwords, access and refresh tokens), sealed at rest.

Secrets enter here in clear and leave sealed (``accounts.crypto``): ``set_credential`` is the
only writer of ``Credential`` rows and ``get_credentials`` (``get_credential`` for one) the
only reader. A row's seal is bound to its tenant, account and name, so a sealed value
copied to another row does not open.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from accounts import crypto
from accounts.models import Credential, EmailAccount
from emailapi.lib import userinfo
from emailapi.lib.rows import prepared_rows
from emailapi.lib.timestamps import from_row


class CredentialsUnavailable(Exception):
    """No credentials can be had for a connection now (an OAuth2 access token, an answer of
    the authentication server); ``code`` is the machine code for ``lastError``. The message
    is ours, safe to show."""

    code = "CredentialsUnavailable"


def _context(account: EmailAccount, name: str) -> str:
    return f"tenant:{account.tenant_id}/account:{account.pk}/{name}"


def master_secrets() -> list[str]:
    """The secrets a sealed value may be opened with: the current one, then the old ones."""
    return [settings.EMAILAPI_SECRET, *getattr(settings, "EMAILAPI_OLD_SECRETS", [])]


def set_credential(account: EmailAccount, name: str, value: str | None,
                   given: bool = True) -> None:
    """Seal and keep ``value`` as the account's ``name`` (None: delete it). ``given``: a person
    gave it now (``given_at``); False for what a refresh rotates, which keeps the time its
    sign-in gave."""
    if value is None:
        Credential.objects.filter(email_account=account, name=name).delete()
        return
    sealed = crypto.seal(value, _context(account, name), settings.EMAILAPI_SECRET)
    now = timezone.now()
    values = {"sealed": sealed, "updated_at": now, **({"given_at": now} if given else {})}
    Credential.objects.update_or_create(email_account=account, name=name, defaults=values)


def get_credentials(account: EmailAccount, first: str, second: str) -> tuple[str | None,
                                                                           str | None]:
    """Two of the account's secrets, opened (None where there is none), in one fixed,
    prepared statement: every connect reads a password and an access token, and a worker
    restarted with thousands of accounts paid the ORM's compilation of two queries for
    each (more than PostgreSQL spent answering them)."""
    return get_credentials_given(account, first, second)[:2]


def get_credentials_given(account: EmailAccount, first: str, second: str) -> tuple[
        str | None, str | None, datetime | None]:
    """``get_credentials`` and, from the same statement, when a person last gave either of
    them (``Credential.given_at``; None: never, or not known): a connect through the
    tenant's proxy needs both (``accounts.secret_routes.tls_required``), and a second query
    at every connect would cost what the prepared statement saves."""
    table = Credential._meta.db_table
    rows = prepared_rows(f"SELECT name, sealed, given_at FROM {table} "
                         f"WHERE email_account_id = %s AND name IN (%s, %s)",
                         [account.pk, first, second])
    sealed = {name: value for name, value, _ in rows}
    given = max((from_row(when) for _, _, when in rows if when is not None), default=None)
    opened = tuple(None if sealed.get(name) is None else
                   crypto.open_secret(sealed[name], _context(account, name), master_secrets())
                   for name in (first, second))
    return opened[0], opened[1], given


def get_credential(account: EmailAccount, name: str) -> str | None:
    return get_credentials(account, name, name)[0]


MASK = "******"  # how every secret is shown (EmailEngine's mask); written back, it keeps it


def without_password(url: str, loose: bool = False) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by the mask, every
    other character as written: what is stored and shown of a URL whose password is secret
    (a webhook URL's, sealed apart by ``webhooks.subscriptions``). Anything that does not parse
    as a URL with a password comes back as it is, unless ``loose``: for what is only shown or
    never used (EmailEngine's ``proxy`` field, stored and echoed, never used here, so its
    password is not kept at all; a refused form's echo), whatever looks like a password is
    masked too (``userinfo.masked_loosely``)."""
    return userinfo.masked_loosely(url, MASK) if loose else userinfo.masked(url, MASK)
