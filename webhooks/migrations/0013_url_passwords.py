"""Webhook URLs may carry ``user:password@`` (sent as HTTP Basic, as EmailEngine does): the
password is sealed in these columns, and the URL columns keep it masked. No row has one yet
(such URLs were refused), so there is nothing to move."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0012_account_webhooks_in_engine_format'),
    ]

    operations = [
        migrations.AddField(
            model_name='enginesettings',
            name='sealed_webhooks_password',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='webhooksubscription',
            name='sealed_url_password',
            field=models.TextField(blank=True, default=''),
        ),
    ]
