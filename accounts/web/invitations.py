"""Invitations to join a tenant: sent from the team page, accepted from the emailed link.

    invite ──> Invitation row + mail with /invitations/<signed token>
                    │ (sent again: new key and expiry, older links stop working; cancelled:
                    │  row deleted)
    accept ──> a new person chooses a password   ─┐ Membership with the invited role,
               someone with an account, signed   ├─ row deleted (the link worked once),
               in as the invited address, agrees ─┘ signed in, acting for the tenant

Nothing exists for the invited person until they accept: no user (the address can still sign
up or reset a password) and no membership (nobody is put into an organization they did not
agree to join). The token is ``django.core.signing`` over the row's id and its random key: a
changed token fails the signature, a valid one whose row was accepted, cancelled, re-sent or
has expired is "no longer valid".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import Invitation, Membership, Tenant, User
from accounts.web import outgoing_mail

SALT = "emailapi.invitation"
TTL = timedelta(days=7)


class InvitationInvalid(Exception):
    """A token that is not ours (forged, mangled)."""


class InvitationGone(Exception):
    """A token we made whose invitation was accepted, cancelled, sent again, or expired."""


def normalize(email: str) -> str:
    return User.objects.normalize_email(email).strip().lower()


def invite(request, tenant: Tenant, email: str, role: str,
           invited_by: User) -> tuple[Invitation, str | None]:
    """Create the pending invitation (or renew it: new role, key and expiry) and mail its link.
    The caller has checked that ``email`` is not a member already. Returns the invitation and
    why its mail was not sent (None when it was: ``outgoing_mail``)."""
    email = normalize(email)
    values = {"role": role, "invited_by": invited_by, "key": secrets.token_urlsafe(32),
              "created_at": timezone.now(), "expires_at": timezone.now() + TTL}
    try:
        invitation, _ = Invitation.objects.update_or_create(tenant=tenant, email=email,
                                                            defaults=values)
    except IntegrityError:  # two invitations of one address at once: the other one won
        invitation = Invitation.objects.get(tenant=tenant, email=email)
    link = request.build_absolute_uri(reverse("web:invitation", args=[token_for(invitation)]))
    body = render_to_string("registration/invite_email.txt", {
        "tenant": tenant, "invited_by": invited_by, "link": link, "invitation": invitation})
    return invitation, outgoing_mail.send(f"You are invited to {tenant.name} on emailapi", body,
                                          [email])


def token_for(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "k": invitation.key}, salt=SALT, compress=True)


def check_token(token: str) -> None:
    """Raise ``InvitationInvalid`` unless we signed ``token`` (it may still be gone)."""
    try:
        signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise InvitationInvalid() from None


def pending(token: str, lock: bool = False) -> Invitation:
    """The invitation ``token`` stands for, if it can still be accepted."""
    try:
        data = signing.loads(token, salt=SALT, max_age=TTL)
    except signing.SignatureExpired:
        raise InvitationGone() from None
    except signing.BadSignature:
        raise InvitationInvalid() from None
    rows = Invitation.objects.select_related("tenant", "invited_by")
    if lock:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(pk=data.get("i")).first()
    if (invitation is None or not constant_time_compare(invitation.key, str(data.get("k")))
            or invitation.expires_at <= timezone.now()):
        raise InvitationGone()
    return invitation


@dataclass(frozen=True)
class Accepted:
    membership: Membership
    user: User


def accept_as_new_user(token: str, password: str) -> Accepted:
    """A person without an account accepts: their user is made now, with the password they
    chose and the address confirmed (the link reached it). Raises ``InvitationGone``, or
    ``AccountExists`` when the address got an account meanwhile (sign in and accept)."""
    with transaction.atomic():
        invitation = pending(token, lock=True)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise AccountExists()
        user = User.objects.create_user(email=invitation.email, password=password,
                                        email_verified_at=timezone.now())
        return Accepted(_join(invitation, user), user)


def accept_as(token: str, user: User) -> Accepted:
    """Someone with an account, signed in as the invited address, accepts."""
    with transaction.atomic():
        invitation = pending(token, lock=True)
        if not is_for(invitation, user):
            raise NotForThisUser()
        return Accepted(_join(invitation, user), user)


class AccountExists(Exception):
    pass


class NotForThisUser(Exception):
    pass


def is_for(invitation: Invitation, user: User) -> bool:
    return normalize(user.email) == invitation.email


def has_account(invitation: Invitation) -> bool:
    return User.objects.filter(email__iexact=invitation.email).exists()


def _join(invitation: Invitation, user: User) -> Membership:
    """Make the membership. Opening the emailed link proves the address, so the user's
    email counts as confirmed from now on (no "Please confirm your email" banner)."""
    if user.email_verified_at is None and is_for(invitation, user):
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    membership, _ = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role})
    invitation.delete()
    return membership
