"""Revoke the read tokens earlier dashboards made for their live updates.

Each signed-in user got a read-only API token named "Dashboard live updates", and the pages put
it in the stream's URL, where access logs and proxies may have kept it. The dashboard's stream
now takes the session (``accounts.web.live``), so these tokens have no use left: revoked, they
stop working at once and leave the token lists (API and dashboard list active tokens only),
while their rows stay, like every revoked token's, as the record of when they were used.
"""

from django.db import migrations
from django.utils import timezone

LIVE_TOKEN_NAME = "Dashboard live updates"


def revoke_live_update_tokens(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    # Only what the dashboard made: read-only, made for a user, under its fixed name.
    ApiToken.objects.filter(name=LIVE_TOKEN_NAME, scopes=["read"], created_by__isnull=False,
                            revoked_at__isnull=True).update(revoked_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_tenant_plans_and_email_verification")]

    operations = [migrations.RunPython(revoke_live_update_tokens, migrations.RunPython.noop)]
