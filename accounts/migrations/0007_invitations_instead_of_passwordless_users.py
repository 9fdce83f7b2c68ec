"""Invitations become rows of their own (``Invitation``) instead of password-less users.

Earlier versions made a user without a password for every invited address that had none, and
made it a member at once: the owner of that address could then neither sign up (the address
was taken) nor reset a password (Django mails no reset to a user without a usable password).
Every such user who never signed in is turned into pending invitations, one per organization
they were added to, with the same role, and removed, which frees the address. Their old
"choose your password" links die with them; the team page lists the invitations, and inviting
the address again mails a new link.
"""

import secrets
from datetime import timedelta

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

INVITATION_DAYS = 7
UNUSABLE_PASSWORD_PREFIX = "!"  # django.contrib.auth.hashers


def invitations_from_passwordless_users(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
    Invitation = apps.get_model("accounts", "Invitation")
    never_joined = User.objects.filter(password__startswith=UNUSABLE_PASSWORD_PREFIX,
                                       last_login__isnull=True, is_staff=False,
                                       is_superuser=False)
    expires_at = timezone.now() + timedelta(days=INVITATION_DAYS)
    for membership in Membership.objects.filter(user__in=never_joined).select_related("user"):
        Invitation.objects.get_or_create(
            tenant_id=membership.tenant_id, email=membership.user.email.lower(),
            defaults={"role": membership.role, "key": secrets.token_urlsafe(32),
                      "created_at": membership.created_at, "expires_at": expires_at})
    never_joined.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_revoke_dashboard_live_tokens'),
    ]

    operations = [
        migrations.CreateModel(
            name='Invitation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254)),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('admin', 'Admin'), ('viewer', 'Viewer')], default='viewer', max_length=16)),
                ('key', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('expires_at', models.DateTimeField()),
                ('invited_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='accounts.tenant')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('tenant', 'email'), name='invitation_unique_email')],
            },
        ),
        migrations.RunPython(invitations_from_passwordless_users, migrations.RunPython.noop),
    ]
