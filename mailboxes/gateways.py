"""A tenant's SMTP gateways (EmailEngine's): SMTP servers of its own that send an account's
mail in its place when a send names one (``submit`` with ``gateway``).

The password enters here in clear and is stored sealed (``accounts.crypto``) under a context
naming the tenant and the gateway, so a sealed password copied to another row does not open;
``smtp_settings`` is its only reader. A gateway's host obeys the mail-host rule of mailboxes
(``accounts.mail_hosts``: no internal address unless the deployment allows it). Every send
through a gateway counts (``deliveries``, ``last_use``) or leaves its error (``last_error``).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts import crypto, mail_hosts
from accounts.credentials import master_secrets
from accounts.models import Tenant
from emailapi.lib.existing import save_existing
from mailboxes import connection_settings
from mailboxes.errors import GatewayNotFound, GatewaySecretNeeded
from mailboxes.models import SmtpGateway
from mailboxes.smtp import SmtpSettings

# API name -> model field of what a gateway's settings are made of (``pass`` is sealed apart).
FIELDS = {"name": "name", "host": "host", "port": "port", "secure": "secure", "user": "user",
          "tls": "tls"}


def _context(tenant_id: int, gateway_id: str) -> str:
    return f"tenant:{tenant_id}/gateway:{gateway_id}/pass"


def _seal(gateway: SmtpGateway, password: str | None) -> str:
    if not password:
        return ""
    return crypto.seal(password, _context(gateway.tenant_id, gateway.gateway_id),
                       settings.EMAILAPI_SECRET)


def password_of(gateway: SmtpGateway) -> str | None:
    if not gateway.sealed_pass:
        return None
    return crypto.open_secret(gateway.sealed_pass,
                              _context(gateway.tenant_id, gateway.gateway_id), master_secrets())


def find(tenant: Tenant | int, gateway_id: str) -> SmtpGateway | None:
    return SmtpGateway.objects.filter(tenant_id=getattr(tenant, "pk", tenant),
                                      gateway_id=gateway_id).first()


def save(tenant: Tenant, gateway_id: str | None, data: dict) -> tuple[SmtpGateway, str]:
    """EmailEngine's ``POST /v1/gateway``: register the gateway, or replace the settings of the
    tenant's one with this id (None or "": a new id is made). Returns it and ``"new"`` or
    ``"existing"``."""
    gateway_id = gateway_id or secrets.token_hex(8)
    existing = find(tenant, gateway_id)
    if existing is not None:
        return update(existing, {"user": None, "pass": None, **data}), "existing"
    mail_hosts.check(tenant, {"smtp": data})
    gateway = SmtpGateway(tenant=tenant, gateway_id=gateway_id)
    _apply(gateway, data)
    try:
        with transaction.atomic():
            gateway.save(force_insert=True)
    except IntegrityError:  # registered by a concurrent request meanwhile
        return save(tenant, gateway_id, data)
    return gateway, "new"


def update(gateway: SmtpGateway, data: dict) -> SmtpGateway:
    """Apply the given fields (``user``/``pass`` None: none). ``GatewayNotFound`` when it was
    deleted meanwhile: never brought back."""
    if "host" in data or "port" in data:
        mail_hosts.check(gateway.tenant, {"smtp": {"host": data.get("host", gateway.host),
                                                   "port": data.get("port", gateway.port)}})
    check_secret_stays(gateway, data)
    _apply(gateway, data)
    gateway.updated_at = timezone.now()
    if not save_existing(gateway):
        raise GatewayNotFound(gateway.gateway_id)
    return gateway


def check_secret_stays(gateway: SmtpGateway, data: dict) -> None:
    """Refuse (``GatewaySecretNeeded``) a move to another host that would take the stored
    password there: whoever may edit a gateway must not be able to collect its password at a
    server of their choosing, as for a mailbox (``accounts.services.check_secrets_stay``).
    A new port or TLS mode on the same host keeps it; ``pass`` given (null: none) decides."""
    host = data.get("host")
    if host is None or host.lower() == (gateway.host or "").lower() or "pass" in data:
        return
    if gateway.sealed_pass:
        raise GatewaySecretNeeded()


def _apply(gateway: SmtpGateway, data: dict) -> None:
    for api, field in FIELDS.items():
        if api in data:
            empty = {} if field == "tls" else ""
            setattr(gateway, field, data[api] if data[api] is not None else empty)
    if "pass" in data:
        gateway.sealed_pass = _seal(gateway, data["pass"])


def delete(gateway: SmtpGateway) -> None:
    """``GatewayNotFound`` when it was gone already (a concurrent delete came first). Sends
    queued through it fail when their turn comes (they are not moved to another server)."""
    deleted, _ = SmtpGateway.objects.filter(pk=gateway.pk).delete()
    if not deleted:
        raise GatewayNotFound(gateway.gateway_id)


def smtp_settings(tenant_id: int, gateway_id: str) -> SmtpSettings | None:
    """The gateway's settings for a send, password opened; None when it no longer exists."""
    gateway = find(tenant_id, gateway_id)
    if gateway is None:
        return None
    section = {"host": gateway.host, "port": gateway.port, "secure": gateway.secure,
               "tls": gateway.tls or {}, "auth": {"user": gateway.user} if gateway.user else {}}
    return connection_settings.smtp_settings_from(section, password_of(gateway),
                                                  tenant=gateway.tenant)


def record_delivery(tenant_id: int, gateway_id: str) -> None:
    SmtpGateway.objects.filter(tenant_id=tenant_id, gateway_id=gateway_id).update(
        deliveries=F("deliveries") + 1, last_use=timezone.now())


def record_failure(tenant_id: int, gateway_id: str, error: dict) -> None:
    now = timezone.now()
    SmtpGateway.objects.filter(tenant_id=tenant_id, gateway_id=gateway_id).update(
        last_use=now, last_error={**error, "time": now.isoformat().replace("+00:00", "Z")})
