"""``EngineSettings.proxy_route_set_at``: when the tenant's proxy route last changed. A proxy
enabled already is taken as set now: who set it, and whether the mailboxes' secrets were given
knowing it, is not known, so they go through it only over TLS that verifies the server until
given again (``accounts.secret_routes``)."""

from django.db import migrations, models
from django.utils import timezone


def set_now(apps, schema_editor):
    EngineSettings = apps.get_model("webhooks", "EngineSettings")
    EngineSettings.objects.filter(proxy_enabled=True).exclude(proxy_url="") \
        .update(proxy_route_set_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0017_engine_settings_message_new")]

    operations = [
        migrations.AddField(model_name="enginesettings", name="proxy_route_set_at",
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.RunPython(set_now, migrations.RunPython.noop),
    ]
