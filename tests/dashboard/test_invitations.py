"""Invitations: inviting someone makes a pending invitation, never a user or a membership.
A new person accepts by choosing a password (the mailed link proves the address); someone who
already has an account accepts while signed in as that address. Links are signed, expire, work
once, and stop working when the invitation is sent again or cancelled."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, Membership, Tenant, User

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-Battery-9"
NEW_PASSWORD = "Another-Long-Pass-7"


def member(tenant: Tenant, email: str, role: str = "owner") -> Client:
    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def invite(client: Client, email: str, role: str = "viewer") -> str:
    """Invite through the team page; the accept link from the mail (path only)."""
    mail.outbox.clear()
    response = client.post("/dashboard/team", {"email": email, "role": role})
    assert response.status_code == 302, response.content
    [message] = mail.outbox
    assert message.to == [email.lower()]
    return re.search(r"http://testserver(/invitations/\S+)", message.body).group(1)


def test_inviting_a_new_address_creates_no_user_and_the_address_can_still_sign_up(alice):
    owner = member(alice.tenant, "owner@alice.test")
    invite(owner, "New@Example.test")
    assert not User.objects.filter(email__iexact="new@example.test").exists()
    assert not Membership.objects.filter(user__email="new@example.test").exists()
    pending = Invitation.objects.get(tenant=alice.tenant)
    assert pending.email == "new@example.test"
    assert pending.role == "viewer"
    team = owner.get("/dashboard/team").content.decode()
    assert "new@example.test" in team
    assert "Pending" in team
    # The owner of the address is free to start an organization of their own...
    stranger = Client()
    response = stranger.post("/signup", {"organization": "Own Co", "email": "new@example.test",
                                         "password": PASSWORD})
    assert response.status_code == 302
    assert Tenant.objects.get(name="Own Co").memberships.get().user.email == "new@example.test"
    # ... and to reset a password like anyone.
    mail.outbox.clear()
    Client().post("/password-reset", {"email": "new@example.test"})
    assert len(mail.outbox) == 1


def test_a_new_person_accepts_by_choosing_a_password(alice):
    owner = member(alice.tenant, "owner@alice.test")
    link = invite(owner, "new@example.test", "admin")
    guest = Client()
    opened = guest.get(link)
    # The token leaves the address bar (and so any Referer) at once, as in password resets.
    assert opened.status_code == 302
    assert opened["Location"] == "/invitations/accept"
    page = guest.get("/invitations/accept")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice Corp" in html
    assert "new@example.test" in html
    assert "owner@alice.test" in html
    bad = guest.post("/invitations/accept", {"password": "123"})
    assert bad.status_code == 400
    assert b'id="id_password_error"' in bad.content
    assert not User.objects.filter(email="new@example.test").exists()
    done = guest.post("/invitations/accept", {"password": NEW_PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == "/dashboard"
    user = User.objects.get(email="new@example.test")
    assert user.check_password(NEW_PASSWORD)
    assert user.email_verified_at is not None
    assert Membership.objects.get(user=user).tenant == alice.tenant
    assert Membership.objects.get(user=user).role == "admin"
    assert guest.get("/dashboard/tokens").context["tenant"] == alice.tenant  # signed in
    assert not Invitation.objects.exists()
    # Used once: the same link does nothing again.
    assert Client().get(link, follow=True).status_code == 410


def test_an_existing_user_joins_another_organization_only_by_accepting(alice, bob):
    owner = member(alice.tenant, "owner@alice.test")
    bob_user = User.objects.create_user(email="carol@bob.test", password=PASSWORD)
    Membership.objects.create(tenant=bob.tenant, user=bob_user, role="owner")
    link = invite(owner, "carol@bob.test", "admin")
    assert not Membership.objects.filter(tenant=alice.tenant, user=bob_user).exists()

    carol = Client()
    carol.get(link)
    login = carol.get("/invitations/accept")  # not signed in: sign in first, then come back
    assert login.status_code == 302
    assert login["Location"] == "/login?next=/invitations/accept"
    # No password is chosen through an invitation for an existing account.
    assert carol.post("/invitations/accept", {"password": NEW_PASSWORD}).status_code == 302
    assert not User.objects.get(pk=bob_user.pk).check_password(NEW_PASSWORD)
    assert not Membership.objects.filter(tenant=alice.tenant, user=bob_user).exists()

    signed_in = carol.post("/login", {"email": "carol@bob.test", "password": PASSWORD,
                                      "next": "/invitations/accept"})
    assert signed_in["Location"] == "/invitations/accept"
    page = carol.get("/invitations/accept")
    assert page.status_code == 200
    assert b"Alice Corp" in page.content
    assert not Membership.objects.filter(tenant=alice.tenant, user=bob_user).exists()
    accepted = carol.post("/invitations/accept", {"accept": "1"})
    assert accepted.status_code == 302
    assert accepted["Location"] == "/dashboard"
    assert Membership.objects.get(tenant=alice.tenant, user=bob_user).role == "admin"
    assert Membership.objects.get(tenant=bob.tenant, user=bob_user).role == "owner"
    assert carol.get("/dashboard/tokens").context["tenant"] == alice.tenant


def test_someone_signed_in_as_another_address_cannot_accept(alice, bob):
    owner = member(alice.tenant, "owner@alice.test")
    link = invite(owner, "invited@example.test")
    other = member(bob.tenant, "other@bob.test")
    other.get(link)
    page = other.get("/invitations/accept")
    assert page.status_code == 403
    assert b"invited@example.test" in page.content
    assert other.post("/invitations/accept", {"accept": "1"}).status_code == 403
    assert other.post("/invitations/accept", {"password": NEW_PASSWORD}).status_code == 403
    assert not Membership.objects.filter(tenant=alice.tenant, user__email="other@bob.test")
    assert not User.objects.filter(email="invited@example.test").exists()


def test_forged_expired_resent_and_cancelled_links_are_refused(alice):
    owner = member(alice.tenant, "owner@alice.test")
    first = invite(owner, "new@example.test")
    for forged in (first[:-3] + "abc", "/invitations/nonsense"):
        assert Client().get(forged, follow=True).status_code == 404
    second = invite(owner, "new@example.test", "admin")  # sent again: the older link is dead
    assert Invitation.objects.get().role == "admin"
    assert Client().get(first, follow=True).status_code == 410
    assert Client().get(second, follow=True).status_code == 200
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(second, follow=True).status_code == 410
    third = invite(owner, "new@example.test")
    pending = Invitation.objects.get()
    assert owner.post(f"/dashboard/team/invitations/{pending.pk}/cancel").status_code == 302
    assert not Invitation.objects.exists()
    guest = Client()
    assert guest.get(third, follow=True).status_code == 410
    assert guest.post("/invitations/accept", {"password": NEW_PASSWORD}).status_code == 410
    assert not User.objects.filter(email="new@example.test").exists()


def test_only_owners_and_admins_invite_and_cancel_and_only_owners_invite_owners(alice, bob):
    owner = member(alice.tenant, "owner@alice.test")
    invite(owner, "pending@example.test")
    pending = Invitation.objects.get()
    viewer = member(alice.tenant, "viewer@alice.test", "viewer")
    assert viewer.post("/dashboard/team", {"email": "x@example.test", "role": "viewer"}) \
        .status_code == 403
    assert viewer.post(f"/dashboard/team/invitations/{pending.pk}/cancel").status_code == 403
    admin = member(alice.tenant, "admin@alice.test", "admin")
    refused = admin.post("/dashboard/team", {"email": "boss@example.test", "role": "owner"})
    assert refused.status_code == 400
    assert b"Only an owner" in refused.content
    member_again = admin.post("/dashboard/team", {"email": "viewer@alice.test", "role": "admin"})
    assert member_again.status_code == 400
    assert b"already a member" in member_again.content
    outsider = member(bob.tenant, "owner@bob.test")
    assert outsider.post(f"/dashboard/team/invitations/{pending.pk}/cancel").status_code == 404
    assert Invitation.objects.count() == 1


def test_the_migration_turns_never_used_invited_users_into_invitations(alice, bob):
    """Earlier versions made a password-less user for an invited address and added it at once.
    Those who never chose a password become pending invitations, freeing the address."""
    migration = importlib.import_module(
        "accounts.migrations.0007_invitations_instead_of_passwordless_users")
    invited = User.objects.create_user(email="waiting@example.test", password=None)
    Membership.objects.create(tenant=alice.tenant, user=invited, role="admin")
    Membership.objects.create(tenant=bob.tenant, user=invited, role="viewer")
    joined = User.objects.create_user(email="joined@example.test", password=PASSWORD)
    Membership.objects.create(tenant=alice.tenant, user=joined, role="viewer")
    migration.invitations_from_passwordless_users(apps, None)
    assert not User.objects.filter(email="waiting@example.test").exists()
    assert User.objects.filter(email="joined@example.test").exists()
    assert {(i.tenant_id, i.email, i.role) for i in Invitation.objects.all()} == {
        (alice.tenant.pk, "waiting@example.test", "admin"),
        (bob.tenant.pk, "waiting@example.test", "viewer")}
    assert all(i.expires_at > timezone.now() for i in Invitation.objects.all())
    response = Client().post("/signup", {"organization": "Waiting Co",
                                         "email": "waiting@example.test", "password": PASSWORD})
    assert response.status_code == 302
