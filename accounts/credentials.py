"""A mailbox's secrets (passwords, access and refresh tokens), sealed at rest.

Secrets enter here in clear and leave sealed (``accounts.crypto``): ``set_credential`` is the
only writer of ``Credential`` rows and ``get_credential`` the only reader. A row's seal is bound
to its tenant, account and name, so a sealed value copied to another row does not open.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from accounts import crypto
from accounts.models import Credential, EmailAccount


def _context(account: EmailAccount, name: str) -> str:
    return f"tenant:{account.tenant_id}/account:{account.pk}/{name}"


def _master_secrets() -> list[str]:
    return [settings.EMAILAPI_SECRET, *getattr(settings, "EMAILAPI_OLD_SECRETS", [])]


def set_credential(account: EmailAccount, name: str, value: str | None) -> None:
    if value is None:
        Credential.objects.filter(email_account=account, name=name).delete()
        return
    sealed = crypto.seal(value, _context(account, name), settings.EMAILAPI_SECRET)
    Credential.objects.update_or_create(
        email_account=account, name=name, defaults={"sealed": sealed, "updated_at": timezone.now()}
    )


def get_credential(account: EmailAccount, name: str) -> str | None:
    row = Credential.objects.filter(email_account=account, name=name).first()
    if row is None:
        return None
    return crypto.open_secret(row.sealed, _context(account, name), _master_secrets())
