"""``Credential.given_at``: when a person gave the secret. Kept rows take their last write's
time, except OAuth2 tokens, which a refresh rewrites (their sign-in time is not known)."""

from django.db import migrations, models
from django.db.models import F


def from_updated_at(apps, schema_editor):
    Credential = apps.get_model("accounts", "Credential")
    Credential.objects.exclude(name__startswith="oauth2.").update(given_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_account_has_bounces")]

    operations = [
        migrations.AddField(model_name="credential", name="given_at",
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.RunPython(from_updated_at, migrations.RunPython.noop),
    ]
