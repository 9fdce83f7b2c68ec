"""Subscriptions made from an account's own ``webhooks`` URL (EmailEngine's per-account field)
were made in our format: an EmailEngine client's receiver could not read or verify them. They
are EmailEngine's now, as such subscriptions are made from now on (and signed with the
tenant's ``serviceSecret`` once it is next set)."""

from django.db import migrations


def to_engine_format(apps, schema_editor):
    EmailAccount = apps.get_model("accounts", "EmailAccount")
    WebhookSubscription = apps.get_model("webhooks", "WebhookSubscription")
    made = EmailAccount.objects.filter(webhook_subscription__isnull=False) \
        .values_list("webhook_subscription", flat=True)
    WebhookSubscription.objects.filter(pk__in=list(made), format="emailapi") \
        .update(format="emailengine")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0012_index_progress"),
        ("webhooks", "0011_delivery_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(to_engine_format, migrations.RunPython.noop),
    ]
