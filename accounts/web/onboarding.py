"""Sign-up and email verification: the people side of a tenant (invitations are
``accounts.web.invitations``).

Confirmation links are signed (``django.core.signing``), so no table of pending tokens is
needed, and stop working once they are too old.
"""

from __future__ import annotations

from django.core import signing
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import plans, services
from accounts.models import Membership, Tenant, User
from accounts.web import outgoing_mail

VERIFY_SALT = "emailapi.verify-email"
VERIFY_MAX_AGE = 3 * 24 * 3600


class EmailTaken(Exception):
    """The address signed up meanwhile: the form checked it was free before the other
    sign-up (the same form sent twice) committed."""


def sign_up(organization: str, email: str, password: str) -> tuple[Tenant, User]:
    """A new tenant on a 14-day trial, with its first user as owner; ``EmailTaken`` when
    another sign-up took the address since the form looked (nothing is kept then)."""
    try:
        with transaction.atomic():
            tenant = services.create_tenant(organization, status=Tenant.Status.TRIAL)
            plans.start_trial(tenant)
            user = User.objects.create_user(email=email, password=password)
            Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
    except IntegrityError:
        if User.objects.filter(email=email).exists():
            raise EmailTaken(email) from None
        raise
    return tenant, user


def verification_link(request, user: User) -> str:
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT)
    return request.build_absolute_uri(reverse("web:verify-email", args=[token]))


def send_verification(request, user: User) -> str | None:
    """Mail the confirmation link; why it was not sent, or None (``outgoing_mail``)."""
    body = render_to_string("registration/verify_email.txt",
                            {"user": user, "link": verification_link(request, user)})
    return outgoing_mail.send("Confirm your email address for emailapi", body, [user.email])


def verify_email(token: str) -> User | None:
    """The user the link was made for, now verified; None for a bad, old or stale link."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature:
        return None
    user = User.objects.filter(pk=data.get("u"), email=data.get("e")).first()
    if user is not None and user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user
